package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ColourMatchTest {
    static Map<String, Object> golden;
    static RgbImage[] frames;

    @BeforeAll
    static void load() throws Exception {
        golden = Golden.load("colour.json");
        frames = Golden.frames(golden.get("frames"));
    }

    @Test
    void inverseMatrixIsTheInverse() {
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int k = 0; k < 3; k++) {
                    s += ColourMatch.SRGB_TO_XYZ[r][k] * ColourMatch.XYZ_TO_SRGB[k][c];
                }
                assertEquals(r == c ? 1.0 : 0.0, s, 1e-12);
            }
        }
    }

    @Test
    void labConversionMatchesPython() {
        Golden.assertClose(Golden.tensor(golden.get("lab")).data(), ColourMatch.rgbToLab(frames[1]), "rgb_to_lab");
        RgbImage back = ColourMatch.labToRgb(ColourMatch.rgbToLab(frames[2]), frames[2].width, frames[2].height);
        Golden.assertSameFrames(new RgbImage[] {Golden.image(golden.get("lab_to_rgb"))}, new RgbImage[] {back}, "lab_to_rgb");
    }

    @Test
    void matchedFramesEqualPythons() {
        RgbImage[] ab = ColourMatch.match(frames, null);
        Golden.assertSameFrames(Golden.frames(golden.get("matched_ab")), ab, "a/b matched");
        assertSame(frames[0], ab[0]);
        Golden.assertSameFrames(Golden.frames(golden.get("matched_lab")), ColourMatch.match(frames, null, "L", "a", "b"), "Lab matched");
        RgbImage ref = Golden.image(golden.get("reference"));
        Golden.assertSameFrames(Golden.frames(golden.get("matched_to_reference")), ColourMatch.match(frames, ref), "matched to a reference");
    }

    @Test
    void unknownChannelIsRefused() {
        assertEquals("expected LAB channels from (L, a, b), got [x]",
                assertThrows(IllegalArgumentException.class, () -> ColourMatch.match(frames, null, "x")).getMessage());
    }
}
