package org.i2vadapter.core;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The inputs and outputs a {@code .tflite} file declares in one signature (names, shapes, dtypes), read
 * straight from its flatbuffer ({@code tflite/converter/schema/schema.fbs}: {@code Model.signature_defs},
 * {@code SubGraph.tensors}), without a runtime and without touching the weights: a few pages of a memory-mapped
 * file. {@link StageSpec#checkDeclared} compares them with the manifest's stage contract, so a model file of
 * another shape is refused before any stage runs.
 */
public final class ModelIo {
    /** One declared tensor: its shape (-1 for a dynamic dimension) and dtype as numpy names it. */
    public static final class Declared {
        private final int[] shape;
        public final String dtype;

        public Declared(int[] shape, String dtype) {
            this.shape = shape.clone();
            this.dtype = dtype;
        }

        public int[] shape() {
            return shape.clone();
        }
    }

    // schema.fbs field indices (a table's n-th field, deprecated ones counted)
    private static final int MODEL_SUBGRAPHS = 2, MODEL_SIGNATURE_DEFS = 7;
    private static final int SUBGRAPH_TENSORS = 0;
    private static final int TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_SHAPE_SIGNATURE = 7;
    private static final int SIGNATURE_INPUTS = 0, SIGNATURE_OUTPUTS = 1, SIGNATURE_KEY = 2, SIGNATURE_SUBGRAPH = 4;
    private static final int MAP_NAME = 0, MAP_TENSOR_INDEX = 1;
    // schema.fbs `enum TensorType`, by value, as numpy names the dtypes (null: no numpy name)
    private static final String[] DTYPES = {"float32", "float16", "int32", "uint8", "int64", null, "bool", "int16",
        "complex64", "int8", "float64", "complex128", "uint64", null, null, "uint32", "uint16"};

    public final Map<String, Declared> inputs;
    public final Map<String, Declared> outputs;

    public ModelIo(Map<String, Declared> inputs, Map<String, Declared> outputs) {
        this.inputs = Collections.unmodifiableMap(new LinkedHashMap<>(inputs));
        this.outputs = Collections.unmodifiableMap(new LinkedHashMap<>(outputs));
    }

    /** The signature {@code signature} of a {@code .tflite} file; {@link BundleException} naming the file otherwise. */
    public static ModelIo readTflite(File file, String signature) throws BundleException {
        try (RandomAccessFile raf = new RandomAccessFile(file, "r"); FileChannel channel = raf.getChannel()) {
            long size = Math.min(channel.size(), Integer.MAX_VALUE); // the flatbuffer itself is under 2 GB
            ByteBuffer bb = channel.map(FileChannel.MapMode.READ_ONLY, 0, size).order(ByteOrder.LITTLE_ENDIAN);
            return new Reader(bb, file).signature(signature);
        } catch (IOException e) {
            throw new BundleException(file + ": cannot read the model file: " + e.getMessage(), e);
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            throw new BundleException(file + ": not a TFLite flatbuffer this reader understands (" + e + ")", e);
        }
    }

    /** A minimal flatbuffer table reader: offsets, vtables, vectors, strings. */
    private static final class Reader {
        private final ByteBuffer bb;
        private final File file;

        Reader(ByteBuffer bb, File file) {
            this.bb = bb;
            this.file = file;
        }

        ModelIo signature(String key) throws BundleException {
            if (bb.limit() < 8 || !"TFL3".equals(new String(bytes(4, 4), StandardCharsets.US_ASCII))) {
                throw new BundleException(file + ": expected a TFLite model (file identifier TFL3), found another file");
            }
            int model = bb.getInt(0);
            int defs = field(model, MODEL_SIGNATURE_DEFS);
            StringBuilder found = new StringBuilder();
            for (int i = 0; defs != 0 && i < length(ref(defs)); i++) {
                int def = element(ref(defs), i);
                String name = string(field(def, SIGNATURE_KEY));
                if (name.equals(key)) {
                    int subgraph = element(ref(field(model, MODEL_SUBGRAPHS)), uint(field(def, SIGNATURE_SUBGRAPH)));
                    int tensors = ref(field(subgraph, SUBGRAPH_TENSORS));
                    return new ModelIo(tensorMap(field(def, SIGNATURE_INPUTS), tensors),
                            tensorMap(field(def, SIGNATURE_OUTPUTS), tensors));
                }
                found.append(found.length() > 0 ? ", " : "").append(name);
            }
            throw new BundleException(file + ": expected signature '" + key + "', the model has [" + found + "]");
        }

        private Map<String, Declared> tensorMap(int mapField, int tensors) {
            Map<String, Declared> out = new LinkedHashMap<>();
            for (int i = 0; mapField != 0 && i < length(ref(mapField)); i++) {
                int map = element(ref(mapField), i);
                int tensor = element(tensors, uint(field(map, MAP_TENSOR_INDEX)));
                int signature = field(tensor, TENSOR_SHAPE_SIGNATURE);
                int[] shape = ints(signature != 0 ? signature : field(tensor, TENSOR_SHAPE));
                int type = field(tensor, TENSOR_TYPE);
                int code = type == 0 ? 0 : bb.get(type); // FLOAT32 is the default
                String dtype = code >= 0 && code < DTYPES.length && DTYPES[code] != null ? DTYPES[code] : "tflite type " + code;
                out.put(string(field(map, MAP_NAME)), new Declared(shape, dtype));
            }
            return out;
        }

        /** Absolute position of field {@code index} of the table at {@code table}; 0 when absent. */
        private int field(int table, int index) {
            int vtable = table - bb.getInt(table);
            int entry = 4 + 2 * index;
            if (entry >= Short.toUnsignedInt(bb.getShort(vtable))) {
                return 0;
            }
            int offset = Short.toUnsignedInt(bb.getShort(vtable + entry));
            return offset == 0 ? 0 : table + offset;
        }

        private int ref(int position) {
            return position + bb.getInt(position);
        }

        private int length(int vector) {
            return bb.getInt(vector);
        }

        /** The table at index {@code i} of a vector of tables. */
        private int element(int vector, int i) {
            if (i < 0 || i >= length(vector)) {
                throw new IndexOutOfBoundsException("index " + i + " of a vector of " + length(vector));
            }
            return ref(vector + 4 + 4 * i);
        }

        private int uint(int position) {
            return position == 0 ? 0 : bb.getInt(position);
        }

        private int[] ints(int vectorField) {
            if (vectorField == 0) {
                return new int[0];
            }
            int vector = ref(vectorField);
            int[] out = new int[length(vector)];
            for (int i = 0; i < out.length; i++) {
                out[i] = bb.getInt(vector + 4 + 4 * i);
            }
            return out;
        }

        private String string(int stringField) {
            if (stringField == 0) {
                return "";
            }
            int s = ref(stringField);
            return new String(bytes(s + 4, bb.getInt(s)), StandardCharsets.UTF_8);
        }

        private byte[] bytes(int position, int count) {
            byte[] out = new byte[count];
            for (int i = 0; i < count; i++) {
                out[i] = bb.get(position + i);
            }
            return out;
        }
    }
}
