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
        /** How the runtime computes this input from the timestep ({@code timestep_embedding}); null for others. */
        public final TimestepEmbedding embedding;

        public TensorSpec(String name, int[] shape, String dtype) {
            this(name, shape, dtype, null);
        }

        public TensorSpec(String name, int[] shape, String dtype, TimestepEmbedding embedding) {
            this.name = name;
            this.shape = shape.clone();
            this.dtype = dtype;
            this.embedding = embedding;
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

    /**
     * What a model file declares ({@link ModelIo}) against this contract, before the model runs: the input and
     * output names, then each tensor's shape (a dynamic dimension, -1, matches any) and dtype. A single-output
     * stage takes the file's single output whatever its name. Throws {@code stage unet file unet.tflite does
     * not match the manifest's stage contract: input 'sample' expected (2, 4, 8, 16, 16) float32, the file
     * declares (2, 4, 4, 16, 16) float32}, as {@code runtime_py.runners} says it.
     */
    public void checkDeclared(String file, ModelIo io) throws BundleException {
        Map<String, ModelIo.Declared> declaredOutputs = io.outputs;
        if (outputs.size() == 1 && declaredOutputs.size() == 1 && !declaredOutputs.containsKey(outputs.get(0).name)) {
            declaredOutputs = Collections.singletonMap(outputs.get(0).name, declaredOutputs.values().iterator().next());
        }
        checkDeclaredNames(file, "input", inputNames(), io.inputs);
        checkDeclaredNames(file, "output", outputNames(), declaredOutputs);
        for (TensorSpec t : inputs) {
            ModelIo.Declared d = io.inputs.get(t.name);
            checkDeclaredTensor(file, "input", t.name, d.shape(), d.dtype);
        }
        for (TensorSpec t : outputs) {
            ModelIo.Declared d = declaredOutputs.get(t.name);
            checkDeclaredTensor(file, "output", t.name, d.shape(), d.dtype);
        }
    }

    /** One declared tensor against the contract ({@code shape} null or {@code dtype} null: not compared). */
    public void checkDeclaredTensor(String file, String role, String tensor, int[] shape, String dtype)
            throws BundleException {
        TensorSpec t = tensor(tensor);
        boolean sameShape = shape == null || shape.length == t.shape.length;
        for (int i = 0; sameShape && shape != null && i < shape.length; i++) {
            sameShape = shape[i] == -1 || shape[i] == t.shape[i];
        }
        if (!sameShape || (dtype != null && !dtype.equals(t.dtype))) {
            throw new BundleException("stage " + name + " file " + file + " does not match the manifest's stage contract: "
                    + role + " '" + tensor + "' expected " + Tensor.shapeString(t.shape) + " " + t.dtype
                    + ", the file declares " + (shape == null ? "an unknown shape" : declaredShape(shape)) + " "
                    + (dtype == null ? "of unknown dtype" : dtype));
        }
    }

    private void checkDeclaredNames(String file, String role, List<String> expected, Map<String, ModelIo.Declared> found)
            throws BundleException {
        if (!new TreeSet<>(expected).equals(new TreeSet<>(found.keySet()))) {
            throw new BundleException(file + ": expected " + name + " " + role + "s " + expected
                    + " (the stage contract), the model has " + new ArrayList<>(found.keySet()));
        }
    }

    private static String declaredShape(int[] shape) {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i > 0 ? ", " : "").append(shape[i] == -1 ? "?" : String.valueOf(shape[i]));
        }
        return sb.append(shape.length == 1 ? ",)" : ")").toString();
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
