package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestTest {
    @TempDir
    Path tmp;

    private static Map<String, Object> manifestJson() throws IOException {
        return Json.object(Json.parse(new File(Golden.bundle(), Manifest.FILE_NAME)), "manifest");
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> io(Map<String, Object> root, String stage) {
        return (Map<String, Object>) ((Map<String, Object>) ((Map<String, Object>) root.get("stages")).get(stage)).get("io");
    }

    /** Set the shape of {@code tensor} of {@code stage} in a parsed manifest. */
    @SuppressWarnings("unchecked")
    private static void setShape(Map<String, Object> root, String stage, String tensor, long... shape) {
        for (String role : new String[] {"inputs", "outputs"}) {
            for (Object t : (List<Object>) io(root, stage).get(role)) {
                Map<String, Object> m = (Map<String, Object>) t;
                if (tensor.equals(m.get("name"))) {
                    Object[] dims = new Object[shape.length];
                    for (int i = 0; i < shape.length; i++) {
                        dims[i] = shape[i];
                    }
                    m.put("shape", Arrays.asList(dims));
                }
            }
        }
    }

    private static String failure(Map<String, Object> root) {
        return assertThrows(BundleException.class, () -> Manifest.fromJson(Golden.bundle(), root)).getMessage();
    }

    @Test
    void readsTheGoldenBundle() throws Exception {
        Manifest m = Manifest.load(Golden.bundle());
        m.verifyFiles();
        assertEquals(Arrays.asList("text_encoder", "vae_encoder", "unet", "vae_decoder"), Arrays.asList(m.stages().keySet().toArray()));
        assertEquals("(2, 4, 3, 4, 4)", Tensor.shapeString(m.stage("unet").tensor("sample").shape()));
        assertEquals(Arrays.asList("sample", "timestep", "encoder_hidden_states"), m.stage("unet").inputNames());
        assertEquals(3, m.numFrames());
        assertEquals("tiny", m.presetName());
        assertEquals(5, m.fspConfig().blurKernel);
        assertEquals(18.0, m.fspConfig().blurSigma);
        assertEquals(4, m.samplingConfig().numInferenceSteps);
        assertEquals(7.5, m.samplingConfig().guidanceScale);
        assertEquals(1000, m.schedulerConfig().numTrainTimesteps);
        assertEquals(0.00085, m.schedulerConfig().betaStart);
        assertEquals(1, m.schedulerConfig().stepsOffset);
        assertEquals(new File(Golden.bundle(), "tokenizer"), m.tokenizerDirectory());
        List<Manifest.ModelFile> files = m.modelFiles("unet", "tflite");
        assertEquals(1, files.size());
        assertEquals("unet.tflite", files.get(0).file);
        assertEquals(Arrays.asList("tflite"), m.targets("vae_decoder"));
    }

    @Test
    void missingStageIsNamed() throws Exception {
        Map<String, Object> root = manifestJson();
        Json.object(root.get("stages"), "stages").remove("vae_encoder");
        assertEquals("expected stages [text_encoder, vae_encoder, unet, vae_decoder], missing [vae_encoder]"
                + " (found [text_encoder, unet, vae_decoder])", failure(root));
    }

    @Test
    void badShapesAreNamedWithExpectedAndFound() throws Exception {
        Map<String, Object> root = manifestJson();
        setShape(root, "unet", "sample", 2, 4, 5, 4, 4);
        setShape(root, "unet", "noise_pred", 2, 4, 5, 4, 4);
        assertEquals("preset has 3 frames but the unet stage takes 5", failure(root));

        root = manifestJson();
        setShape(root, "vae_decoder", "latent", 1, 4, 8, 8);
        assertEquals("expected vae_decoder input 'latent' of shape (1, 4, 4, 4), got (1, 4, 8, 8)", failure(root));

        root = manifestJson();
        setShape(root, "unet", "encoder_hidden_states", 2, 77, 64);
        assertEquals("expected unet input 'encoder_hidden_states' of shape (2, 77, 32), got (2, 77, 64)", failure(root));

        root = manifestJson();
        setShape(root, "unet", "sample", 4, 4, 3, 4, 4);
        assertTrue(failure(root).startsWith("expected unet input 'sample' of shape (2, C, F, h, w)"));

        root = manifestJson();
        setShape(root, "text_encoder", "input_ids", 1, 0);
        assertEquals("expected positive dimensions for text_encoder input 'input_ids', got shape [1, 0]", failure(root));
    }

    @Test
    void schemaAndStructureErrors() throws Exception {
        Map<String, Object> root = manifestJson();
        root.put("schema_version", 2L);
        assertEquals("manifest.json: expected schema_version in [1, 1], found 2", failure(root));
        root = manifestJson();
        root.remove("files");
        assertEquals("manifest.json: expected a 'files' entry in manifest.json, not found", failure(root));
        BundleException e = assertThrows(BundleException.class, () -> Manifest.load(tmp.toFile()));
        assertEquals("expected manifest.json in bundle " + tmp + ", not found", e.getMessage());
        e = assertThrows(BundleException.class, () -> Manifest.load(new File(tmp.toFile(), "nope")));
        assertTrue(e.getMessage().startsWith("expected a bundle directory, found nothing at "));
        Files.write(tmp.resolve("manifest.json"), "{\"schema_version\": 1,".getBytes(StandardCharsets.UTF_8));
        e = assertThrows(BundleException.class, () -> Manifest.load(tmp.toFile()));
        assertTrue(e.getMessage().contains("JSON: expected a string key at offset 21"), e.getMessage());
        BundleException target = assertThrows(BundleException.class, () -> Manifest.load(Golden.bundle()).modelFiles("unet", "onnx"));
        assertEquals("stage unet has no 'onnx' export; it has [tflite]", target.getMessage());
    }

    @Test
    void fileChecksNameTheFileAndBothHashes() throws Exception {
        File dir = Golden.copyBundle(tmp.resolve("bundle"));
        Manifest.load(dir).verifyFiles();
        File unet = new File(dir, "unet.tflite");
        byte[] bytes = Files.readAllBytes(unet.toPath());
        bytes[0] ^= 1; // same size, other content
        Files.write(unet.toPath(), bytes);
        String msg = assertThrows(BundleException.class, () -> Manifest.load(dir).verifyFiles()).getMessage();
        assertTrue(msg.startsWith(unet + ": sha256 mismatch: manifest has 895baaace089"), msg);
        assertTrue(msg.endsWith("file has " + Manifest.sha256(unet)), msg);

        Files.write(unet.toPath(), Arrays.copyOf(bytes, bytes.length + 1));
        msg = assertThrows(BundleException.class, () -> Manifest.load(dir).verifyFiles()).getMessage();
        assertEquals(unet + ": expected " + bytes.length + " bytes (manifest), found " + (bytes.length + 1), msg);

        assertTrue(unet.delete());
        Files.write(new File(dir, "extra.bin").toPath(), new byte[] {1});
        msg = assertThrows(BundleException.class, () -> Manifest.load(dir).verifyFiles()).getMessage();
        assertEquals("bundle " + dir + " does not match its manifest: missing files [unet.tflite], files not in the"
                + " manifest [extra.bin]", msg);
    }

    @Test
    @SuppressWarnings("unchecked")
    void chunkedUnetListsItsChunksInOrder() throws Exception {
        Map<String, Object> root = manifestJson();
        Map<String, Object> tflite = (Map<String, Object>) ((Map<String, Object>) ((Map<String, Object>)
                ((Map<String, Object>) root.get("stages")).get("unet")).get("targets")).get("tflite");
        Map<String, Object> first = new LinkedHashMap<>();
        first.put("name", "unet.chunk0");
        first.put("file", "unet.chunk0.tflite");
        first.put("io", Json.parse("{\"inputs\": [{\"name\": \"sample\", \"shape\": [2, 4, 3, 4, 4]}],"
                + " \"outputs\": [{\"name\": \"hidden\", \"shape\": [6, 8, 4, 4]}]}"));
        Map<String, Object> second = new LinkedHashMap<>(first);
        second.put("name", "unet.chunk1");
        second.put("file", "unet.chunk1.tflite");
        second.put("io", Json.parse("{\"inputs\": [{\"name\": \"hidden\", \"shape\": [6, 8, 4, 4]}],"
                + " \"outputs\": [{\"name\": \"noise_pred\", \"shape\": [2, 4, 3, 4, 4]}]}"));
        tflite.put("chunks", Arrays.asList(first, second));
        Map<String, Object> hashed = (Map<String, Object>) root.get("files");
        hashed.put("unet.chunk0.tflite", hashed.get("unet.tflite"));
        hashed.put("unet.chunk1.tflite", hashed.get("unet.tflite"));
        List<Manifest.ModelFile> files = Manifest.fromJson(Golden.bundle(), root).modelFiles("unet", "tflite");
        assertEquals(2, files.size());
        assertEquals("unet.chunk1.tflite", files.get(1).file);
        assertEquals(new File(Golden.bundle(), "unet.chunk1.tflite"), files.get(1).path);
        assertEquals(Arrays.asList("hidden"), files.get(1).spec.inputNames());
        assertFalse(files.get(0).spec.outputNames().contains("noise_pred"));
    }
}
