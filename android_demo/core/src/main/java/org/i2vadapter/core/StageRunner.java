package org.i2vadapter.core;

import java.util.Map;

/**
 * Runs one stage of the contract by name: named float buffers in, named float buffers out, keyed by
 * the manifest's tensor names ({@code sample}, {@code timestep}, ... -> {@code noise_pred}).
 *
 * <p>The phone implements it with LiteRT {@code CompiledModel}; the tests with plain Java functions.
 * {@link #release} lets the pipeline free a stage it no longer needs (the text and image encoders
 * before the UNet loop, the UNet before decoding), so a phone holds one large model at a time.
 */
public interface StageRunner {
    Map<String, Tensor> run(String stage, Map<String, Tensor> inputs);

    /** Free what {@code stage} holds (models, buffers); it is loaded again if run later. Default: nothing. */
    default void release(String stage) {}
}
