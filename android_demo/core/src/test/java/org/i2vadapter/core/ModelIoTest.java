package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.File;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model file's declared inputs and outputs, read from the TFLite flatbuffer, against the stage contract
 * before anything runs. {@code models/toy.tflite} is litert-torch's conversion of
 * {@code forward(x (1, 3) float32, ids (1, 4) int32) -> {"z": 2 x + sum(ids)} (1, 3) float32}, signature
 * {@code serving_default} (1.4 KB).
 */
class ModelIoTest {
    @TempDir
    Path tmp;

    private static File toy() throws URISyntaxException {
        return new File(ModelIoTest.class.getResource("/models/toy.tflite").toURI());
    }

    private static StageSpec toySpec(int[] x, String idsDtype) {
        return new StageSpec("toy",
                Arrays.asList(new StageSpec.TensorSpec("x", x, "float32"), new StageSpec.TensorSpec("ids", new int[] {1, 4}, idsDtype)),
                Collections.singletonList(new StageSpec.TensorSpec("z", new int[] {1, 3}, "float32")));
    }

    @Test
    void readsTheSignaturesTensors() throws Exception {
        ModelIo io = ModelIo.readTflite(toy(), "serving_default");
        assertEquals(Arrays.asList("ids", "x"), new java.util.ArrayList<>(io.inputs.keySet()));
        assertArrayEquals(new int[] {1, 3}, io.inputs.get("x").shape());
        assertEquals("float32", io.inputs.get("x").dtype);
        assertArrayEquals(new int[] {1, 4}, io.inputs.get("ids").shape());
        assertEquals("int32", io.inputs.get("ids").dtype);
        assertArrayEquals(new int[] {1, 3}, io.outputs.get("z").shape());
        toySpec(new int[] {1, 3}, "int32").checkDeclared("toy.tflite", io);
    }

    @Test
    void anotherShapeOrDtypeIsOneMessage() throws Exception {
        ModelIo io = ModelIo.readTflite(toy(), "serving_default");
        BundleException shape = assertThrows(BundleException.class,
                () -> toySpec(new int[] {1, 4}, "int32").checkDeclared("toy.tflite", io));
        assertEquals("stage toy file toy.tflite does not match the manifest's stage contract: input 'x' expected (1, 4)"
                + " float32, the file declares (1, 3) float32", shape.getMessage());
        BundleException dtype = assertThrows(BundleException.class,
                () -> toySpec(new int[] {1, 3}, "float32").checkDeclared("toy.tflite", io));
        assertEquals("stage toy file toy.tflite does not match the manifest's stage contract: input 'ids' expected"
                + " (1, 4) float32, the file declares (1, 4) int32", dtype.getMessage());
        StageSpec decoder = Manifest.load(Golden.bundle()).stage("vae_decoder");
        BundleException names = assertThrows(BundleException.class, () -> decoder.checkDeclared("toy.tflite", io));
        assertEquals("toy.tflite: expected vae_decoder inputs [latent] (the stage contract), the model has [ids, x]",
                names.getMessage());
    }

    @Test
    void otherFilesAndSignaturesAreNamed() throws Exception {
        BundleException signature = assertThrows(BundleException.class, () -> ModelIo.readTflite(toy(), "decode"));
        assertEquals(toy() + ": expected signature 'decode', the model has [serving_default]", signature.getMessage());
        File text = tmp.resolve("unet.tflite").toFile();
        Files.write(text.toPath(), "not a model at all".getBytes("UTF-8"));
        BundleException other = assertThrows(BundleException.class, () -> ModelIo.readTflite(text, "serving_default"));
        assertEquals(text + ": expected a TFLite model (file identifier TFL3), found another file", other.getMessage());
    }

    @Test
    void theManifestChecksEveryModelFileOfATarget() throws Exception {
        File dir = Golden.copyBundle(tmp.resolve("bundle"));
        Manifest manifest = Manifest.load(dir);
        // The golden bundle's stage files are text stand-ins: the first stage's is named.
        BundleException err = assertThrows(BundleException.class, () -> manifest.checkModels("tflite", "serving_default"));
        assertEquals(new File(dir, "text_encoder.tflite") + ": expected a TFLite model (file identifier TFL3), found"
                + " another file", err.getMessage());
        manifest.checkModels("tflite_mediatek", "serving_default"); // no stage has it: nothing to check
    }
}
