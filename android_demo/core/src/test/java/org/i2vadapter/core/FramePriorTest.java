package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class FramePriorTest {
    @Test
    void kernelBlurAndPriorMatchRuntimePy() throws Exception {
        int k = 0;
        for (Object o : Golden.list(Golden.load("fsp.json").get("cases"))) {
            Map<String, Object> c = Golden.obj(o);
            int size = Json.integer(c.get("kernel_size"), "kernel_size");
            double sigma = Json.number(c.get("sigma"), "sigma");
            String what = "fsp case " + k++ + " (kernel " + size + ")";
            Golden.assertClose(Json.floats(c.get("kernel"), "kernel"), FramePrior.gaussianKernel(size, sigma), what + " kernel");
            Tensor latent = Golden.tensor(c.get("latent"));
            Golden.assertClose(Golden.tensor(c.get("blurred")), FramePrior.blur(latent, size, sigma), what + " blur");
            Scheduler ddim = Scheduler.create("ddim", SchedulerConfig.defaults());
            ddim.setTimesteps(Json.integer(c.get("scheduler_steps"), "steps"));
            double t = ddim.timesteps()[0];
            assertEquals(Json.integer(c.get("timestep"), "timestep"), (int) t);
            Tensor mask = Golden.tensor(c.get("mask"));
            FspConfig cfg = new FspConfig(true, 0.5, size, sigma, 1.0);
            Tensor out = FramePrior.prior(latent, Json.integer(c.get("num_frames"), "frames"), ddim, t, cfg, mask,
                    Golden.tensor(c.get("noise")));
            Golden.assertClose(Golden.tensor(c.get("out")), out, what + " prior");
        }
    }

    @Test
    void shapesAndSizesAreChecked() {
        Tensor latent = Tensor.zeros(1, 4, 4, 4);
        FspConfig cfg = FspConfig.defaults();
        Scheduler ddim = Scheduler.create("ddim", SchedulerConfig.defaults());
        ddim.setTimesteps(10);
        assertEquals("FSP blur kernel 9 needs latents larger than 4 per side for reflect padding, got 4x4",
                assertThrows(IllegalArgumentException.class, () -> FramePrior.blur(latent, 9, 18.0)).getMessage());
        Tensor big = Tensor.zeros(1, 4, 8, 8);
        assertEquals("expected FSP mask of shape (1, 4, 3, 8, 8), got (1, 4, 2, 8, 8)",
                assertThrows(IllegalArgumentException.class, () -> FramePrior.prior(big, 3, ddim, 901, cfg,
                        Tensor.zeros(1, 4, 2, 8, 8), Tensor.zeros(1, 4, 3, 8, 8))).getMessage());
        assertEquals("FSP blur_kernel must be a positive odd integer, got 4",
                assertThrows(IllegalArgumentException.class, () -> new FspConfig(true, 0.5, 4, 1.0, 1.0)).getMessage());
    }

    @Test
    void maskKeepsAboutPOfTheElements() {
        Tensor m = FramePrior.sampleMask(new int[] {1, 4, 16, 32, 32}, 0.3, new Random(7));
        double sum = 0;
        for (float v : m.data()) {
            sum += v;
        }
        assertEquals(0.3, sum / m.size(), 0.01);
    }
}
