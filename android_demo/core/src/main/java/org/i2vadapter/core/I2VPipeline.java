package org.i2vadapter.core;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Image + prompt -> frames over a {@link StageRunner}, step for step {@code runtime_py.pipeline.RuntimePipeline}:
 * VAE-encode the image (frame 0), encode the negative prompt and the prompt ([uncond, cond]), free both
 * encoders, start from the Frame Similarity Prior at the first timestep, step frames 1..F-1 with
 * classifier-free guidance while frame 0 stays the clean latent, free the UNet, decode one frame per
 * {@code vae_decoder} call, LAB-match colours to frame 0.
 *
 * <p>Randomness: a {@link Random} seeded with the request's seed draws the mask, then the noise, then
 * (LCM) the noise between steps. Its stream is not numpy's, so a seed gives another video than the
 * Python runtime; pass {@code noise} and {@code mask} to reproduce a Python run exactly.
 *
 * <p>Letters: C latent channels, F frames, h, w latent size, H, W image size, D text width.
 */
public final class I2VPipeline {
    /** What to generate; unset fields take the bundle's defaults. */
    public static final class Request {
        public RgbImage image;
        public String prompt = "";
        public String negativePrompt; // null: the bundle's default
        public int steps; // 0: the bundle's default
        public double guidance = Double.NaN; // NaN: the bundle's default
        public String scheduler = "ddim";
        public long seed;
        public FspConfig fsp; // null: the bundle's
        public Boolean colourMatch; // null: the bundle's
        public Tensor noise; // (1, C, F, h, w), null: drawn from the seed
        public Tensor mask; // (1, C, F, h, w), null: drawn from the seed

        public Request(RgbImage image, String prompt) {
            this.image = image;
            this.prompt = prompt;
        }
    }

    /** Frames {@code (F)} of {@code (H, W, 3)}, the final latents {@code (1, C, F, h, w)}, the timesteps visited. */
    public static final class Result {
        public final RgbImage[] frames;
        public final Tensor latents;
        public final double[] timesteps;

        Result(RgbImage[] frames, Tensor latents, double[] timesteps) {
            this.frames = frames;
            this.latents = latents;
            this.timesteps = timesteps;
        }
    }

    private final Map<String, StageSpec> specs;
    private final CheckedRunner runner;
    private final ClipTokenizer tokenizer;
    private final SchedulerConfig schedulerConfig;
    private final FspConfig fsp;
    private final SamplingConfig sampling;
    private final int channels, frames, latentH, latentW, height, width;
    /** The unet's timestep input: {@code timestep (1,)} or, an NPU contract, {@code timestep_embedding (1, C0)}. */
    private final StageSpec.TensorSpec timestepInput;
    private final String timestepName;

    public I2VPipeline(Map<String, StageSpec> specs, StageRunner runner, ClipTokenizer tokenizer,
            SchedulerConfig schedulerConfig, FspConfig fsp, SamplingConfig sampling) {
        for (String name : Manifest.REQUIRED_STAGES) {
            if (!specs.containsKey(name)) {
                throw new IllegalArgumentException("I2VPipeline needs stages " + Manifest.REQUIRED_STAGES + "; missing " + name);
            }
        }
        if (specs.containsKey("image_encoder")) {
            throw new IllegalArgumentException("this bundle has the content adapter (image_encoder stage), whose CLIP"
                    + " image preprocessing the Java core does not implement; use a bundle without the content adapter");
        }
        int[] sample = specs.get("unet").tensor("sample").shape(); // (2, C, F, h, w)
        int[] image = specs.get("vae_encoder").tensor("image").shape(); // (1, 3, H, W)
        this.specs = Collections.unmodifiableMap(new LinkedHashMap<>(specs));
        this.runner = new CheckedRunner(this.specs, runner);
        this.tokenizer = tokenizer;
        this.schedulerConfig = schedulerConfig;
        this.fsp = fsp;
        this.sampling = sampling;
        this.channels = sample[1];
        this.frames = sample[2];
        this.latentH = sample[3];
        this.latentW = sample[4];
        this.height = image[2];
        this.width = image[3];
        this.timestepInput = timestepInput(specs.get("unet"));
        this.timestepName = timestepInput.name;
    }

