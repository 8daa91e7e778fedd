package org.i2vadapter.core;

/** Deterministic DDIM (eta 0), diffusers' {@code DDIMScheduler}; "leading" spacing plus {@code steps_offset} by default. */
public final class DdimScheduler extends Scheduler {
    private final String spacing;

    public DdimScheduler(SchedulerConfig cfg, String timestepSpacing) {
        super(cfg);
        this.spacing = timestepSpacing;
    }

    @Override
    public String name() {
        return "ddim";
    }

    @Override
    public void setTimesteps(int n) {
        checkNumSteps(n, config.numTrainTimesteps);
        double[] ts = spacedTimesteps(n, config.numTrainTimesteps, spacing, config.stepsOffset);
        for (int i = 0; i < ts.length; i++) {
            ts[i] = "linspace".equals(spacing) ? Math.rint(ts[i]) : (long) ts[i];
        }
        timesteps = ts;
    }

    @Override
    public float[] step(float[] modelOutput, double t, float[] sample, float[] noise) {
        requireTimesteps();
        int ti = (int) t;
        int prevT = ti - config.numTrainTimesteps / numInferenceSteps;
        float aPrev = alphaPrev(prevT);
        float[] x0 = predictOriginal(modelOutput, ti, sample);
        float[] eps = predictNoise(modelOutput, ti, sample);
        float sa = sqrt(aPrev), sb = sqrt(1f - aPrev);
        float[] out = new float[sample.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = sa * x0[i] + sb * eps[i];
        }
        return out;
    }
}
