package org.i2vadapter.core;

/**
 * numpy's and torch's order of floating-point operations for the few routines the schedulers, the FSP
 * kernel and colour matching need, so Java reproduces {@code runtime_py} to the last bit where Python does
 * (each method names the routine it follows).
 */
final class NumpyCompat {
    private NumpyCompat() {}

    /** {@code np.linspace(start, stop, num, endpoint)}: {@code i * step + start}, the last value {@code stop}. */
    static double[] linspace(double start, double stop, int num, boolean endpoint) {
        double[] y = new double[num];
        int div = endpoint ? num - 1 : num;
        double step = div > 0 ? (stop - start) / div : 0;
        for (int i = 0; i < num; i++) {
            y[i] = i * step + start;
        }
        if (endpoint && num > 1) {
            y[num - 1] = stop;
        }
        return y;
    }

    /**
     * {@code torch.linspace(start, end, steps, dtype=float32)} on CPU: the first half counts up from
     * {@code start}, the second down from {@code end}, each value one rounding of {@code base + step * k}.
     */
    static float[] torchLinspaceF32(double start, double end, int steps) {
        float start32 = (float) start, end32 = (float) end;
        float step = (end32 - start32) / (float) (steps - 1);
        float[] out = new float[steps];
        for (int i = 0; i < steps; i++) {
            boolean lower = i < steps / 2;
            double k = lower ? i : steps - 1 - i;
            double base = lower ? start32 : end32;
            out[i] = (float) ((lower ? 1.0 : -1.0) * (double) step * k + base);
        }
        return out;
    }

    /** {@code np.arange(start, stop, step)} for floats: {@code start}, {@code start + step}, then
     * {@code start + i * (a[1] - a[0])}. */
    static double[] arange(double start, double stop, double step) {
        int n = (int) Math.ceil((stop - start) / step);
        double[] out = new double[Math.max(n, 0)];
        double delta = (start + step) - start;
        for (int i = 0; i < out.length; i++) {
            out[i] = i == 0 ? start : i == 1 ? start + step : start + i * delta;
        }
        return out;
    }

    /** numpy's pairwise summation of float64 ({@code np.sum} on a contiguous array). */
    static double pairwiseSum(double[] a, int from, int n) {
        if (n < 8) {
            double res = 0.0;
            for (int i = 0; i < n; i++) {
                res += a[from + i];
            }
            return res;
        }
        if (n <= 128) {
            double[] r = new double[8];
            for (int j = 0; j < 8; j++) {
                r[j] = a[from + j];
            }
            int i = 8;
            for (; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += a[from + i + j];
                }
            }
            double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                res += a[from + i];
            }
            return res;
        }
        int n2 = (n / 2) - ((n / 2) % 8);
        return pairwiseSum(a, from, n2) + pairwiseSum(a, from + n2, n - n2);
    }

    /**
     * {@code np.interp(x, xp, fp)} at one point: {@code xp} ascending; left of the range {@code fp[0]},
     * right of it {@code fp[-1]}; {@code slope * (x - xp[j]) + fp[j]} inside.
     */
    static double interp(double x, double[] xp, double[] fp) {
        int n = xp.length;
        if (x < xp[0]) {
            return fp[0];
        }
        if (x >= xp[n - 1]) {
            return fp[n - 1];
        }
        int lo = 0, hi = n - 1; // xp[lo] <= x < xp[hi]
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (xp[mid] <= x) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if (xp[lo] == x) {
            return fp[lo];
        }
        double slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo]);
        double y = slope * (x - xp[lo]) + fp[lo];
        if (Double.isNaN(y)) {
            y = slope * (x - xp[lo + 1]) + fp[lo + 1];
            if (Double.isNaN(y) && fp[lo] == fp[lo + 1]) {
                y = fp[lo];
            }
        }
        return y;
    }
}