    /** As {@code i2v_core.stages.timestep_feeds}: the first unet input with an embedding, or the one named timestep. */
    private static StageSpec.TensorSpec timestepInput(StageSpec unet) {
        for (StageSpec.TensorSpec t : unet.inputs) {
            if (t.embedding != null || t.name.equals(Manifest.TIMESTEP)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unet has no timestep input: its inputs are " + unet.inputNames());
    }

    /** The unet's timestep input for {@code t}: {@code (1,)} float32, or its embedding {@code (1, C0)} computed here. */
    Tensor timestepFeed(double t) {
        int[] shape = timestepInput.shape();
        if (timestepInput.embedding != null) {
            double[] ts = new double[shape[0]];
            java.util.Arrays.fill(ts, t);
            return timestepInput.embedding.embed(ts);
        }
        float[] data = new float[(int) Tensor.numel(shape)];
        java.util.Arrays.fill(data, (float) t);
        return new Tensor(shape, data);
    }

    /** A pipeline over a loaded bundle: its specs and its scheduler, FSP and sampling defaults. */
    public static I2VPipeline fromManifest(Manifest manifest, StageRunner runner, ClipTokenizer tokenizer) {
        return new I2VPipeline(manifest.stages(), runner, tokenizer, manifest.schedulerConfig(), manifest.fspConfig(),
                manifest.samplingConfig());
    }

    public int numFrames() {
        return frames;
    }

    /** {@code {width, height}} of the input image the bundle takes. */
    public int[] imageSize() {
        return new int[] {width, height};
    }

    public SamplingConfig sampling() {
        return sampling;
    }

    /** Generate {@code F} frames; {@code listener} and {@code cancel} may be null. */
    public Result generate(Request req, ProgressListener listener, CancellationSignal cancel) {
        ProgressListener progress = listener != null ? listener : new ProgressListener() {};
        CancellationSignal signal = cancel != null ? cancel : new CancellationSignal();
        if (req.image == null || req.image.width != width || req.image.height != height) {
            throw new IllegalArgumentException("expected an input image of " + width + "x" + height + ", got "
                    + (req.image == null ? "none" : req.image.width + "x" + req.image.height));
        }
        int steps = req.steps > 0 ? req.steps : sampling.numInferenceSteps;
        double guidance = Double.isNaN(req.guidance) ? sampling.guidanceScale : req.guidance;
        FspConfig prior = req.fsp != null ? req.fsp : fsp;
        String negative = req.negativePrompt != null ? req.negativePrompt : sampling.negativePrompt;
        Stages stages = new Stages(progress, signal);

        Tensor first = stages.run("vae_encoder", "image", req.image.toUnitRange()); // (1, C, h, w)
        Tensor text = concatBatch(encodeText(stages, negative), encodeText(stages, req.prompt)); // (2, 77, D)
        runner.release("text_encoder");
        runner.release("vae_encoder");

        Scheduler sched = Scheduler.create(req.scheduler, schedulerConfig);
        double[] timesteps = timesteps(sched, steps, prior);
        Random rng = new Random(req.seed);
        Tensor latents = initialLatents(first, sched, timesteps[0], prior, rng, req.noise, req.mask);
        for (int i = 0; i < timesteps.length; i++) {
            signal.throwIfCancelled("before denoising step " + (i + 1));
            latents = denoiseStep(stages, latents, timesteps[i], text, guidance, sched, rng);
            progress.onStep(i + 1, timesteps.length, timesteps[i]);
        }
        runner.release("unet");

        RgbImage[] out = new RgbImage[frames];
        for (int f = 0; f < frames; f++) {
            Tensor latent = new Tensor(new int[] {1, channels, latentH, latentW}, frameSlice(latents.data(), f, f + 1));
            out[f] = RgbImage.fromUnitRange(stages.run("vae_decoder", "latent", latent));
        }
        runner.release("vae_decoder");
        boolean match = req.colourMatch != null ? req.colourMatch : sampling.colorMatch;
        return new Result(match ? ColourMatch.match(out, null) : out, latents, timesteps);
    }

    /** Stage calls with progress and cancellation checks; returns the stage's first (only) output. */
    private final class Stages {
        final ProgressListener progress;
        final CancellationSignal signal;

        Stages(ProgressListener progress, CancellationSignal signal) {
            this.progress = progress;
            this.signal = signal;
        }

        Tensor run(String stage, Object... namedInputs) {
            signal.throwIfCancelled("before " + stage);
            progress.onStage(stage);
            Map<String, Tensor> feeds = new LinkedHashMap<>();
            for (int i = 0; i < namedInputs.length; i += 2) {
                feeds.put((String) namedInputs[i], (Tensor) namedInputs[i + 1]);
            }
            return runner.run(stage, feeds).get(specs.get(stage).outputNames().get(0));
        }
    }

    private Tensor encodeText(Stages stages, String text) {
        int[] ids = tokenizer.encode(text);
        float[] data = new float[ids.length];
        for (int i = 0; i < ids.length; i++) {
            data[i] = ids[i];
        }
        return stages.run("text_encoder", "input_ids", new Tensor(new int[] {1, ids.length}, data)); // (1, 77, D)
    }

    /** The schedule, without its first steps when FSP strength < 1. */
    static double[] timesteps(Scheduler sched, int steps, FspConfig prior) {
        sched.setTimesteps(steps);
        int skip = prior.enabled ? (int) Math.rint(steps * (1.0 - prior.strength)) : 0;
        double[] all = sched.timesteps();
        return java.util.Arrays.copyOfRange(all, skip, all.length);
    }

    /** {@code (1, C, F, h, w)}: the FSP start (or scaled noise without it), frame 0 the clean latent. */
    private Tensor initialLatents(Tensor first, Scheduler sched, double t0, FspConfig prior, Random rng, Tensor noise,
            Tensor mask) {
        int[] shape = {1, channels, frames, latentH, latentW};
        Tensor latents;
        if (prior.enabled) {
            Tensor m = mask != null ? mask : FramePrior.sampleMask(shape, prior.maskP, rng);
            Tensor n = noise != null ? noise : gaussian(shape, rng);
            latents = FramePrior.prior(first, frames, sched, t0, prior, m, n);
        } else {
            Tensor n = noise != null ? noise : gaussian(shape, rng);
            n.requireShape("initial noise", shape);
            float sigma = sched.initNoiseSigma();
            float[] d = new float[n.size()];
            for (int i = 0; i < d.length; i++) {
                d[i] = n.data()[i] * sigma;
            }
            latents = new Tensor(shape, d);
        }
        int hw = latentH * latentW;
        for (int c = 0; c < channels; c++) { // latents[:, :, 0] = first
            System.arraycopy(first.data(), c * hw, latents.data(), c * frames * hw, hw);
        }
        return latents;
    }

    /** One guided step on frames 1..F-1; frame 0 is fed and kept clean (never input-scaled). */
    private Tensor denoiseStep(Stages stages, Tensor latents, double t, Tensor text, double guidance, Scheduler sched,
            Random rng) {
        float[] lat = latents.data();
        float[] head = frameSlice(lat, 0, 1);
        float[] moving = frameSlice(lat, 1, frames);
        float[] modelIn = joinFrames(head, sched.scaleModelInput(moving, t));
        float[] batch = new float[2 * modelIn.length]; // (1, C, F, h, w) -> (2, C, F, h, w)
        System.arraycopy(modelIn, 0, batch, 0, modelIn.length);
        System.arraycopy(modelIn, 0, batch, modelIn.length, modelIn.length);
        Tensor sample = new Tensor(new int[] {2, channels, frames, latentH, latentW}, batch);
        Tensor noisePred = stages.run("unet", "sample", sample, timestepName, timestepFeed(t), "encoder_hidden_states", text);
        float[] guided = Guidance.combine(noisePred, guidance).data(); // (2, C, F, h, w) -> (1, C, F, h, w)
        float[] stepNoise = sched.needsStepNoise() ? gaussian(new int[] {moving.length}, rng).data() : null;
        float[] stepped = sched.step(frameSlice(guided, 1, frames), t, moving, stepNoise);
        return new Tensor(latents.shape(), joinFrames(head, stepped));
    }

    /** Frames {@code [from, to)} of a {@code (1, C, F, h, w)} buffer -> {@code (1, C, to - from, h, w)}. */
    private float[] frameSlice(float[] lat, int from, int to) {
        int hw = latentH * latentW, n = to - from;
        float[] out = new float[channels * n * hw];
        for (int c = 0; c < channels; c++) {
            System.arraycopy(lat, (c * frames + from) * hw, out, c * n * hw, n * hw);
        }
        return out;
    }

    /** Frame 0 {@code (1, C, 1, h, w)} and frames 1.. {@code (1, C, F-1, h, w)} -> {@code (1, C, F, h, w)}. */
    private float[] joinFrames(float[] head, float[] rest) {
        int hw = latentH * latentW, n = frames - 1;
        float[] out = new float[channels * frames * hw];
        for (int c = 0; c < channels; c++) {
            System.arraycopy(head, c * hw, out, c * frames * hw, hw);
            System.arraycopy(rest, c * n * hw, out, (c * frames + 1) * hw, n * hw);
        }
        return out;
    }

    private static Tensor gaussian(int[] shape, Random rng) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) rng.nextGaussian();
        }
        return t;
    }

    /** Two {@code (1, ...)} tensors -> {@code (2, ...)}. */
    static Tensor concatBatch(Tensor a, Tensor b) {
        int[] shape = a.shape();
        b.requireShape("the second half of a guided batch", shape);
        float[] out = new float[a.size() * 2];
        System.arraycopy(a.data(), 0, out, 0, a.size());
        System.arraycopy(b.data(), 0, out, a.size(), b.size());
        shape[0] = 2;
        return new Tensor(shape, out);
    }
}
