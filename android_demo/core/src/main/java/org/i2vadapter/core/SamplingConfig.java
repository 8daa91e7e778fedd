package org.i2vadapter.core;

import java.util.Map;

/** Sampling defaults of a bundle ({@code i2v_core.config.SamplingConfig}). */
public final class SamplingConfig {
    public final int numInferenceSteps;
    public final double guidanceScale;
    public final String negativePrompt;
    public final boolean colorMatch;
    public final int fps;

    public SamplingConfig(int numInferenceSteps, double guidanceScale, String negativePrompt, boolean colorMatch, int fps) {
        this.numInferenceSteps = numInferenceSteps;
        this.guidanceScale = guidanceScale;
        this.negativePrompt = negativePrompt;
        this.colorMatch = colorMatch;
        this.fps = fps;
    }

    /** The official inference defaults: 25 DDIM steps, guidance 7.5, colour matching on, 8 fps. */
    public static SamplingConfig defaults() {
        return new SamplingConfig(25, 7.5, "", true, 8);
    }

    public static SamplingConfig fromJson(Map<String, Object> m) {
        SamplingConfig d = defaults();
        return new SamplingConfig(
                m.containsKey("num_inference_steps") ? Json.integer(m.get("num_inference_steps"), "sampling.num_inference_steps") : d.numInferenceSteps,
                m.containsKey("guidance_scale") ? Json.number(m.get("guidance_scale"), "sampling.guidance_scale") : d.guidanceScale,
                m.containsKey("negative_prompt") ? Json.string(m.get("negative_prompt"), "sampling.negative_prompt") : d.negativePrompt,
                m.containsKey("color_match") ? Json.bool(m.get("color_match"), "sampling.color_match") : d.colorMatch,
                m.containsKey("fps") ? Json.integer(m.get("fps"), "sampling.fps") : d.fps);
    }
}
