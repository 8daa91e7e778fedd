package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PipelineTest {
    static Manifest manifest;
    static ClipTokenizer tokenizer;
    static Map<String, Object> golden;

    @BeforeAll
    static void load() throws Exception {
        manifest = Manifest.load(Golden.bundle());
        File dir = manifest.tokenizerDirectory();
        tokenizer = ClipTokenizer.fromFiles(new File(dir, "vocab.json"), new File(dir, "merges.txt"));
        golden = Golden.load("pipeline.json");
    }

    private static StandInStages stages() {
        return new StandInStages(manifest.stage("text_encoder").tensor("last_hidden_state").shape()[2]);
    }

    private static I2VPipeline.Request request(String scheduler) {
        I2VPipeline.Request req = new I2VPipeline.Request(Golden.image(golden.get("image")), Json.string(golden.get("prompt"), "prompt"));
        req.scheduler = scheduler;
        req.noise = Golden.tensor(golden.get("noise"));
        req.mask = Golden.tensor(golden.get("mask"));
        return req;
    }

    @Test
    void wholeRunsMatchRuntimePy() {
        List<Object> runs = Golden.list(golden.get("runs"));
        assertEquals(4, runs.size());
        FspConfig bundleFsp = manifest.fspConfig();
        for (Object o : runs) {
            Map<String, Object> run = Golden.obj(o);
            I2VPipeline.Request req = request(Json.string(run.get("scheduler"), "scheduler"));
            req.steps = Json.integer(run.get("steps"), "steps");
            req.guidance = Json.number(run.get("guidance"), "guidance");
            req.negativePrompt = Json.string(run.get("negative_prompt"), "negative_prompt");
            req.colourMatch = Json.bool(run.get("color_match"), "color_match");
            req.fsp = new FspConfig(Json.bool(run.get("fsp_enabled"), "fsp_enabled"), bundleFsp.maskP, bundleFsp.blurKernel,
                    bundleFsp.blurSigma, Json.number(run.get("fsp_strength"), "fsp_strength"));
            String what = req.scheduler + " " + req.steps + " steps, guidance " + req.guidance + ", FSP "
                    + (req.fsp.enabled ? "strength " + req.fsp.strength : "off");
            I2VPipeline.Result r = I2VPipeline.fromManifest(manifest, stages(), tokenizer).generate(req, null, null);
            float[] ts = Json.floats(run.get("timesteps"), "timesteps");
            double[] expected = new double[ts.length];
            for (int i = 0; i < ts.length; i++) {
                expected[i] = ts[i];
            }
            assertArrayEquals(expected, r.timesteps, what + ": timesteps");
            Golden.assertClose(Golden.tensor(run.get("latents")), r.latents, what + ": final latents");
            Golden.assertSameFrames(Golden.frames(run.get("frames")), r.frames, what + ": frames");
        }
    }

    @Test
    void encodersAreFreedBeforeTheUnetAndTheUnetBeforeDecoding() {
        StandInStages runner = stages();
        List<String> progress = new ArrayList<>();
        ProgressListener listener = new ProgressListener() {
            @Override
            public void onStage(String stage) {
                progress.add(stage);
            }

            @Override
            public void onStep(int step, int total, double timestep) {
                progress.add("step " + step + "/" + total + " t=" + (int) timestep);
            }
        };
        I2VPipeline.fromManifest(manifest, runner, tokenizer).generate(request("ddim"), listener, null);
        List<String> expected = new ArrayList<>(Arrays.asList("run vae_encoder", "run text_encoder", "run text_encoder",
                "release text_encoder", "release vae_encoder"));
        expected.addAll(Collections.nCopies(4, "run unet"));
        expected.add("release unet");
        expected.addAll(Collections.nCopies(3, "run vae_decoder"));
        expected.add("release vae_decoder");
        assertEquals(expected, runner.events);
        assertEquals(Arrays.asList("vae_encoder", "text_encoder", "text_encoder", "unet", "step 1/4 t=751", "unet",
                "step 2/4 t=501", "unet", "step 3/4 t=251", "unet", "step 4/4 t=1", "vae_decoder", "vae_decoder",
                "vae_decoder"), progress);
    }

    @Test
    void cancellingStopsBeforeTheNextStep() {
        StandInStages runner = stages();
        CancellationSignal signal = new CancellationSignal();
        ProgressListener cancelAfterTwo = new ProgressListener() {
            @Override
            public void onStep(int step, int total, double timestep) {
                if (step == 2) {
                    signal.cancel();
                }
            }
        };
        I2VPipeline pipe = I2VPipeline.fromManifest(manifest, runner, tokenizer);
        CancellationSignal.CancelledException e = assertThrows(CancellationSignal.CancelledException.class,
                () -> pipe.generate(request("ddim"), cancelAfterTwo, signal));
        assertEquals("generation cancelled before denoising step 3", e.getMessage());
        assertEquals(2, Collections.frequency(runner.events, "run unet"));
        assertFalse(runner.events.contains("run vae_decoder"));
    }

    @Test
    void lcmRunsFromASeedAndTheSeedDecides() {
        I2VPipeline pipe = I2VPipeline.fromManifest(manifest, stages(), tokenizer);
        I2VPipeline.Request a = new I2VPipeline.Request(Golden.image(golden.get("image")), "a boat");
        a.scheduler = "lcm";
        a.seed = 3;
        float[] first = pipe.generate(a, null, null).latents.data();
        float[] again = pipe.generate(a, null, null).latents.data();
        a.seed = 4;
        float[] other = pipe.generate(a, null, null).latents.data();
        assertArrayEquals(first, again);
        assertFalse(Arrays.equals(first, other));
        for (float v : first) {
            assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void contractViolationsAreNamed() {
        I2VPipeline pipe = I2VPipeline.fromManifest(manifest, stages(), tokenizer);
        I2VPipeline.Request wrong = new I2VPipeline.Request(new RgbImage(64, 32, new byte[64 * 32 * 3]), "x");
        assertEquals("expected an input image of 32x32, got 64x32",
                assertThrows(IllegalArgumentException.class, () -> pipe.generate(wrong, null, null)).getMessage());

        StageRunner badUnet = new StageRunner() {
            final StandInStages inner = stages();

            @Override
            public Map<String, Tensor> run(String stage, Map<String, Tensor> inputs) {
                return "unet".equals(stage) ? Collections.singletonMap("noise_pred", Tensor.zeros(2, 4, 2, 4, 4))
                        : inner.run(stage, inputs);
            }
        };
        I2VPipeline bad = I2VPipeline.fromManifest(manifest, badUnet, tokenizer);
        assertEquals("expected unet output 'noise_pred' of shape (2, 4, 3, 4, 4), got (2, 4, 2, 4, 4)",
                assertThrows(IllegalArgumentException.class, () -> bad.generate(request("ddim"), null, null)).getMessage());
        I2VPipeline.Request badNoise = request("ddim");
        badNoise.noise = Tensor.zeros(1, 4, 2, 4, 4);
        assertEquals("expected FSP noise of shape (1, 4, 3, 4, 4), got (1, 4, 2, 4, 4)",
                assertThrows(IllegalArgumentException.class, () -> pipe.generate(badNoise, null, null)).getMessage());
    }
}
