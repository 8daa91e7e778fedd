package org.i2vadapter.core;

import java.util.Random;

/**
 * The Frame Similarity Prior (paper eq. 7), twin of {@code runtime_py.fsp}:
 *
 * <pre>  x_t0^i ~ N(alpha_t0 * D(x_0^1), sigma_t0^2 I),   D(x) = M_p * x + (1 - M_p) * GaussianBlur(x)</pre>
 *
 * Same normalised Gaussian kernel (built in float64, stored as float32), same reflect padding, sums in
 * float64. The mask and the noise are passed in (drawn by the caller), so tests can fix them.
 */
public final class FramePrior {
    private FramePrior() {}

    /** Normalised {@code (kernelSize,)} Gaussian weights as float32, built in float64. */
    public static float[] gaussianKernel(int kernelSize, double sigma) {
        double half = (kernelSize - 1) / 2.0;
        double[] x = NumpyCompat.linspace(-half, half, kernelSize, true);
        double[] w = new double[kernelSize];
        for (int i = 0; i < kernelSize; i++) {
            double z = x[i] / sigma;
            w[i] = Math.exp(-0.5 * (z * z));
        }
        double sum = NumpyCompat.pairwiseSum(w, 0, kernelSize);
        float[] out = new float[kernelSize];
        for (int i = 0; i < kernelSize; i++) {
            out[i] = (float) (w[i] / sum);
        }
        return out;
    }

    /** Reflect padding needs {@code kernelSize / 2 < min(height, width)}. */
    public static void checkBlurFits(int kernelSize, int height, int width) {
        int pad = kernelSize / 2;
        if (pad >= Math.min(height, width)) {
            throw new IllegalArgumentException("FSP blur kernel " + kernelSize + " needs latents larger than " + pad
                    + " per side for reflect padding, got " + height + "x" + width);
        }
    }

    /** numpy's "reflect" index (the edge is not repeated): -1 -> 1, n -> n - 2. */
    private static int reflect(int i, int n) {
        return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
    }

    /** Separable Gaussian blur over the last two axes of a {@code (..., H, W)} tensor; same shape. */
    public static Tensor blur(Tensor x, int kernelSize, double sigma) {
        int rank = x.rank();
        int h = x.dim(rank - 2), w = x.dim(rank - 1);
        checkBlurFits(kernelSize, h, w);
        int pad = kernelSize / 2, ph = h + 2 * pad;
        float[] k32 = gaussianKernel(kernelSize, sigma);
        float[] src = x.data();
        float[] out = new float[src.length];
        double[] rows = new double[ph * w]; // blurred along W, still padded along H: (H+2p, W)
        for (int base = 0; base < src.length; base += h * w) {
            for (int r = 0; r < ph; r++) {
                int sr = reflect(r - pad, h);
                for (int c = 0; c < w; c++) {
                    double acc = 0.0;
                    for (int j = 0; j < kernelSize; j++) {
                        acc += (double) k32[j] * src[base + sr * w + reflect(c + j - pad, w)];
                    }
                    rows[r * w + c] = acc;
                }
            }
            for (int r = 0; r < h; r++) {
                for (int c = 0; c < w; c++) {
                    double acc = 0.0;
                    for (int j = 0; j < kernelSize; j++) {
                        acc += (double) k32[j] * rows[(r + j) * w + c];
                    }
                    out[base + r * w + c] = (float) acc;
                }
            }
        }
        return new Tensor(x.shape(), out);
    }

    /** Bernoulli({@code p}) keep-mask of {@code shape}: 1 keeps the sharp latent, 0 takes the blurred one. */
    public static Tensor sampleMask(int[] shape, double p, Random rng) {
        Tensor m = Tensor.zeros(shape);
        float[] d = m.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = rng.nextDouble() < p ? 1f : 0f;
        }
        return m;
    }

    /**
     * Initial latents {@code (B, C, F, h, w)} from the clean first-frame latent {@code (B, C, h, w)}:
     * {@code D(x)} over every frame, then {@code scheduler.addNoise} to {@code timestep}. Frame 0 is
     * noised like the others; the caller puts the clean latent back.
     */
    public static Tensor prior(Tensor firstLatent, int numFrames, Scheduler scheduler, double timestep, FspConfig cfg,
            Tensor mask, Tensor noise) {
        if (firstLatent.rank() != 4) {
            throw new IllegalArgumentException("expected a first-frame latent of shape (B, C, h, w), got "
                    + Tensor.shapeString(firstLatent.shape()));
        }
        int b = firstLatent.dim(0), c = firstLatent.dim(1), h = firstLatent.dim(2), w = firstLatent.dim(3);
        int[] shape = {b, c, numFrames, h, w};
        mask.requireShape("FSP mask", shape);
        noise.requireShape("FSP noise", shape);
        float[] x = firstLatent.data();
        float[] blurred = blur(firstLatent, cfg.blurKernel, cfg.blurSigma).data();
        float[] m = mask.data();
        float[] d = new float[m.length];
        int hw = h * w;
        for (int bc = 0; bc < b * c; bc++) { // (B, C, h, w) broadcast over F
            for (int f = 0; f < numFrames; f++) {
                int dst = (bc * numFrames + f) * hw;
                for (int i = 0; i < hw; i++) {
                    float mi = m[dst + i];
                    d[dst + i] = mi * x[bc * hw + i] + (1f - mi) * blurred[bc * hw + i];
                }
            }
        }
        return new Tensor(shape, scheduler.addNoise(d, noise.data(), timestep));
    }
}
