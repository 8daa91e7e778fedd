package org.i2vadapter.core;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Java pipeline on a real bundle, against a recorded {@code runtime_py} run ({@code android_demo/replay_check.py}
 * writes the recording): every stage call returns Python's recorded outputs, and every stage input Java
 * computes is compared with the one Python fed. Prints one JSON line with the largest differences.
 *
 * <pre>java -cp core/build/main:core/build/test org.i2vadapter.core.ReplayCheck RECORDING_DIR BUNDLE_DIR</pre>
 */
public final class ReplayCheck implements StageRunner {
    private final File dir;
    private final List<Object> calls;
    private int next;
    private double worstInput;

    private ReplayCheck(File dir, List<Object> calls) {
        this.dir = dir;
        this.calls = calls;
    }

    private float[] floats(String name) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(new File(dir, name).toPath())).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    @Override
    public Map<String, Tensor> run(String stage, Map<String, Tensor> inputs) {
        if (next >= calls.size()) {
            throw new IllegalStateException("Java made more stage calls than Python's " + calls.size());
        }
        Map<String, Object> call = Json.object(calls.get(next++), "call");
        if (!stage.equals(call.get("stage"))) {
            throw new IllegalStateException("call " + next + ": Java ran " + stage + ", Python ran " + call.get("stage"));
        }
        try {
            for (Map.Entry<String, Object> e : Json.object(call.get("inputs"), "inputs").entrySet()) {
                float[] python = floats(Json.string(Json.object(e.getValue(), "input").get("file"), "file"));
                float[] java = inputs.get(e.getKey()).data();
                for (int i = 0; i < python.length; i++) {
                    worstInput = Math.max(worstInput, Math.abs((double) python[i] - java[i]));
                }
            }
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : Json.object(call.get("outputs"), "outputs").entrySet()) {
                Map<String, Object> t = Json.object(e.getValue(), "output");
                out.put(e.getKey(), new Tensor(Json.ints(t.get("shape"), "shape"), floats(Json.string(t.get("file"), "file"))));
            }
            return out;
        } catch (IOException e) {
            throw new IllegalStateException("could not read the recording: " + e.getMessage(), e);
        }
    }

    public static void main(String[] args) throws Exception {
        File dir = new File(args[0]);
        Map<String, Object> index = Json.object(Json.parse(new File(dir, "index.json")), "index.json");
        Manifest manifest = Manifest.load(new File(args[1]));
        manifest.verifyFiles();
        File tok = manifest.tokenizerDirectory();
        ClipTokenizer tokenizer = ClipTokenizer.fromFiles(new File(tok, "vocab.json"), new File(tok, "merges.txt"));
        ReplayCheck runner = new ReplayCheck(dir, Json.array(index.get("calls"), "calls"));
        I2VPipeline pipe = I2VPipeline.fromManifest(manifest, runner, tokenizer);
        int[] hw = Json.ints(index.get("image_hw"), "image_hw");
        byte[] image = Files.readAllBytes(new File(dir, "image.u8").toPath());
        I2VPipeline.Request req = new I2VPipeline.Request(new RgbImage(hw[1], hw[0], image), Json.string(index.get("prompt"), "prompt"));
        req.scheduler = Json.string(index.get("scheduler"), "scheduler");
        req.steps = Json.integer(index.get("steps"), "steps");
        int[] shape = Json.ints(index.get("latent_shape"), "latent_shape");
        req.noise = new Tensor(shape, runner.floats("noise.f32"));
        req.mask = new Tensor(shape, runner.floats("mask.f32"));
        I2VPipeline.Result r = pipe.generate(req, null, null);
        float[] latents = runner.floats("latents.f32");
        double worstLatent = 0;
        for (int i = 0; i < latents.length; i++) {
            worstLatent = Math.max(worstLatent, Math.abs((double) latents[i] - r.latents.data()[i]));
        }
        byte[] frames = Files.readAllBytes(new File(dir, "frames.u8").toPath());
        int differing = 0, offset = 0;
        for (RgbImage f : r.frames) {
            byte[] b = f.bytes();
            for (int i = 0; i < b.length; i++) {
                differing += b[i] != frames[offset + i] ? 1 : 0;
            }
            offset += b.length;
        }
        System.out.println("{\"calls\": " + runner.next + ", \"python_calls\": " + runner.calls.size()
                + ", \"max_input_diff\": " + runner.worstInput + ", \"max_latent_diff\": " + worstLatent
                + ", \"frame_bytes_differing\": " + differing + ", \"frame_bytes\": " + frames.length + "}");
    }
}
