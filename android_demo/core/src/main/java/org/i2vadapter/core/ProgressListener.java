package org.i2vadapter.core;

/** Progress of one generation, called on the pipeline's thread. Both methods default to doing nothing. */
public interface ProgressListener {
    /** A stage is about to run ({@code text_encoder}, {@code vae_encoder}, {@code unet}, {@code vae_decoder}). */
    default void onStage(String stage) {}

    /** Denoising step {@code step} of {@code total} (1-based) at timestep {@code timestep} is done. */
    default void onStep(int step, int total, double timestep) {}
}
