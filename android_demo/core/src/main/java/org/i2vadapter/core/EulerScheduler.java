package org.i2vadapter.core;

/**
 * Euler in sigma space ({@code x = x0 + sigma * eps}), diffusers' {@code EulerDiscreteScheduler} defaults:
 * "linspace" spacing, sigmas linearly interpolated between training steps, no churn. The model input is
 * scaled by {@code 1 / sqrt(sigma^2 + 1)}.
 */
public final class EulerScheduler extends Scheduler {
    private final String spacing;
    private final float[] trainSigmas;
    private float[] sigmas = new float[] {0f};

    public EulerScheduler(SchedulerConfig cfg, String timestepSpacing) {
        super(cfg);
        this.spacing = timestepSpacing;
        trainSigmas = new float[alphasCumprod.length];
        for (int i = 0; i < trainSigmas.length; i++) {
            float a = alphasCumprod[i];
            trainSigmas[i] = sqrt((1f - a) / a);
        }
    }

    @Override
    public String name() {
        return "euler";
    }

    /** The {@code (n + 1,)} sigmas of the schedule, ending at 0. */
    public float[] sigmas() {
        return sigmas.clone();
    }

    @Override
    public float initNoiseSigma() {
        float top = 0f;
        for (float s : sigmas) {
            top = Math.max(top, s);
        }
        return "linspace".equals(spacing) || "trailing".equals(spacing) ? top : sqrt(top * top + 1f);
    }

    @Override
    public void setTimesteps(int n) {
        checkNumSteps(n, config.numTrainTimesteps);
        int train = config.numTrainTimesteps;
        double[] ts = spacedTimesteps(n, train, spacing, config.stepsOffset);
        double[] xp = new double[train];
        double[] fp = new double[train];
        for (int i = 0; i < train; i++) {
            xp[i] = i;
            fp[i] = trainSigmas[i];
        }
        sigmas = new float[n + 1];
        for (int i = 0; i < n; i++) {
            ts[i] = (float) ts[i];
            sigmas[i] = (float) NumpyCompat.interp(ts[i], xp, fp);
        }
        timesteps = ts;
    }

    private float sigma(double t) {
        requireTimesteps();
        return sigmas[currentIndex(t)];
    }

    @Override
    public float[] scaleModelInput(float[] sample, double t) {
        float sigma = sigma(t);
        float scale = sqrt(sigma * sigma + 1f);
        float[] out = new float[sample.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = sample[i] / scale;
        }
        return out;
    }

    @Override
    public float[] step(float[] modelOutput, double t, float[] sample, float[] noise) {
        sameLength(sample, modelOutput, "model output");
        float sigma = sigma(t);
        int i = stepIndex;
        float dt = sigmas[i + 1] - sigma;
        boolean v = velocity(); // the UNet saw sample / sqrt(sigma^2 + 1), the variance-preserving sample
        float s2p1 = sigma * sigma + 1f;
        float vOut = -sigma / sqrt(s2p1);
        float[] out = new float[sample.length];
        for (int k = 0; k < out.length; k++) {
            float x0 = v ? modelOutput[k] * vOut + sample[k] / s2p1 : sample[k] - sigma * modelOutput[k];
            float derivative = (sample[k] - x0) / sigma;
            out[k] = sample[k] + derivative * dt;
        }
        stepIndex = i + 1;
        return out;
    }

    /** {@code x + sigma_t * noise} at the schedule's timestep {@code t}. */
    @Override
    public float[] addNoise(float[] x, float[] noise, double t) {
        requireTimesteps();
        sameLength(x, noise, "noise");
        float sigma = sigmas[indexForTimestep(t)];
        float[] out = new float[x.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = x[i] + noise[i] * sigma;
        }
        return out;
    }
}
