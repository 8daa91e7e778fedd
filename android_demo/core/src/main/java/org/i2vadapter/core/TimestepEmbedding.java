package org.i2vadapter.core;

import java.util.Map;

/**
 * The UNet's sinusoidal timestep embedding, as an NPU bundle's contract carries it (the unet input
 * {@code timestep_embedding (1, C0)} with an {@code embedding} record in the manifest): diffusers'
 * {@code get_timestep_embedding(t, dim, flip_sin_to_cos, freq_shift, scale, max_period)}, computed on the
 * phone so that the graph holds no SIN / COS.
 *
 * <p>The same float32 steps in the same order as {@code i2v_core.stages.SinusoidalEmbedding} in numpy
 * (exponent, frequencies, {@code t * freq}, sin / cos, flip, pad); {@code exp}, {@code sin} and {@code cos}
 * in double precision rounded once to float, as numpy evaluates them there.
 */
public final class TimestepEmbedding {
    public static final String KIND = "sinusoidal";

    public final int dim;
    public final boolean flipSinToCos;
    public final double freqShift;
    public final double scale;
    public final int maxPeriod;

    public TimestepEmbedding(int dim, boolean flipSinToCos, double freqShift, double scale, int maxPeriod) {
        if (dim < 1) {
            throw new IllegalArgumentException("expected a positive timestep embedding dim, got " + dim);
        }
        this.dim = dim;
        this.flipSinToCos = flipSinToCos;
        this.freqShift = freqShift;
        this.scale = scale;
        this.maxPeriod = maxPeriod;
    }

    /** The manifest's {@code embedding} record ({@code kind} "sinusoidal", dim, flip_sin_to_cos, ...). */
    public static TimestepEmbedding fromJson(Map<String, Object> m, String what) {
        Object kind = m.get("kind");
        if (!KIND.equals(kind)) {
            throw new IllegalArgumentException("expected " + what + " of kind 'sinusoidal', found " + Json.describe(kind));
        }
        return new TimestepEmbedding(
                Json.integer(Json.member(m, "dim", what), what + " dim"),
                Json.bool(Json.member(m, "flip_sin_to_cos", what), what + " flip_sin_to_cos"),
                Json.number(Json.member(m, "freq_shift", what), what + " freq_shift"),
                Json.number(Json.member(m, "scale", what), what + " scale"),
                Json.integer(Json.member(m, "max_period", what), what + " max_period"));
    }

    /** The {@code dim / 2} frequencies {@code exp(-log(max_period) * i / (half - freq_shift))}, float32. */
    float[] frequencies() {
        int half = dim / 2;
        float logPeriod = (float) -Math.log(maxPeriod);
        float denominator = (float) (half - freqShift);
        float[] freqs = new float[half];
        for (int i = 0; i < half; i++) {
            float exponent = logPeriod * (float) i;
            exponent = exponent / denominator;
            freqs[i] = (float) Math.exp((double) exponent);
        }
        return freqs;
    }

    /** The embedding of one timestep (taken as float32): {@code dim} floats, [cos, sin] or [sin, cos], 0-padded. */
    public float[] embed(double timestep) {
        float t = (float) timestep;
        float s = (float) scale;
        float[] freqs = frequencies();
        int half = freqs.length;
        float[] out = new float[dim]; // an odd dim keeps its last value 0 (the pad)
        int sinAt = flipSinToCos ? half : 0;
        int cosAt = flipSinToCos ? 0 : half;
        for (int i = 0; i < half; i++) {
            float arg = s * (t * freqs[i]);
            out[sinAt + i] = (float) Math.sin((double) arg);
            out[cosAt + i] = (float) Math.cos((double) arg);
        }
        return out;
    }

    /** {@code (N, dim)} for {@code N} timesteps, one row each. */
    public Tensor embed(double[] timesteps) {
        float[] data = new float[timesteps.length * dim];
        for (int n = 0; n < timesteps.length; n++) {
            System.arraycopy(embed(timesteps[n]), 0, data, n * dim, dim);
        }
        return new Tensor(new int[] {timesteps.length, dim}, data);
    }

    @Override
    public String toString() {
        return "sinusoidal(dim=" + dim + ", flip_sin_to_cos=" + flipSinToCos + ", freq_shift=" + freqShift
                + ", scale=" + scale + ", max_period=" + maxPeriod + ")";
    }
}
