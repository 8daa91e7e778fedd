package org.i2vadapter.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every path a manifest names stays inside its bundle and is hashed, with the messages of Python's
 * {@code i2v_core.bundle}: {@link Manifest#verifyFiles} refuses the bundle, and the accessors the app opens
 * files through ({@link Manifest#modelFiles}, {@link Manifest#tokenizerFile}) refuse the path, unverified.
 */
class BundlePathsTest {
    @TempDir
    Path tmp;

    private File dir;
    private Map<String, Object> root;

    @BeforeEach
    void copyTheGoldenBundle() throws Exception {
        dir = Golden.copyBundle(tmp.resolve("bundle"));
        root = Json.object(Json.parse(new File(dir, Manifest.FILE_NAME)), "manifest");
    }

    private Map<String, Object> unetEntry() {
        Map<String, Object> stages = Json.object(root.get("stages"), "stages");
        Map<String, Object> targets = Json.object(Json.object(stages.get("unet"), "unet").get("targets"), "targets");
        return Json.object(targets.get("tflite"), "tflite");
    }

    private static String message(Executable call) {
        return assertThrows(BundleException.class, call).getMessage();
    }

    /** Both the full check and the app's path to the UNet file refuse it with {@code expected}. */
    private void refusedUnet(String expected) throws Exception {
        Manifest m = Manifest.fromJson(dir, root);
        assertEquals(expected, message(m::verifyFiles));
        assertEquals(expected, message(() -> m.modelFiles("unet", "tflite")));
    }

    @Test
    void theCopyVerifies() throws Exception {
        Manifest m = Manifest.fromJson(dir, root);
        m.verifyFiles();
        assertEquals(new File(dir, "unet.tflite"), m.modelFiles("unet", "tflite").get(0).path);
        assertEquals(new File(dir, "tokenizer/vocab.json"), m.tokenizerFile("vocab.json"));
    }

    @Test
    void dotDotPointsOutside() throws Exception {
        Files.write(tmp.resolve("x.tflite"), new byte[] {1});
        unetEntry().put("file", "../x.tflite");
        refusedUnet("stage unet target tflite file '../x.tflite' points outside the bundle");
    }

    @Test
    void absolutePathIsRefused() throws Exception {
        String outside = tmp.resolve("x.tflite").toString();
        unetEntry().put("file", outside);
        refusedUnet("stage unet target tflite file '" + outside + "' is an absolute path: expected a path relative to the bundle");
    }

    @Test
    void symlinkOutOfTheBundleIsRefused() throws Exception {
        // Same bytes, so the hashes match: only the resolved path gives it away.
        Path outside = tmp.resolve("elsewhere.tflite");
        Path unet = dir.toPath().resolve("unet.tflite");
        Files.move(unet, outside);
        Files.createSymbolicLink(unet, outside);
        refusedUnet("stage unet target tflite file 'unet.tflite' points outside the bundle (it resolves to "
                + outside.toFile().getCanonicalPath() + ")");
    }

    @Test
    void fileNotInTheHashedTableIsRefused() throws Exception {
        Files.copy(dir.toPath().resolve("unet.tflite"), dir.toPath().resolve("other.tflite"));
        unetEntry().put("file", "other.tflite");
        refusedUnet("stage unet target tflite file 'other.tflite' is not in the manifest's hashed files table");
    }

    @Test
    void extraFilesAreChecked() throws Exception {
        unetEntry().put("extra_files", Arrays.asList((Object) "../unet.tflite.data"));
        assertEquals("stage unet target tflite extra file '../unet.tflite.data' points outside the bundle",
                message(Manifest.fromJson(dir, root)::verifyFiles));
    }

    @Test
    void tokenizerDirectoryOutsideTheBundleIsRefused() throws Exception {
        Json.object(root.get("tokenizer"), "tokenizer").put("directory", "../tok");
        Manifest m = Manifest.fromJson(dir, root);
        String expected = "tokenizer directory '../tok' points outside the bundle";
        assertEquals(expected, message(m::verifyFiles));
        assertEquals(expected, message(m::tokenizerDirectory));
        assertEquals(expected, message(() -> m.tokenizerFile("vocab.json")));
    }

    @Test
    void tokenizerDirectorySymlinkedOutsideIsRefused() throws Exception {
        Path outside = tmp.resolve("tok");
        Path tok = dir.toPath().resolve("tokenizer");
        Files.move(tok, outside);
        Files.createSymbolicLink(tok, outside);
        Manifest m = Manifest.fromJson(dir, root);
        String expected = "tokenizer directory 'tokenizer' points outside the bundle (it resolves to "
                + outside.toFile().getCanonicalPath() + ")";
        assertEquals(expected, message(m::verifyFiles));
        assertEquals(expected, message(() -> m.tokenizerFile("merges.txt")));
    }

    @Test
    void filesTableEntriesAreChecked() throws Exception {
        Map<String, Object> files = Json.object(root.get("files"), "files");
        files.put("../stray.bin", files.get("unet.tflite"));
        assertEquals("files table entry '../stray.bin' points outside the bundle",
                message(Manifest.fromJson(dir, root)::verifyFiles));
    }
}
