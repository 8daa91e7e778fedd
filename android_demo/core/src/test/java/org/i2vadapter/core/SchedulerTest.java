package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class SchedulerTest {
    static Map<String, Object> golden;

    @BeforeAll
    static void load() throws Exception {
        golden = Golden.load("schedulers.json");
    }

    private static Scheduler make(Map<String, Object> c) {
        String name = Json.string(c.get("scheduler"), "scheduler");
        Map<String, Object> options = Golden.obj(c.get("options"));
        SchedulerConfig cfg = SchedulerConfig.defaults();
        if (c.containsKey("prediction_type")) {
            cfg = cfg.withPredictionType(Json.string(c.get("prediction_type"), "prediction_type"));
        }
        if (!options.containsKey("timestep_spacing")) {
            return Scheduler.create(name, cfg);
        }
        String spacing = Json.string(options.get("timestep_spacing"), "spacing");
        return "ddim".equals(name) ? new DdimScheduler(cfg, spacing) : new EulerScheduler(cfg, spacing);
    }

    @Test
    void alphasCumprodMatchesTorch() {
        Map<String, Object> ac = Golden.obj(golden.get("alphas_cumprod"));
        int[] index = Json.ints(ac.get("index"), "index");
        float[] linear = Scheduler.alphasCumprod(SchedulerConfig.defaults());
        float[] scaled = Scheduler.alphasCumprod(SchedulerConfig.defaults().withBetaSchedule("scaled_linear"));
        float[] gotLinear = new float[index.length], gotScaled = new float[index.length];
        for (int i = 0; i < index.length; i++) {
            gotLinear[i] = linear[index[i]];
            gotScaled[i] = scaled[index[i]];
        }
        assertArrayEquals(Json.floats(ac.get("linear"), "linear"), gotLinear);
        assertArrayEquals(Json.floats(ac.get("scaled_linear"), "scaled_linear"), gotScaled);
    }

    @Test
    void everySchedulerMatchesRuntimePy() {
        List<Object> cases = Golden.list(golden.get("cases"));
        assertEquals(12, cases.size());
        for (int i = 9; i < 12; i++) {
            assertEquals("v_prediction", Golden.obj(cases.get(i)).get("prediction_type"));
        }
        for (Object o : cases) {
            Map<String, Object> c = Golden.obj(o);
            Scheduler s = make(c);
            int n = Json.integer(c.get("num_inference_steps"), "steps");
            String what = s.name() + " " + n + " steps " + c.get("options");
            s.setTimesteps(n);
            double[] expectedTs = new double[n];
            float[] ts = Json.floats(c.get("timesteps"), "timesteps");
            for (int i = 0; i < n; i++) {
                expectedTs[i] = ts[i];
            }
            assertArrayEquals(expectedTs, s.timesteps(), what + " timesteps");
            assertEquals((float) Json.number(c.get("init_noise_sigma"), "sigma"), s.initNoiseSigma(), what + " init_noise_sigma");
            if (c.containsKey("sigmas")) {
                Golden.assertClose(Json.floats(c.get("sigmas"), "sigmas"), ((EulerScheduler) s).sigmas(), what + " sigmas");
            }
            Map<String, Object> add = Golden.obj(c.get("add_noise"));
            float[] noised = s.addNoise(Golden.tensor(add.get("x")).data(), Golden.tensor(add.get("noise")).data(),
                    Json.number(add.get("t"), "t"));
            Golden.assertClose(Golden.tensor(add.get("out")).data(), noised, what + " add_noise");
            checkSteps(s, c, what);
        }
    }

    /** Two chained steps from the same sample, each fed Java's own previous output. */
    private static void checkSteps(Scheduler s, Map<String, Object> c, String what) {
        float[] sample = Golden.tensor(c.get("sample")).data();
        int k = 0;
        for (Object o : Golden.list(c.get("steps"))) {
            Map<String, Object> step = Golden.obj(o);
            double t = Json.number(step.get("t"), "t");
            Golden.assertClose(Golden.tensor(step.get("scaled")).data(), s.scaleModelInput(sample, t), what + " scaled input " + k);
            float[] noise = s.needsStepNoise() ? Golden.tensor(step.get("noise")).data() : null;
            sample = s.step(Golden.tensor(step.get("model_output")).data(), t, sample, noise);
            Golden.assertClose(Golden.tensor(step.get("out")).data(), sample, what + " step " + k++);
        }
    }

    @Test
    void badUseIsRefusedWithTheRange() {
        Scheduler ddim = Scheduler.create("ddim", SchedulerConfig.defaults());
        assertEquals("DdimScheduler: expected num_inference_steps in [1, 1000], got 0",
                assertThrows(IllegalArgumentException.class, () -> ddim.setTimesteps(0)).getMessage());
        assertEquals("DdimScheduler: call setTimesteps(n) before stepping",
                assertThrows(IllegalStateException.class, () -> ddim.step(new float[1], 1, new float[1], null)).getMessage());
        Scheduler lcm = Scheduler.create("lcm", SchedulerConfig.defaults());
        assertEquals("LcmScheduler: expected num_inference_steps in [1, 50], got 51",
                assertThrows(IllegalArgumentException.class, () -> lcm.setTimesteps(51)).getMessage());
        lcm.setTimesteps(4);
        assertEquals("LcmScheduler.step needs noise for the re-noising between steps",
                assertThrows(IllegalArgumentException.class, () -> lcm.step(new float[2], 999, new float[2], null)).getMessage());
        assertEquals("unknown scheduler 'pndm': expected one of ddim, euler, lcm",
                assertThrows(IllegalArgumentException.class, () -> Scheduler.create("pndm", SchedulerConfig.defaults())).getMessage());
        assertEquals("EulerScheduler supports prediction_type 'epsilon' or 'v_prediction', got 'sample'",
                assertThrows(IllegalArgumentException.class,
                        () -> Scheduler.create("euler", SchedulerConfig.defaults().withPredictionType("sample"))).getMessage());
        assertEquals("DdimScheduler supports prediction_type 'epsilon' or 'v_prediction', got 'sample'",
                assertThrows(IllegalArgumentException.class,
                        () -> Scheduler.create("ddim", SchedulerConfig.defaults().withPredictionType("sample"))).getMessage());
        Scheduler euler = Scheduler.create("euler", SchedulerConfig.defaults());
        euler.setTimesteps(4);
        assertThrows(IllegalArgumentException.class, () -> euler.scaleModelInput(new float[1], 500.0));
    }
}
