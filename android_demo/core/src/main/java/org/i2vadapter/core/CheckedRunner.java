package org.i2vadapter.core;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@link StageRunner} that checks every call against the stage contract before and after running it,
 * so a wrong bundle or a wrong call fails with the contract's words
 * ({@code expected unet input 'sample' of shape (2, 4, 16, 32, 32), got ...}), not deep inside a runtime.
 */
public final class CheckedRunner implements StageRunner {
    private final Map<String, StageSpec> specs;
    private final StageRunner inner;

    public CheckedRunner(Map<String, StageSpec> specs, StageRunner inner) {
        this.specs = specs;
        this.inner = inner;
    }

    public StageSpec spec(String stage) {
        StageSpec s = specs.get(stage);
        if (s == null) {
            throw new IllegalArgumentException("unknown stage '" + stage + "': this runner has stages " + specs.keySet());
        }
        return s;
    }

    @Override
    public Map<String, Tensor> run(String stage, Map<String, Tensor> inputs) {
        StageSpec spec = spec(stage);
        spec.checkInputs(inputs);
        Map<String, Tensor> outputs = inner.run(stage, inputs);
        spec.checkOutputs(outputs);
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        for (String name : spec.outputNames()) {
            ordered.put(name, outputs.get(name));
        }
        return ordered;
    }

    @Override
    public void release(String stage) {
        inner.release(stage);
    }
}
