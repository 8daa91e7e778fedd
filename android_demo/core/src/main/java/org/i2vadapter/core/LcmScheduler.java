package org.i2vadapter.core;

/**
 * Latent consistency sampling, diffusers' {@code LCMScheduler}: few steps picked from a skipping origin
 * schedule ({@code originalInferenceSteps}, every {@code T / 50}-th step), the boundary-condition
 * scalings {@code c_skip}, {@code c_out}, and fresh noise injected between steps (passed in).
 */
public final class LcmScheduler extends Scheduler {
    private static final float SIGMA_DATA_SQ = 0.25f; // 0.5^2
    private final int originalInferenceSteps;
    private final double timestepScaling;

    public LcmScheduler(SchedulerConfig cfg, int originalInferenceSteps, double timestepScaling) {
        super(cfg);
        this.originalInferenceSteps = originalInferenceSteps;
        this.timestepScaling = timestepScaling;
    }

    @Override
    public String name() {
        return "lcm";
    }

    @Override
    public void setTimesteps(int n) {
        int train = config.numTrainTimesteps;
        if (originalInferenceSteps > train) {
            throw new IllegalArgumentException("LcmScheduler: original_inference_steps " + originalInferenceSteps
                    + " exceeds " + train + " training timesteps");
        }
        checkNumSteps(n, originalInferenceSteps);
        int k = train / originalInferenceSteps;
        double[] picks = NumpyCompat.linspace(0, originalInferenceSteps, n, false);
        timesteps = new double[n];
        for (int i = 0; i < n; i++) {
            int p = (int) Math.floor(picks[i]);
            timesteps[i] = (originalInferenceSteps - p) * k - 1; // origin[p], origin descending
        }
    }

    /** {@code (c_skip, c_out)} at timestep {@code t}, in float32. */
    public float[] boundaryScalings(int t) {
        float scaled = (float) t * (float) timestepScaling;
        float denom = scaled * scaled + SIGMA_DATA_SQ;
        return new float[] {SIGMA_DATA_SQ / denom, scaled / sqrt(denom)};
    }

    @Override
    public boolean needsStepNoise() {
        return stepIndex < 0 ? numInferenceSteps > 1 : stepIndex < numInferenceSteps - 1;
    }

    @Override
    public float[] step(float[] modelOutput, double t, float[] sample, float[] noise) {
        requireTimesteps();
        int ti = (int) t;
        int i = currentIndex(t);
        int prevT = i + 1 < timesteps.length ? (int) timesteps[i + 1] : ti;
        float[] scal = boundaryScalings(ti);
        float[] x0 = predictOriginal(modelOutput, ti, sample);
        float[] denoised = new float[sample.length];
        for (int k = 0; k < denoised.length; k++) {
            denoised[k] = scal[1] * x0[k] + scal[0] * sample[k];
        }
        stepIndex = i + 1;
        if (i == numInferenceSteps - 1) {
            return denoised;
        }
        if (noise == null) {
            throw new IllegalArgumentException("LcmScheduler.step needs noise for the re-noising between steps");
        }
        sameLength(sample, noise, "LCM step noise");
        float aPrev = alphaPrev(prevT);
        float sa = sqrt(aPrev), sb = sqrt(1f - aPrev);
        float[] out = new float[sample.length];
        for (int k = 0; k < out.length; k++) {
            out[k] = sa * denoised[k] + sb * noise[k];
        }
        return out;
    }
}
