package org.i2vadapter.core;

/**
 * A noise scheduler as {@code runtime_py.schedulers} has it (itself step for step diffusers'): built
 * from the training schedule, {@link #setTimesteps}, then per timestep {@link #scaleModelInput} and
 * {@link #step}. Samples are flat float32 arrays of any shape (the pipeline passes frames 1..F-1).
 *
 * <p>Arithmetic is float32 in Python's order of operations, float64 where Python uses float64 (the
 * cumulative product of alphas, Euler's sigma interpolation), so results match to the last bit or an
 * ulp. Timesteps are doubles: whole numbers for DDIM and LCM, float32 values for Euler.
 *
 * <p>The UNet output is read as the config's {@code prediction_type}: the noise ({@code epsilon}) or the
 * velocity {@code sqrt(a_t) eps - sqrt(1 - a_t) x0} ({@code v_prediction}), in diffusers' formulas.
 */
public abstract class Scheduler {
    public final SchedulerConfig config;
    protected final float[] alphasCumprod;
    protected final float finalAlphaCumprod;
    protected int numInferenceSteps = -1;
    protected double[] timesteps = new double[0];
    /** diffusers' stateful step index (Euler, LCM): found from the first timestep, then counted. */
    protected int stepIndex = -1;

    protected Scheduler(SchedulerConfig cfg) {
        if (!"epsilon".equals(cfg.predictionType) && !"v_prediction".equals(cfg.predictionType)) {
            throw new IllegalArgumentException(getClass().getSimpleName()
                    + " supports prediction_type 'epsilon' or 'v_prediction', got '" + cfg.predictionType + "'");
        }
        this.config = cfg;
        this.alphasCumprod = alphasCumprod(cfg);
        this.finalAlphaCumprod = cfg.setAlphaToOne ? 1f : alphasCumprod[0];
    }

    /** A scheduler by name: {@code ddim}, {@code euler} or {@code lcm}, with its default options. */
    public static Scheduler create(String name, SchedulerConfig cfg) {
        switch (name) {
            case "ddim":
                return new DdimScheduler(cfg, "leading");
            case "euler":
                return new EulerScheduler(cfg, "linspace");
            case "lcm":
                return new LcmScheduler(cfg, 50, 10.0);
            default:
                throw new IllegalArgumentException("unknown scheduler '" + name + "': expected one of ddim, euler, lcm");
        }
    }

    public abstract String name();

    /** Choose {@code n} timesteps of the training schedule (descending). */
    public abstract void setTimesteps(int n);

    /** {@code x_{t-1}} from {@code x_t} and the guided noise prediction. {@code noise} is used by LCM
     * between steps (and must then be given, shaped like the sample); others ignore it. */
    public abstract float[] step(float[] modelOutput, double t, float[] sample, float[] noise);

    /** True when {@link #step} at this point of the schedule consumes {@code noise}. */
    public boolean needsStepNoise() {
        return false;
    }

    public double[] timesteps() {
        return timesteps.clone();
    }

    public float[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    /** Standard deviation of a pure-noise start. */
    public float initNoiseSigma() {
        return 1f;
    }

    /** The UNet input at {@code t}; identity unless the scheduler scales it (Euler). */
    public float[] scaleModelInput(float[] sample, double t) {
        return sample;
    }

    /** Forward diffusion to {@code t}: {@code sqrt(a_t) * x + sqrt(1 - a_t) * noise}. */
    public float[] addNoise(float[] x, float[] noise, double t) {
        sameLength(x, noise, "noise");
        float a = alphasCumprod[(int) t];
        float sa = sqrt(a), sb = sqrt(1f - a);
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = sa * x[i] + sb * noise[i];
        }
        return out;
    }

    // ---------------------------------------------------------------- shared pieces

