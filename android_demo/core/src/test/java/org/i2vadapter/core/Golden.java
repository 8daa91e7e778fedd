package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/** Access to the golden vectors written by {@code android_demo/make_golden.py} from runtime_py. */
final class Golden {
    /** Float tolerance: 1e-5, relative to the value where it is above 1 (Euler samples reach ~100,
     * where float32's own spacing is 7.6e-6). */
    static final double TOL = 1e-5;

    private Golden() {}

    static File dir() {
        URL url = Golden.class.getResource("/golden/tokenizer.json");
        if (url == null) {
            throw new IllegalStateException("golden vectors not on the classpath: add src/test/resources");
        }
        try {
            return new File(url.toURI()).getParentFile();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static File bundle() {
        return new File(dir(), "bundle");
    }

    /** A private copy of the golden bundle at {@code dst}, for tests that break it. */
    static File copyBundle(Path dst) throws IOException {
        Path src = bundle().toPath();
        try (java.util.stream.Stream<Path> walk = Files.walk(src)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                Path q = dst.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(q);
                } else {
                    Files.copy(p, q, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        return dst.toFile();
    }

    static Map<String, Object> load(String name) throws IOException {
        return Json.object(Json.parse(new File(dir(), name)), name);
    }

    static Map<String, Object> obj(Object o) {
        return Json.object(o, "golden entry");
    }

    static List<Object> list(Object o) {
        return Json.array(o, "golden entry");
    }

    static Tensor tensor(Object o) {
        Map<String, Object> m = obj(o);
        return new Tensor(Json.ints(m.get("shape"), "shape"), Json.floats(m.get("data"), "data"));
    }

    static byte[] bytes(Object o) {
        return Base64.getDecoder().decode(Json.string(obj(o).get("base64"), "base64"));
    }

    static int[] shape(Object o) {
        return Json.ints(obj(o).get("shape"), "shape");
    }

    /** {@code (F, H, W, 3)} uint8 -> F images. */
    static RgbImage[] frames(Object o) {
        int[] s = shape(o);
        byte[] all = bytes(o);
        int n = s[1] * s[2] * 3;
        RgbImage[] out = new RgbImage[s[0]];
        for (int f = 0; f < s[0]; f++) {
            byte[] px = new byte[n];
            System.arraycopy(all, f * n, px, 0, n);
            out[f] = new RgbImage(s[2], s[1], px);
        }
        return out;
    }

    /** {@code (H, W, 3)} uint8 -> one image. */
    static RgbImage image(Object o) {
        int[] s = shape(o);
        return new RgbImage(s[1], s[0], bytes(o));
    }

    /** The CLIP merges file shipped in the repository ({@code -Di2v.bpe=...} from test.sh, else found upward). */
    static File bpeFile() {
        String prop = System.getProperty("i2v.bpe");
        if (prop != null) {
            return new File(prop);
        }
        for (File d = dir(); d != null; d = d.getParentFile()) {
            File f = new File(d, "i2v_core/data/bpe_simple_vocab_16e6.txt.gz");
            if (f.isFile()) {
                return f;
            }
        }
        throw new IllegalStateException("bpe_simple_vocab_16e6.txt.gz not found: pass -Di2v.bpe=PATH");
    }

    /** |actual - expected| <= TOL * max(1, |expected|) everywhere; the message names the worst element. */
    static void assertClose(Tensor expected, Tensor actual, String what) {
        assertEquals(Tensor.shapeString(expected.shape()), Tensor.shapeString(actual.shape()), what + " shape");
        assertClose(expected.data(), actual.data(), what);
    }

    static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs((double) actual[i] - expected[i]) / Math.max(1.0, Math.abs(expected[i]));
            if (!(err <= worst)) {
                worst = err;
                at = i;
            }
        }
        if (!(worst <= TOL)) {
            fail(what + ": relative error " + worst + " at index " + at + " (expected " + expected[at] + ", got "
                    + actual[at] + ") exceeds " + TOL);
        }
    }

    static void assertSameFrames(RgbImage[] expected, RgbImage[] actual, String what) {
        assertEquals(expected.length, actual.length, what + " frame count");
        for (int f = 0; f < expected.length; f++) {
            byte[] e = expected[f].bytes(), a = actual[f].bytes();
            assertEquals(e.length, a.length, what + " frame " + f + " size");
            int diff = 0, first = -1;
            for (int i = 0; i < e.length; i++) {
                if (e[i] != a[i]) {
                    diff++;
                    first = first < 0 ? i : first;
                }
            }
            if (diff > 0) {
                fail(what + " frame " + f + ": " + diff + " of " + e.length + " bytes differ, first at " + first
                        + " (expected " + (e[first] & 0xff) + ", got " + (a[first] & 0xff) + ")");
            }
        }
    }
}
