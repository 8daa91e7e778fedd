package org.i2vadapter.core;

import java.util.Arrays;

/**
 * LAB colour matching of generated frames to a reference (frame 0 by default), twin of
 * {@code i2v_core.colour}: each frame's CIE LAB {@code a} and {@code b} channels are histogram-matched
 * to the reference's, lightness is kept. sRGB (IEC 61966-2-1), D65 white, float64 arithmetic, LAB
 * values rounded to float32 as Python stores them.
 */
public final class ColourMatch {
    private ColourMatch() {}

    /** Linear sRGB -> CIE XYZ (D65), IEC 61966-2-1. */
    static final double[][] SRGB_TO_XYZ = {
        {0.4124564, 0.3575761, 0.1804375},
        {0.2126729, 0.7151522, 0.0721750},
        {0.0193339, 0.1191920, 0.9503041},
    };
    /** Its inverse, as {@code numpy.linalg.inv} computes it (the golden test checks Python's values). */
    static final double[][] XYZ_TO_SRGB = {
        {3.2404548360214087, -1.5371388501025751, -0.498531546868481},
        {-0.9692663898756538, 1.876010928842491, 0.041556082346673545},
        {0.05564341960421367, -0.20402585426769818, 1.057225162457929},
    };
    /** The white point as the image of RGB (1, 1, 1), so pure white has a = b = 0. */
    static final double[] WHITE = new double[3];
    private static final double EPS = 6.0 / 29.0;
    private static final double EPS3 = Math.pow(EPS, 3);
    private static final double EPS2X3 = 3 * (EPS * EPS);

    static {
        for (int r = 0; r < 3; r++) {
            WHITE[r] = (SRGB_TO_XYZ[r][0] + SRGB_TO_XYZ[r][1]) + SRGB_TO_XYZ[r][2];
        }
    }

