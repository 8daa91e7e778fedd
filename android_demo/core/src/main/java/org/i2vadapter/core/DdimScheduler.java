package org.i2vadapter.core;

/** Deterministic DDIM (eta 0), diffusers' {@code DDIMScheduler}; "leading" spacing plus {@code steps_offset} by
 * default. The UNet output is the noise, or with {@code v_prediction} the velocity
 * {@code sqrt(a_t) eps - sqrt(1 - a_t) x0}. */
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
    protected boolean supportsPredictionType(String type) {
        return "epsilon".equals(type) || "v_prediction".equals(type);
    }

    @Override
    protected String supportedPredictionTypes() {
        return "'epsilon' or 'v_prediction'";
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
        float[] x0;
        float[] eps;
        if ("v_prediction".equals(config.predictionType)) { // Python's (diffusers') order of operations
            sameLength(sample, modelOutput, "model output");
            float a = alphasCumprod[ti];
            float ra = sqrt(a), rb = sqrt(1f - a);
            x0 = new float[sample.length];
            eps = new float[sample.length];
            for (int i = 0; i < x0.length; i++) {
                float v = ra * sample[i] - rb * modelOutput[i];
                x0[i] = config.clipSample ? Math.max(-1f, Math.min(1f, v)) : v;
                eps[i] = ra * modelOutput[i] + rb * sample[i];
            }
        } else {
            x0 = predictOriginal(modelOutput, ti, sample);
            eps = modelOutput;
        }
        float sa = sqrt(aPrev), sb = sqrt(1f - aPrev);
        float[] out = new float[sample.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = sa * x0[i] + sb * eps[i];
        }
        return out;
    }
}
