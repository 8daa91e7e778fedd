package org.i2vadapter.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A bundle's {@code manifest.json} (written by {@code export.build}, schema 1), read and checked against
 * the stage contract: which stages exist, their tensor shapes, the scheduler / FSP / sampling defaults,
 * the tokenizer folder, and the size and sha256 of every file ({@link #verifyFiles}).
 *
 * <p>Paths: every path the manifest names (each stage target's file and extra files, chunk files, the
 * tokenizer folder and files, calibration files, the {@code files} table itself) must be relative, without
 * {@code ..}, stay inside the bundle once symlinks are resolved, and, for a file, be listed in the hashed
 * {@code files} table ({@link #checkPaths}, run first by {@link #verifyFiles}). Files are opened only through
 * {@link #bundleFile} ({@link ModelFile#path}, {@link #tokenizerFile}), which check exactly that: the same
 * rules and messages as {@code i2v_core.bundle} in Python.
 *
 * <p>Checks, each a {@link BundleException} naming what was expected and what was found: schema
 * version; the four required stages; every tensor shape positive; the shapes agreeing across stages
 * (UNet {@code sample (2, 4, F, h, w)} with F the preset's frames, the VAE latents {@code (1, 4, h, w)},
 * the decoder's image the encoder's, text states {@code (1, 77, D)} and {@code (2, 77, D)}), and the unet's
 * timestep input: {@code timestep (1,)}, or under an NPU profile {@code timestep_embedding (1, C0)} with the
 * {@code embedding} record ({@link TimestepEmbedding}) the runtime computes it with.
 */
public final class Manifest {
    public static final String FILE_NAME = "manifest.json";
    public static final int SCHEMA_VERSION = 1;
    public static final List<String> REQUIRED_STAGES =
            Collections.unmodifiableList(Arrays.asList("text_encoder", "vae_encoder", "unet", "vae_decoder"));
    public static final int MAX_TOKENS = 77;
    /** The unet's timestep input: the timestep itself, or (an NPU profile) its sinusoidal embedding. */
    public static final String TIMESTEP = "timestep", TIMESTEP_EMBEDDING = "timestep_embedding";
    /** What readers open in the tokenizer folder. */
    public static final List<String> TOKENIZER_FILES = Collections.unmodifiableList(Arrays.asList("vocab.json", "merges.txt"));

    /** One model file of a stage for one target; a chunked UNet has several, run in order. */
    public static final class ModelFile {
        public final String name;
        /** The path as the manifest names it, relative to the bundle. */
        public final String file;
        /** The file to open: checked inside the bundle and hashed ({@link #bundleFile}). */
        public final File path;
        public final StageSpec spec;

        ModelFile(String name, String file, File path, StageSpec spec) {
            this.name = name;
            this.file = file;
            this.path = path;
            this.spec = spec;
        }
    }

    private final File directory;
    private final Map<String, Object> root;
    private final Map<String, StageSpec> stages;

    private Manifest(File directory, Map<String, Object> root, Map<String, StageSpec> stages) {
        this.directory = directory;
        this.root = root;
        this.stages = stages;
    }

    /** Read and validate {@code directory/manifest.json} (file hashes are checked by {@link #verifyFiles}). */
    public static Manifest load(File directory) throws BundleException {
        File path = new File(directory, FILE_NAME);
        if (!directory.isDirectory()) {
            throw new BundleException("expected a bundle directory, found "
                    + (directory.exists() ? "a file" : "nothing") + " at " + directory);
        }
        if (!path.isFile()) {
            throw new BundleException("expected " + FILE_NAME + " in bundle " + directory + ", not found");
        }
        Object parsed;
        try {
            parsed = Json.parse(path);
        } catch (IOException | IllegalArgumentException e) {
            throw new BundleException("could not read " + path + ": " + e.getMessage(), e);
        }
        return fromJson(directory, parsed);
    }

    /** Validate an already parsed manifest (the tests use this to check broken variants). */
    public static Manifest fromJson(File directory, Object parsed) throws BundleException {
        try {
            Map<String, Object> root = Json.object(parsed, FILE_NAME);
            Object version = root.get("schema_version");
            if (!(version instanceof Long) || (Long) version < 1 || (Long) version > SCHEMA_VERSION) {
                throw new BundleException(FILE_NAME + ": expected schema_version in [1, " + SCHEMA_VERSION
                        + "], found " + Json.describe(version));
            }
            for (String key : Arrays.asList("preset", "stages", "files")) {
                Json.member(root, key, FILE_NAME);
            }
            Map<String, StageSpec> stages = readStages(Json.object(root.get("stages"), "stages"));
            Manifest m = new Manifest(directory, root, stages);
            m.checkContract();
            return m;
        } catch (IllegalArgumentException e) {
            throw new BundleException(FILE_NAME + ": " + e.getMessage(), e);
        }
    }

    private static Map<String, StageSpec> readStages(Map<String, Object> stagesJson) throws BundleException {
        List<String> missing = new ArrayList<>();
        for (String name : REQUIRED_STAGES) {
            if (!stagesJson.containsKey(name)) {
                missing.add(name);
            }
        }
        if (!missing.isEmpty()) {
            throw new BundleException("expected stages " + REQUIRED_STAGES + ", missing " + missing
                    + " (found " + stagesJson.keySet() + ")");
        }
        Map<String, StageSpec> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : stagesJson.entrySet()) {
            Map<String, Object> record = Json.object(e.getValue(), "stages." + e.getKey());
            out.put(e.getKey(), readSpec(e.getKey(), Json.object(Json.member(record, "io", "stages." + e.getKey()), "io")));
        }
        return out;
    }

    static StageSpec readSpec(String stage, Map<String, Object> io) throws BundleException {
        return new StageSpec(stage, readTensors(stage, "inputs", io), readTensors(stage, "outputs", io));
    }

    private static List<StageSpec.TensorSpec> readTensors(String stage, String role, Map<String, Object> io)
            throws BundleException {
        List<StageSpec.TensorSpec> out = new ArrayList<>();
        for (Object item : Json.array(Json.member(io, role, stage + " io"), stage + " " + role)) {
            Map<String, Object> t = Json.object(item, stage + " " + role + " entry");
            String name = Json.string(Json.member(t, "name", stage + " " + role + " entry"), "tensor name");
            String what = stage + " " + role.substring(0, role.length() - 1) + " '" + name + "'";
            int[] shape = Json.ints(Json.member(t, "shape", what), what + " shape");
            for (int d : shape) {
                if (d < 1) {
                    throw new BundleException("expected positive dimensions for " + what + ", got shape "
                            + Arrays.toString(shape));
                }
            }
            String dtype = t.containsKey("dtype") ? Json.string(t.get("dtype"), what + " dtype") : "float32";
            Object embedding = t.get("embedding");
            TimestepEmbedding emb = embedding == null || embedding == Json.NULL ? null
                    : TimestepEmbedding.fromJson(Json.object(embedding, what + " embedding"), what + " embedding");
            out.add(new StageSpec.TensorSpec(name, shape, dtype, emb));
        }
        return out;
    }

    /** The shapes of the stages must fit together as the pipeline uses them. */
    private void checkContract() throws BundleException {
        int[] sample = shapeOf("unet", "sample");
        if (sample.length != 5 || sample[0] != 2) {
            throw new BundleException("expected unet input 'sample' of shape (2, C, F, h, w) (one video, uncond and"
                    + " cond), got " + Tensor.shapeString(sample));
        }
        int c = sample[1], frames = sample[2], h = sample[3], w = sample[4];
        int presetFrames = numFrames();
        if (frames != presetFrames) {
            throw new BundleException("preset has " + presetFrames + " frames but the unet stage takes " + frames);
        }
        require("unet", "noise_pred", sample);
        require("vae_encoder", "latent", 1, c, h, w);
        require("vae_decoder", "latent", 1, c, h, w);
        int[] image = shapeOf("vae_encoder", "image");
        if (image.length != 4 || image[0] != 1 || image[1] != 3 || image[2] % h != 0 || image[3] % w != 0) {
            throw new BundleException("expected vae_encoder input 'image' of shape (1, 3, H, W) with H, W multiples"
                    + " of the latent " + h + "x" + w + ", got " + Tensor.shapeString(image));
        }
        require("vae_decoder", "image", image);
        require("text_encoder", "input_ids", 1, MAX_TOKENS);
        int[] text = shapeOf("text_encoder", "last_hidden_state");
        if (text.length != 3 || text[0] != 1 || text[1] != MAX_TOKENS) {
            throw new BundleException("expected text_encoder output 'last_hidden_state' of shape (1, 77, D), got "
                    + Tensor.shapeString(text));
        }
        require("unet", "encoder_hidden_states", 2, MAX_TOKENS, text[2]);
        checkTimestepInput();
    }

    /**
     * The unet takes the timestep as {@code timestep (1,)}, or (an NPU profile) as its sinusoidal embedding
     * {@code timestep_embedding (1, C0)} whose {@code embedding} record has {@code dim} C0.
     */
    private void checkTimestepInput() throws BundleException {
        List<String> names = stages.get("unet").inputNames();
        boolean plain = names.contains(TIMESTEP), embedded = names.contains(TIMESTEP_EMBEDDING);
        if (plain == embedded) {
            throw new BundleException("expected unet input '" + TIMESTEP + "' or '" + TIMESTEP_EMBEDDING
                    + "' (exactly one), got inputs " + names);
        }
        if (plain) {
            require("unet", TIMESTEP, 1);
            return;
        }
        StageSpec.TensorSpec t = stages.get("unet").tensor(TIMESTEP_EMBEDDING);
        if (t.embedding == null) {
            throw new BundleException("expected unet input '" + TIMESTEP_EMBEDDING + "' to carry its 'embedding'"
                    + " record (kind, dim, flip_sin_to_cos, freq_shift, scale, max_period), found none");
        }
        require("unet", TIMESTEP_EMBEDDING, 1, t.embedding.dim);
    }

    private int[] shapeOf(String stage, String tensor) throws BundleException {
        try {
            return stages.get(stage).tensor(tensor).shape();
        } catch (IllegalArgumentException e) {
            throw new BundleException(e.getMessage(), e);
        }
    }

    private void require(String stage, String tensor, int... expected) throws BundleException {
        int[] found = shapeOf(stage, tensor);
        if (!Arrays.equals(found, expected)) {
            String role = stages.get(stage).inputNames().contains(tensor) ? "input" : "output";
            throw new BundleException("expected " + stage + " " + role + " '" + tensor + "' of shape "
                    + Tensor.shapeString(expected) + ", got " + Tensor.shapeString(found));
        }
    }

    // ---------------------------------------------------------------- files

    /** Why {@code rel} is not a safe path inside the bundle (null: it is). */
    private String escapeReason(String rel) throws BundleException {
        if (rel.isEmpty()) {
            return "is not a path: expected a non-empty relative path, found an empty string";
        }
        if (rel.startsWith("/") || new File(rel).isAbsolute() || rel.matches("^[A-Za-z]:.*")) {
            return "is an absolute path: expected a path relative to the bundle";
        }
        if (rel.contains("\\")) {
            return "contains a backslash: expected a POSIX path relative to the bundle";
        }
        if (Arrays.asList(rel.split("/")).contains("..")) {
            return "points outside the bundle";
        }
        try {
            String base = directory.getCanonicalPath();
            String resolved = new File(directory, rel).getCanonicalPath();
            if (!resolved.equals(base) && !resolved.startsWith(base + File.separator)) {
                return "points outside the bundle (it resolves to " + resolved + ")";
            }
        } catch (IOException e) {
            throw new BundleException("could not resolve " + what(rel) + " in bundle " + directory + ": " + e.getMessage(), e);
        }
        return null;
    }

    private static String what(String rel) {
        return "'" + rel + "'";
    }

    /**
     * {@code directory/rel} after checking that {@code rel} is relative, has no {@code ..} and stays inside
     * the bundle once symlinks are resolved; a {@link BundleException} naming {@code what}, the path and why
     * otherwise.
     */
    public File checkInside(String rel, String what) throws BundleException {
        String reason = escapeReason(rel);
        if (reason != null) {
            throw new BundleException(what + " " + what(rel) + " " + reason);
        }
        return new File(directory, rel);
    }

    /** A bundle file the manifest names: inside the bundle ({@link #checkInside}) and in the hashed files table. */
    public File bundleFile(String rel, String what) throws BundleException {
        File file = checkInside(rel, what);
        if (!Json.object(root.get("files"), "files").containsKey(rel)) {
            throw new BundleException(what + " " + what(rel) + " is not in the manifest's hashed files table");
        }
        return file;
    }

    private static List<Object> listed(Map<String, Object> obj, String key, String what) {
        Object v = obj.get(key);
        return v == null ? new ArrayList<Object>() : Json.array(v, what);
    }

    /** The {@code file} and {@code extra_files} of a target entry or a chunk: inside the bundle and hashed. */
    private void checkFiles(Map<String, Object> entry, String where) throws BundleException {
        bundleFile(Json.string(Json.member(entry, "file", where), where + " file"), where + " file");
        for (Object extra : listed(entry, "extra_files", where + " extra_files")) {
            bundleFile(Json.string(extra, where + " extra file"), where + " extra file");
        }
    }

    /**
     * Every path the manifest names is inside the bundle and, for a file, in the files table; every files
     * table entry is inside the bundle. A {@link BundleException} naming the first that is not, and why.
     */
    public void checkPaths() throws BundleException {
        try {
            checkAllPaths();
        } catch (IllegalArgumentException e) { // a path that is not a string, a list that is not a list
            throw new BundleException(FILE_NAME + ": " + e.getMessage(), e);
        }
    }

    private void checkAllPaths() throws BundleException {
        Map<String, Object> stagesJson = Json.object(root.get("stages"), "stages");
        for (String stage : stagesJson.keySet()) {
            for (String target : targets(stage)) {
                String where = "stage " + stage + " target " + target;
                Map<String, Object> entry = targetEntry(stage, target);
                checkFiles(entry, where);
                for (Object c : listed(entry, "chunks", where + " chunks")) {
                    Map<String, Object> chunk = Json.object(c, where + " chunk");
                    checkFiles(chunk, where + " chunk " + Json.string(Json.member(chunk, "name", where + " chunk"), "chunk name"));
                }
            }
        }
        Object quantization = root.get("quantization");
        if (quantization instanceof Map) {
            Object calibration = Json.object(quantization, "quantization").get("calibration");
            if (calibration instanceof Map) {
                for (Object rel : listed(Json.object(calibration, "calibration"), "files", "calibration files")) {
                    bundleFile(Json.string(rel, "calibration file"), "calibration file");
                }
            }
        }
        if (root.containsKey("tokenizer")) {
            String folder = tokenizerFolder();
            checkInside(folder, "tokenizer directory");
            Map<String, Object> tok = Json.object(root.get("tokenizer"), "tokenizer");
            for (Object item : listed(tok, "files", "tokenizer.files")) {
                String rel = Json.string(item, "tokenizer file");
                bundleFile(rel, "tokenizer file");
                if (!rel.startsWith(folder + "/")) {
                    throw new BundleException("tokenizer file " + what(rel) + " is not inside the tokenizer directory " + what(folder));
                }
            }
            for (String name : TOKENIZER_FILES) {
                tokenizerFile(name);
            }
        }
        for (String rel : Json.object(root.get("files"), "files").keySet()) {
            checkInside(rel, "files table entry");
        }
    }

    /**
     * Check the manifest's paths ({@link #checkPaths}), then that the directory holds exactly the manifest's
     * files with their sizes and sha256; list missing and unlisted files by name, and name the file and both
     * hashes on a mismatch.
     */
    public void verifyFiles() throws BundleException {
        checkPaths();
        Map<String, Object> listed = Json.object(root.get("files"), "files");
        TreeSet<String> present = new TreeSet<>();
        collectFiles(directory, "", present);
        present.remove(FILE_NAME);
        TreeSet<String> missing = new TreeSet<>(listed.keySet());
        missing.removeAll(present);
        TreeSet<String> unexpected = new TreeSet<>(present);
        unexpected.removeAll(listed.keySet());
        if (!missing.isEmpty() || !unexpected.isEmpty()) {
            throw new BundleException("bundle " + directory + " does not match its manifest: missing files " + missing
                    + ", files not in the manifest " + unexpected);
        }
        for (Map.Entry<String, Object> e : listed.entrySet()) {
            Map<String, Object> record = Json.object(e.getValue(), "files." + e.getKey());
            File file = new File(directory, e.getKey());
            long bytes = (long) Json.number(Json.member(record, "bytes", "files." + e.getKey()), "bytes");
            if (file.length() != bytes) {
                throw new BundleException(file + ": expected " + bytes + " bytes (manifest), found " + file.length());
            }
            String expected = Json.string(Json.member(record, "sha256", "files." + e.getKey()), "sha256");
            String found = sha256(file);
            if (!found.equals(expected)) {
                throw new BundleException(file + ": sha256 mismatch: manifest has " + expected + ", file has " + found);
            }
        }
    }

    private static void collectFiles(File dir, String prefix, TreeSet<String> out) {
        File[] children = dir.listFiles();
        if (children == null) {
            return;
        }
        for (File f : children) {
            if (f.isDirectory()) {
                collectFiles(f, prefix + f.getName() + "/", out);
            } else if (f.isFile()) {
                out.add(prefix + f.getName());
            }
        }
    }

    /** Hex sha256 of a file, read in 1 MiB chunks (model files can be gigabytes). */
    public static String sha256(File file) throws BundleException {
        try (InputStream in = new FileInputStream(file)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
                digest.update(buf, 0, n);
            }
            StringBuilder sb = new StringBuilder();
            for (byte b : digest.digest()) {
                sb.append(String.format("%02x", b & 0xff));
            }
            return sb.toString();
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new BundleException("could not hash " + file + ": " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- accessors

    public File directory() {
        return directory;
    }

    /** The parsed JSON (read-only use). */
    public Map<String, Object> json() {
        return root;
    }

    public Map<String, StageSpec> stages() {
        return Collections.unmodifiableMap(stages);
    }

    public StageSpec stage(String name) {
        StageSpec s = stages.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown stage '" + name + "': the bundle has " + stages.keySet());
        }
        return s;
    }

    public String presetName() {
        return Json.string(Json.object(root.get("preset"), "preset").get("name"), "preset.name");
    }

    private Map<String, Object> presetConfig() {
        return Json.object(Json.member(Json.object(root.get("preset"), "preset"), "config", "preset"), "preset.config");
    }

    public int numFrames() {
        return Json.integer(Json.member(presetConfig(), "num_frames", "preset.config"), "preset.config.num_frames");
    }

    /** Top-level entry {@code key}, or the preset config's copy of it (older manifests), as an object. */
    private Map<String, Object> defaults(String key) {
        Object v = root.containsKey(key) ? root.get(key) : presetConfig().get(key);
        return v == null ? new LinkedHashMap<String, Object>() : Json.object(v, key);
    }

    public SchedulerConfig schedulerConfig() {
        return SchedulerConfig.fromJson(defaults("scheduler"));
    }

    public FspConfig fspConfig() {
        return FspConfig.fromJson(defaults("fsp"));
    }

    public SamplingConfig samplingConfig() {
        return SamplingConfig.fromJson(defaults("sampling"));
    }

    private String tokenizerFolder() {
        Map<String, Object> tok = Json.object(Json.member(root, "tokenizer", FILE_NAME), "tokenizer");
        return Json.string(Json.member(tok, "directory", "tokenizer"), "tokenizer.directory");
    }

    /** The tokenizer folder, checked inside the bundle ({@link #checkInside}). */
    public File tokenizerDirectory() throws BundleException {
        return checkInside(tokenizerFolder(), "tokenizer directory");
    }

    /** A file of the tokenizer folder ({@code vocab.json}, {@code merges.txt}), checked like {@link #bundleFile}. */
    public File tokenizerFile(String name) throws BundleException {
        String folder = tokenizerFolder();
        checkInside(folder, "tokenizer directory");
        return bundleFile(folder + "/" + name, "tokenizer file");
    }

    /** Targets a stage was exported for ({@code onnx}, {@code tflite}, ...). */
    public List<String> targets(String stage) {
        Map<String, Object> rec = Json.object(Json.object(root.get("stages"), "stages").get(stage), "stages." + stage);
        return new ArrayList<>(Json.object(Json.member(rec, "targets", "stages." + stage), "targets").keySet());
    }

    /** The TFLite signature the stage files were exported with ({@code graph_options.tflite_signature}), else
     * {@code serving_default}. */
    public String tfliteSignature() {
        Object graph = json().get("graph_options");
        Object signature = graph instanceof Map ? ((Map<?, ?>) graph).get("tflite_signature") : null;
        return signature instanceof String ? (String) signature : "serving_default";
    }

    /**
     * Every model file of {@code target} (a TFLite target: {@code tflite}) read ({@link ModelIo}, signature
     * {@code signature}) and checked against its stage's contract ({@link StageSpec#checkDeclared}), chunks
     * included, in stage order: before any stage runs, a file of another shape or dtype is one
     * {@link BundleException} naming the stage, the file, the tensor, the expected and the found. Stages
     * without {@code target} are skipped.
     */
    public void checkModels(String target, String signature) throws BundleException {
        for (String stage : stages.keySet()) {
            if (!targets(stage).contains(target)) {
                continue;
            }
            for (ModelFile file : modelFiles(stage, target)) {
                file.spec.checkDeclared(file.path.getPath(), ModelIo.readTflite(file.path, signature));
            }
        }
    }

    /**
     * The model files of {@code stage} for {@code target}, in run order: one file with the stage's own spec,
     * or a chunked UNet's chunks, each with its own named inputs and outputs.
     */
    public List<ModelFile> modelFiles(String stage, String target) throws BundleException {
        Map<String, Object> entry = targetEntry(stage, target);
        String where = "stage " + stage + " target " + target;
        List<ModelFile> out = new ArrayList<>();
        if (entry.containsKey("chunks")) {
            for (Object c : Json.array(entry.get("chunks"), stage + " chunks")) {
                Map<String, Object> chunk = Json.object(c, stage + " chunk");
                String name = Json.string(Json.member(chunk, "name", stage + " chunk"), "chunk name");
                StageSpec spec = readSpec(name, Json.object(Json.member(chunk, "io", name), name + " io"));
                String file = Json.string(Json.member(chunk, "file", name), name + " file");
                out.add(new ModelFile(name, file, bundleFile(file, where + " chunk " + name + " file"), spec));
            }
        } else {
            String file = Json.string(Json.member(entry, "file", stage + "." + target), "file");
            out.add(new ModelFile(stage, file, bundleFile(file, where + " file"), stage(stage)));
        }
        return out;
    }

    private Map<String, Object> targetEntry(String stage, String target) throws BundleException {
        Map<String, Object> rec = Json.object(Json.object(root.get("stages"), "stages").get(stage), "stages." + stage);
        Map<String, Object> targets = Json.object(Json.member(rec, "targets", "stages." + stage), "targets");
        if (!targets.containsKey(target)) {
            throw new BundleException("stage " + stage + " has no '" + target + "' export; it has " + targets.keySet());
        }
        return Json.object(targets.get(target), stage + "." + target);
    }
}