    /** Cumulative products of {@code 1 - beta} in float64, each rounded to float32, as torch does. */
    static float[] alphasCumprod(SchedulerConfig cfg) {
        int n = cfg.numTrainTimesteps;
        float[] betas;
        if ("linear".equals(cfg.betaSchedule)) {
            betas = NumpyCompat.torchLinspaceF32(cfg.betaStart, cfg.betaEnd, n);
        } else if ("scaled_linear".equals(cfg.betaSchedule)) {
            betas = NumpyCompat.torchLinspaceF32(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), n);
            for (int i = 0; i < n; i++) {
                betas[i] = betas[i] * betas[i];
            }
        } else {
            throw new IllegalArgumentException("expected beta_schedule 'linear' or 'scaled_linear', got '"
                    + cfg.betaSchedule + "'");
        }
        float[] out = new float[n];
        double acc = 1.0;
        for (int i = 0; i < n; i++) {
            acc *= (double) (1f - betas[i]);
            out[i] = (float) acc;
        }
        return out;
    }

    /** Timesteps for diffusers' spacing modes, descending; "linspace" values are left unrounded. */
    static double[] spacedTimesteps(int n, int train, String spacing, int stepsOffset) {
        double[] out;
        switch (spacing) {
            case "linspace":
                out = NumpyCompat.linspace(0, train - 1, n, true);
                break;
            case "leading": {
                int ratio = train / n;
                out = new double[n];
                for (int i = 0; i < n; i++) {
                    out[i] = (double) i * ratio + stepsOffset;
                }
                break;
            }
            case "trailing": {
                double[] a = NumpyCompat.arange(train, 0, -(double) train / n);
                for (int i = 0; i < a.length; i++) {
                    a[i] = Math.rint(a[i]) - 1;
                }
                return a; // already descending
            }
            default:
                throw new IllegalArgumentException("expected timestep_spacing in (leading, linspace, trailing), got '"
                        + spacing + "'");
        }
        reverse(out);
        return out;
    }

    static void reverse(double[] a) {
        for (int i = 0, j = a.length - 1; i < j; i++, j--) {
            double tmp = a[i];
            a[i] = a[j];
            a[j] = tmp;
        }
    }

    protected void checkNumSteps(int n, int limit) {
        if (n < 1 || n > limit) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": expected num_inference_steps in [1, "
                    + limit + "], got " + n);
        }
        numInferenceSteps = n;
        stepIndex = -1;
    }

    protected void requireTimesteps() {
        if (numInferenceSteps < 0) {
            throw new IllegalStateException(getClass().getSimpleName() + ": call setTimesteps(n) before stepping");
        }
    }

    /** Position of {@code t} in the schedule (the second match if repeated, as diffusers does). */
    public int indexForTimestep(double t) {
        int first = -1;
        for (int i = 0; i < timesteps.length; i++) {
            if ((float) timesteps[i] == (float) t) {
                if (first >= 0) {
                    return i;
                }
                first = i;
            }
        }
        if (first < 0) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": timestep " + t + " is not in the schedule "
                    + java.util.Arrays.toString(timesteps));
        }
        return first;
    }

    protected int currentIndex(double t) {
        if (stepIndex < 0) {
            stepIndex = indexForTimestep(t);
        }
        return stepIndex;
    }

    protected boolean velocity() {
        return "v_prediction".equals(config.predictionType);
    }

    /** {@code x0 = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)}, or {@code sqrt(a_t) x_t - sqrt(1 - a_t) v},
     * clipped to [-1, 1] if the config says so. */
    protected float[] predictOriginal(float[] output, int t, float[] sample) {
        sameLength(sample, output, "model output");
        float a = alphasCumprod[t];
        float sb = sqrt(1f - a), sa = sqrt(a);
        boolean v = velocity();
        float[] x0 = new float[sample.length];
        for (int i = 0; i < x0.length; i++) {
            float x = v ? sa * sample[i] - sb * output[i] : (sample[i] - sb * output[i]) / sa;
            x0[i] = config.clipSample ? Math.max(-1f, Math.min(1f, x)) : x;
        }
        return x0;
    }

    /** The noise: the output itself, or {@code sqrt(a_t) v + sqrt(1 - a_t) x_t}. */
    protected float[] predictNoise(float[] output, int t, float[] sample) {
        if (!velocity()) {
            return output;
        }
        float a = alphasCumprod[t];
        float sa = sqrt(a), sb = sqrt(1f - a);
        float[] eps = new float[sample.length];
        for (int i = 0; i < eps.length; i++) {
            eps[i] = sa * output[i] + sb * sample[i];
        }
        return eps;
    }

    protected float alphaPrev(int prevT) {
        return prevT >= 0 ? alphasCumprod[prevT] : finalAlphaCumprod;
    }

    /** Correctly rounded float32 square root (as numpy's). */
    static float sqrt(float x) {
        return (float) Math.sqrt(x);
    }

    static void sameLength(float[] a, float[] b, String what) {
        if (b == null || a.length != b.length) {
            throw new IllegalArgumentException("expected " + what + " with " + a.length + " values (the sample's), got "
                    + (b == null ? "none" : String.valueOf(b.length)));
        }
    }
}
