package org.i2vadapter.core;

import java.util.Map;

/**
 * Frame Similarity Prior settings ({@code i2v_core.config.FSPConfig}): keep-mask probability, Gaussian
 * kernel size and sigma in latent space, and strength (1: start at the first timestep of the schedule).
 */
public final class FspConfig {
    public final boolean enabled;
    public final double maskP;
    public final int blurKernel;
    public final double blurSigma;
    public final double strength;

    public FspConfig(boolean enabled, double maskP, int blurKernel, double blurSigma, double strength) {
        this.enabled = enabled;
        this.maskP = maskP;
        this.blurKernel = blurKernel;
        this.blurSigma = blurSigma;
        this.strength = strength;
        verify();
    }

    /** The official inference defaults: p 0.5, kernel 9, sigma 18, strength 1. */
    public static FspConfig defaults() {
        return new FspConfig(true, 0.5, 9, 18.0, 1.0);
    }

    public static FspConfig fromJson(Map<String, Object> m) {
        FspConfig d = defaults();
        return new FspConfig(
                m.containsKey("enabled") ? Json.bool(m.get("enabled"), "fsp.enabled") : d.enabled,
                m.containsKey("mask_p") ? Json.number(m.get("mask_p"), "fsp.mask_p") : d.maskP,
                m.containsKey("blur_kernel") ? Json.integer(m.get("blur_kernel"), "fsp.blur_kernel") : d.blurKernel,
                m.containsKey("blur_sigma") ? Json.number(m.get("blur_sigma"), "fsp.blur_sigma") : d.blurSigma,
                m.containsKey("strength") ? Json.number(m.get("strength"), "fsp.strength") : d.strength);
    }

    private void verify() {
        if (!(maskP >= 0 && maskP <= 1)) {
            throw new IllegalArgumentException("FSP mask_p must be in [0, 1], got " + maskP);
        }
        if (blurKernel < 1 || blurKernel % 2 == 0) {
            throw new IllegalArgumentException("FSP blur_kernel must be a positive odd integer, got " + blurKernel);
        }
        if (!(blurSigma > 0)) {
            throw new IllegalArgumentException("FSP blur_sigma must be > 0, got " + blurSigma);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("FSP strength must be in (0, 1], got " + strength);
        }
    }
}
