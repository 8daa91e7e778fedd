package org.i2vadapter.core;

/** Classifier-free guidance over a UNet output whose batch is [unconditional, conditional]. */
public final class Guidance {
    private Guidance() {}

    /**
     * {@code uncond + scale * (cond - uncond)} in float32: {@code (2, ...)} -> {@code (1, ...)}.
     */
    public static Tensor combine(Tensor noisePred, double scale) {
        if (noisePred.rank() < 1 || noisePred.dim(0) != 2) {
            throw new IllegalArgumentException("expected a guided batch (2, ...) [uncond, cond], got "
                    + Tensor.shapeString(noisePred.shape()));
        }
        int[] shape = noisePred.shape();
        shape[0] = 1;
        int half = noisePred.size() / 2;
        float g = (float) scale;
        float[] p = noisePred.data();
        float[] out = new float[half];
        for (int i = 0; i < half; i++) {
            float u = p[i];
            out[i] = u + g * (p[half + i] - u);
        }
        return new Tensor(shape, out);
    }
}
