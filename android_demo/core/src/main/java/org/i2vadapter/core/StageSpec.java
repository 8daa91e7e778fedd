package org.i2vadapter.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * One stage of the contract ({@code i2v_core/stages.py}) as the manifest stores it: the stage name
 * and its named inputs and outputs, each with a static shape and a dtype, in call order.
 */
public final class StageSpec {
    /** One named tensor of a stage. */
    public static final class TensorSpec {
        public final String name;
        private final int[] shape;
        public final String dtype;

        public TensorSpec(String name, int[] shape, String dtype) {
            this.name = name;
            this.shape = shape.clone();
            this.dtype = dtype;
        }

        public int[] shape() {
            return shape.clone();
        }

        public long numel() {
            return Tensor.numel(shape);
        }

        /** Throws {@code expected unet input 'sample' of shape (...), got (...)} on a mismatch. */
        public void check(Tensor value, String stage, String role) {
            if (!value.hasShape(shape)) {
                throw new IllegalArgumentException("expected " + stage + " " + role + " '" + name + "' of shape "
                        + Tensor.shapeString(shape) + ", got " + Tensor.shapeString(value.shape()));
            }
        }
    }

    public final String name;
    public final List<TensorSpec> inputs;
    public final List<TensorSpec> outputs;

    public StageSpec(String name, List<TensorSpec> inputs, List<TensorSpec> outputs) {
        this.name = name;
        this.inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
        this.outputs = Collections.unmodifiableList(new ArrayList<>(outputs));
    }

    public List<String> inputNames() {
        return names(inputs);
    }

    public List<String> outputNames() {
        return names(outputs);
    }

    private static List<String> names(List<TensorSpec> specs) {
        List<String> out = new ArrayList<>();
        for (TensorSpec t : specs) {
            out.add(t.name);
        }
        return out;
    }

    /** The input or output named {@code tensor}; error if the stage has none of that name. */
    public TensorSpec tensor(String tensor) {
        for (List<TensorSpec> list : Arrays.asList(inputs, outputs)) {
            for (TensorSpec t : list) {
                if (t.name.equals(tensor)) {
                    return t;
                }
            }
        }
        throw new IllegalArgumentException(name + " has no tensor '" + tensor + "': inputs " + inputNames()
                + ", outputs " + outputNames());
    }

    /** Names first (missing, unexpected), then each tensor's shape. */
    public void checkInputs(Map<String, Tensor> feeds) {
        checkNames(feeds, inputNames(), "inputs");
        for (TensorSpec t : inputs) {
            t.check(feeds.get(t.name), name, "input");
        }
    }

    /** Every output present with its shape (extra outputs are ignored, as in runtime_py). */
    public void checkOutputs(Map<String, Tensor> outputsFound) {
        for (TensorSpec t : outputs) {
            if (!outputsFound.containsKey(t.name)) {
                throw new IllegalArgumentException(name + " output '" + t.name + "' missing, got "
                        + new TreeSet<>(outputsFound.keySet()));
            }
            t.check(outputsFound.get(t.name), name, "output");
        }
    }

    private void checkNames(Map<String, Tensor> feeds, List<String> expected, String role) {
        List<String> missing = new ArrayList<>();
        for (String n : expected) {
            if (!feeds.containsKey(n)) {
                missing.add(n);
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String n : feeds.keySet()) {
            if (!expected.contains(n)) {
                unexpected.add(n);
            }
        }
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            throw new IllegalArgumentException(name + " expects " + role + " " + expected + ", got "
                    + new TreeSet<>(feeds.keySet()) + " (missing " + missing + ", unexpected " + unexpected + ")");
        }
    }
}