    /** sRGB -> LAB of every pixel: {@code (H*W*3)} interleaved float32, L in [0, 100]. */
    public static float[] rgbToLab(RgbImage image) {
        int n = image.pixels();
        float[] out = new float[n * 3];
        double[] lin = new double[3];
        double[] f = new double[3];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < 3; c++) {
                double x = image.get(i, c) / 255.0;
                lin[c] = x <= 0.04045 ? x / 12.92 : Math.pow((Math.max(x, 0.04045) + 0.055) / 1.055, 2.4);
            }
            for (int r = 0; r < 3; r++) {
                double t = (lin[0] * SRGB_TO_XYZ[r][0] + lin[1] * SRGB_TO_XYZ[r][1] + lin[2] * SRGB_TO_XYZ[r][2]) / WHITE[r];
                f[r] = t > EPS3 ? Math.cbrt(t) : t / EPS2X3 + 4.0 / 29.0;
            }
            out[i * 3] = (float) (116.0 * f[1] - 16.0);
            out[i * 3 + 1] = (float) (500.0 * (f[0] - f[1]));
            out[i * 3 + 2] = (float) (200.0 * (f[1] - f[2]));
        }
        return out;
    }

    /** LAB -> sRGB uint8; out-of-gamut colours are clipped. */
    public static RgbImage labToRgb(float[] lab, int width, int height) {
        int n = width * height;
        if (lab.length != n * 3) {
            throw new IllegalArgumentException("expected " + n * 3 + " LAB values for " + width + "x" + height + ", got " + lab.length);
        }
        byte[] out = new byte[n * 3];
        double[] t = new double[3];
        for (int i = 0; i < n; i++) {
            double fy = (lab[i * 3] + 16.0) / 116.0;
            double[] f = {fy + lab[i * 3 + 1] / 500.0, fy, fy - lab[i * 3 + 2] / 200.0};
            for (int c = 0; c < 3; c++) {
                t[c] = (f[c] > EPS ? Math.pow(f[c], 3) : EPS2X3 * (f[c] - 4.0 / 29.0)) * WHITE[c];
            }
            for (int r = 0; r < 3; r++) {
                double linear = t[0] * XYZ_TO_SRGB[r][0] + t[1] * XYZ_TO_SRGB[r][1] + t[2] * XYZ_TO_SRGB[r][2];
                linear = Math.max(0.0, Math.min(1.0, linear));
                double s = linear <= 0.0031308 ? 12.92 * linear : 1.055 * Math.pow(linear, 1 / 2.4) - 0.055;
                out[i * 3 + r] = (byte) (int) Math.rint(Math.max(0.0, Math.min(1.0, s)) * 255.0);
            }
        }
        return new RgbImage(width, height, out);
    }

    /** Distinct values (ascending) and the fraction of elements at or below each: a value CDF. */
    static final class Cdf {
        final double[] values;
        final double[] fractions;

        Cdf(float[] channel) {
            float[] sorted = channel.clone();
            Arrays.sort(sorted);
            double[] v = new double[sorted.length];
            double[] q = new double[sorted.length];
            int k = -1;
            for (int i = 0; i < sorted.length; i++) {
                if (k < 0 || sorted[i] != (float) v[k]) { // -0.0 == 0.0, as np.unique
                    v[++k] = sorted[i];
                }
                q[k] = (double) (i + 1) / sorted.length;
            }
            values = Arrays.copyOf(v, k + 1);
            fractions = Arrays.copyOf(q, k + 1);
        }

        /** Each value of {@code source} mapped to the reference value at the same cumulative fraction. */
        float[] match(float[] source) {
            Cdf own = new Cdf(source);
            float[] out = new float[source.length];
            for (int i = 0; i < source.length; i++) {
                int j = Arrays.binarySearch(own.values, source[i]);
                if (j < 0) { // -0.0 against a stored 0.0 (or the reverse)
                    j = Arrays.binarySearch(own.values, source[i] == 0f ? 0.0 : source[i]);
                    j = j < 0 ? Arrays.binarySearch(own.values, -0.0) : j;
                }
                out[i] = (float) NumpyCompat.interp(own.fractions[j], fractions, values);
            }
            return out;
        }
    }

    /**
     * Histogram-match each frame's LAB {@code channels} (some of "L", "a", "b") to {@code reference}
     * (default {@code frames[0]}). Frames equal to the reference are returned unchanged.
     */
    public static RgbImage[] match(RgbImage[] frames, RgbImage reference, String... channels) {
        if (frames.length == 0) {
            throw new IllegalArgumentException("expected at least one frame to colour-match, got none");
        }
        RgbImage ref = reference == null ? frames[0] : reference;
        boolean[] use = channelMask(channels.length == 0 ? new String[] {"a", "b"} : channels);
        float[] refLab = rgbToLab(ref);
        Cdf[] cdfs = new Cdf[3];
        for (int c = 0; c < 3; c++) {
            cdfs[c] = use[c] ? new Cdf(channel(refLab, c)) : null;
        }
        RgbImage[] out = new RgbImage[frames.length];
        for (int k = 0; k < frames.length; k++) {
            RgbImage frame = frames[k];
            if (frame.sameSize(ref) && Arrays.equals(frame.bytes(), ref.bytes())) {
                out[k] = frame;
                continue;
            }
            float[] lab = rgbToLab(frame);
            for (int c = 0; c < 3; c++) {
                if (use[c]) {
                    float[] matched = cdfs[c].match(channel(lab, c));
                    for (int i = 0; i < matched.length; i++) {
                        lab[i * 3 + c] = matched[i];
                    }
                }
            }
            out[k] = labToRgb(lab, frame.width, frame.height);
        }
        return out;
    }

    private static float[] channel(float[] lab, int c) {
        float[] out = new float[lab.length / 3];
        for (int i = 0; i < out.length; i++) {
            out[i] = lab[i * 3 + c];
        }
        return out;
    }

    private static boolean[] channelMask(String[] channels) {
        boolean[] use = new boolean[3];
        for (String ch : channels) {
            int i = "Lab".indexOf(ch);
            if (ch.length() != 1 || i < 0) {
                throw new IllegalArgumentException("expected LAB channels from (L, a, b), got " + Arrays.toString(channels));
            }
            use[i] = true;
        }
        return use;
    }
}
