package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The NPU contract's timestep embedding against {@code i2v_core.stages.SinusoidalEmbedding} (timestep_embedding.json). */
class TimestepEmbeddingTest {
    static final double TOL = 1e-6;

    private static Map<String, Object> golden() throws IOException {
        return Golden.load("timestep_embedding.json");
    }

    private static double[] doubles(Object o) {
        float[] f = Json.floats(o, "timesteps");
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    private static void assertWithin(float[] expected, float[] found, String what) {
        assertEquals(expected.length, found.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Math.abs(expected[i] - found[i]) > TOL) {
                throw new AssertionError(what + "[" + i + "]: expected " + expected[i] + ", found " + found[i]);
            }
        }
    }

    @Test
    void matchesNumpyWithin1e6() throws Exception {
        List<Object> cases = Golden.list(golden().get("cases"));
        assertEquals(2, cases.size());
        for (Object o : cases) {
            Map<String, Object> c = Golden.obj(o);
            TimestepEmbedding emb = TimestepEmbedding.fromJson(Golden.obj(c.get("embedding")), "embedding");
            Tensor expected = Golden.tensor(c.get("out"));
            Tensor found = emb.embed(doubles(c.get("timesteps")));
            assertArrayEquals(expected.shape(), found.shape(), emb + ": shape");
            assertWithin(expected.data(), found.data(), emb.toString());
        }
    }

    @Test
    void tinyPresetParametersAndOddDimPadding() throws Exception {
        List<Object> cases = Golden.list(golden().get("cases"));
        TimestepEmbedding tiny = TimestepEmbedding.fromJson(Golden.obj(Golden.obj(cases.get(0)).get("embedding")), "embedding");
        assertEquals(32, tiny.dim);
        assertTrue(tiny.flipSinToCos);
        assertEquals(0.0, tiny.freqShift);
        assertEquals(1.0, tiny.scale);
        assertEquals(10000, tiny.maxPeriod);
        float[] zero = tiny.embed(0.0); // cos(0) = 1 first, sin(0) = 0 after
        for (int i = 0; i < 32; i++) {
            assertEquals(i < 16 ? 1.0f : 0.0f, zero[i]);
        }
        TimestepEmbedding odd = TimestepEmbedding.fromJson(Golden.obj(Golden.obj(cases.get(1)).get("embedding")), "embedding");
        assertEquals(7, odd.dim);
        assertEquals(0.0f, odd.embed(123.0)[6]);
    }

    @Test
    void badRecordsAreNamed() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kind", "learned");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TimestepEmbedding.fromJson(m, "unet embedding"));
        assertEquals("expected unet embedding of kind 'sinusoidal', found the string \"learned\"", e.getMessage());
        m.put("kind", "sinusoidal");
        e = assertThrows(IllegalArgumentException.class, () -> TimestepEmbedding.fromJson(m, "unet embedding"));
        assertTrue(e.getMessage().contains("dim"), e.getMessage());
    }

    /** The golden bundle's manifest with its unet contract replaced by the NPU one ({@code unet_io}). */
    @SuppressWarnings("unchecked")
    static Map<String, Object> npuManifest() throws IOException {
        Map<String, Object> root = Json.object(Json.parse(new File(Golden.bundle(), Manifest.FILE_NAME)), "manifest");
        Map<String, Object> unet = (Map<String, Object>) ((Map<String, Object>) root.get("stages")).get("unet");
        unet.put("io", golden().get("unet_io"));
        return root;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> unetInput(Map<String, Object> root, String name) {
        Map<String, Object> unet = (Map<String, Object>) ((Map<String, Object>) root.get("stages")).get("unet");
        for (Object t : (List<Object>) ((Map<String, Object>) unet.get("io")).get("inputs")) {
            if (name.equals(((Map<String, Object>) t).get("name"))) {
                return (Map<String, Object>) t;
            }
        }
        throw new AssertionError("no unet input " + name);
    }

    @Test
    void manifestWithNpuUnetContractIsAccepted() throws Exception {
        Manifest m = Manifest.fromJson(Golden.bundle(), npuManifest());
        StageSpec unet = m.stage("unet");
        assertEquals(Arrays.asList("sample", "timestep_embedding", "encoder_hidden_states"), unet.inputNames());
        StageSpec.TensorSpec t = unet.tensor("timestep_embedding");
        assertEquals("(1, 32)", Tensor.shapeString(t.shape()));
        assertEquals(32, t.embedding.dim);
        assertTrue(t.embedding.flipSinToCos);
        assertEquals(10000, t.embedding.maxPeriod);
        assertNull(unet.tensor("sample").embedding);
        assertNull(Manifest.load(Golden.bundle()).stage("unet").tensor("timestep").embedding);
    }

    @Test
    void npuUnetContractErrorsAreNamed() throws Exception {
        Map<String, Object> root = npuManifest();
        unetInput(root, "timestep_embedding").remove("embedding");
        String msg = assertThrows(BundleException.class, () -> Manifest.fromJson(Golden.bundle(), root)).getMessage();
        assertTrue(msg.startsWith("expected unet input 'timestep_embedding' to carry its 'embedding' record"), msg);

        Map<String, Object> wide = npuManifest();
        unetInput(wide, "timestep_embedding").put("shape", Arrays.<Object>asList(1L, 64L));
        msg = assertThrows(BundleException.class, () -> Manifest.fromJson(Golden.bundle(), wide)).getMessage();
        assertEquals("expected unet input 'timestep_embedding' of shape (1, 32), got (1, 64)", msg);

        Map<String, Object> renamed = npuManifest();
        unetInput(renamed, "timestep_embedding").put("name", "t_emb");
        msg = assertThrows(BundleException.class, () -> Manifest.fromJson(Golden.bundle(), renamed)).getMessage();
        assertEquals("expected unet input 'timestep' or 'timestep_embedding' (exactly one), got inputs"
                + " [sample, t_emb, encoder_hidden_states]", msg);

        Map<String, Object> badKind = npuManifest();
        ((Map<String, Object>) Golden.obj(unetInput(badKind, "timestep_embedding").get("embedding"))).put("kind", "learned");
        msg = assertThrows(BundleException.class, () -> Manifest.fromJson(Golden.bundle(), badKind)).getMessage();
        assertTrue(msg.contains("of kind 'sinusoidal'"), msg);
    }

    @Test
    void pipelineFeedsTheEmbeddingNumpyComputes() throws Exception {
        Manifest m = Manifest.fromJson(Golden.bundle(), npuManifest());
        File dir = m.tokenizerDirectory();
        ClipTokenizer tok = ClipTokenizer.fromFiles(new File(dir, "vocab.json"), new File(dir, "merges.txt"));
        StandInStages others = new StandInStages(m.stage("text_encoder").tensor("last_hidden_state").shape()[2]);
        int[] sample = m.stage("unet").tensor("sample").shape();
        List<Map<String, Tensor>> unetFeeds = new ArrayList<>();
        StageRunner runner = (stage, in) -> {
            if (!"unet".equals(stage)) {
                return others.run(stage, in);
            }
            unetFeeds.add(in);
            return Collections.singletonMap("noise_pred", Tensor.zeros(sample));
        };
        Map<String, Object> pipe = Golden.load("pipeline.json");
        I2VPipeline.Request req = new I2VPipeline.Request(Golden.image(pipe.get("image")), "a cat");
        req.scheduler = "ddim";
        req.steps = 4;
        req.noise = Golden.tensor(pipe.get("noise"));
        req.mask = Golden.tensor(pipe.get("mask"));
        I2VPipeline.Result r = I2VPipeline.fromManifest(m, runner, tok).generate(req, null, null);
        assertArrayEquals(new double[] {751.0, 501.0, 251.0, 1.0}, r.timesteps);

        Map<String, Object> tinyCase = Golden.obj(Golden.list(golden().get("cases")).get(0));
        double[] goldenTimesteps = doubles(tinyCase.get("timesteps"));
        float[] rows = Golden.tensor(tinyCase.get("out")).data();
        assertEquals(4, unetFeeds.size());
        for (int s = 0; s < 4; s++) {
            Map<String, Tensor> feed = unetFeeds.get(s);
            assertFalse(feed.containsKey("timestep"));
            Tensor fed = feed.get("timestep_embedding");
            assertEquals("(1, 32)", Tensor.shapeString(fed.shape()));
            int row = -1;
            for (int i = 0; i < goldenTimesteps.length; i++) {
                row = goldenTimesteps[i] == r.timesteps[s] ? i : row;
            }
            assertTrue(row >= 0, "golden timesteps lack " + r.timesteps[s]);
            assertWithin(Arrays.copyOfRange(rows, row * 32, row * 32 + 32), fed.data(), "t=" + r.timesteps[s]);
        }
    }
}
