"""`python -m evaluation.verify`: measure a bundle run by the torch-free runtime against PyTorch.

    python -m evaluation.verify --bundle bundles/tiny --backend tflite --out reports/verify_tiny

The PyTorch side is rebuilt from the manifest (`preset`, `weights`): the embedded tiny default and
random-weight bundles are rebuilt from their seed; a bundle exported from checkpoints needs those
files (at the recorded paths, or given with `--sd15`, `--motion-module`, `--adapter`, `--lora`).
This command imports torch, diffusers and transformers lazily; the runtime itself never does.

Checks, each with its figures and threshold in the report:
- stages: every stage's runtime output vs the PyTorch stage module on the contract's sample inputs
  (PSNR relative to the reference's range as in `i2v_core.parity`, max-abs; the UNet's cond - uncond
  guidance delta correlation);
- schedulers: numpy DDIM, Euler, LCM vs diffusers, step by step on the same inputs (max error per
  step relative to the sample's scale, `max(1, max |x|)`);
- tokenizer: ids from the bundle's tokenizer files vs the PyTorch side's tokenizer and transformers'
  `CLIPTokenizer` over the same files (identical);
- fsp: numpy vs torch Frame Similarity Prior with the same noise and mask (max-abs, in the
  variance-preserving units the UNet sees);
- end to end: the same image, prompts, noise and FSP mask through `I2VPipeline` and the runtime
  (DDIM, the scheduler the PyTorch pipeline runs; the others are covered step by step above):
  PSNR (peak 255) of every frame, final latent max-abs, and per step the correlation of the UNet's
  cond - uncond delta (a quantized UNet that loses the text shows here first);
- metrics: FlowScore, WarpingError and first-frame SSIM/PSNR of both videos (`runtime_py.metrics`).

Thresholds depend on the bundle's precision (`fp32` strict; a quantized bundle is held to the floors
its recipe was gated on, read from its manifest; see `thresholds_for`) and can be overridden. Exit status: 0 all pass, 1 a threshold failed (the figures are
printed), 2 bad input. `report.write_report` writes `verify.json`, `verify.md`, `frames.png` and
both videos into `--out`, atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import diffusers
import numpy as np
import torch
from transformers import CLIPTokenizer as HFTokenizer

from evaluation.clip_score import clip_consistency, load_clip_vision
from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.checkpoints.shipped import build_recorded
from i2v_adapter.model import fsp as torch_fsp
from i2v_adapter.pipeline import I2VPipeline
from i2v_core import cli, values
from i2v_core import parity as parity_lib
from i2v_core.bundle import tokenizer_path, verify_bundle
from i2v_core.cli import parse_lora
from i2v_core.config import AttentionVariant
from i2v_core.media import check_output_dir, make_test_card
from i2v_core.outputs import check_separate
from i2v_core.preprocess import image_to_unit_range
from i2v_core.stages import StageSpec
from i2v_core.tokenizer import truncation_warnings_off
from quantize.recipes import DEFAULT_RECIPES, GUIDANCE_FLOOR, RECIPES
from runtime_py import fsp as np_fsp
from runtime_py.generate import NamedFailures, StageRunError
from runtime_py.metrics import psnr_uint8, video_metrics
from runtime_py.pipeline import RuntimePipeline, preset_from_manifest
from runtime_py.report import VERIFY_OUTPUT, summary_lines, write_report
from runtime_py.schedulers import SCHEDULERS, make_scheduler

logger = logging.getLogger(__name__)

STEP_TOLERANCE = 1e-6
TOKENIZER_TEXTS = (
    "a photo of a cat",
    "A RED Ball rolls to the right!!",
    "café, naïve résumé; it's 4k 60fps",
    "",
    " ".join(["camera pans left over the green grass"] * 12),  # truncated at 77
)


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail floors and ceilings of every check."""

    stage_psnr_db: float = parity_lib.FP32_MIN_PSNR_DB
    frame_psnr_db: float = 40.0
    guidance_correlation: float = parity_lib.MIN_GUIDANCE_CORRELATION
    scheduler_step: float = STEP_TOLERANCE
    fsp_max_abs: float = STEP_TOLERANCE


# Frames of a quantized bundle: 15 dB below the fp32 floor (errors of every stage add up over the steps).
QUANTIZED_FRAME_PSNR_DB = 25.0
# A recipe that `quantize` does not gate (int8-dynamic, int8-static) is held to its loosest gated floor.
_LOOSEST_GATED_PSNR_DB = min(RECIPES[name].min_psnr_db for name in DEFAULT_RECIPES)


def thresholds_for(manifest: dict) -> Thresholds:
    """fp32: conversion rounding only. A quantized bundle: the stage PSNR and guidance floors it was
    gated on, as its manifest records them (`parity.min_psnr_db`, `parity.min_guidance_correlation`,
    from the quantize recipe), so nothing here restates them."""
    if manifest.get("precision", "fp32") == "fp32":
        return Thresholds()
    gate = manifest.get("parity", {})
    return Thresholds(
        stage_psnr_db=gate.get("min_psnr_db") or _LOOSEST_GATED_PSNR_DB,
        frame_psnr_db=QUANTIZED_FRAME_PSNR_DB,
        guidance_correlation=gate.get("min_guidance_correlation") or GUIDANCE_FLOOR,
    )


@dataclass(frozen=True)
class Weights:
    """Checkpoint paths to rebuild a bundle exported from checkpoints (overrides the manifest's)."""

    sd15: Path | None = None
    motion_module: Path | None = None
    adapter: Path | None = None
    loras: tuple[tuple[Path, float], ...] = ()


@dataclass(frozen=True)
class VerifyOptions:
    bundle: Path
    out: Path
    backend: str = "onnx"
    image: Path | None = None  # None: the built-in test card
    prompt: str = "moves to the right"
    negative_prompt: str = "blurry, low quality"
    num_inference_steps: int | None = None  # None: the bundle's default
    guidance_scale: float | None = None
    seed: int = 0
    thresholds: dict[str, float] = field(default_factory=dict)  # overrides of the precision's `Thresholds`
    weights: Weights = field(default_factory=Weights)
    threads: int | None = None
    clip: Path | None = None  # a local CLIP checkpoint folder: adds CLIP cosine to the video metrics
    overwrite: bool = False
    progress: bool = True


@dataclass
class VerifyResult:
    """Everything measured; `report` is the JSON-ready dict, frames and image for the pictures."""

    report: dict
    failures: list[str]
    image: np.ndarray
    frames: dict[str, np.ndarray]  # "pytorch", "runtime": (F, H, W, 3) uint8
    fps: int

    @property
    def passed(self) -> bool:
        return not self.failures


# --- the PyTorch side ---------------------------------------------------------------------------


def reference_config(manifest: dict):
    """The bundle's preset with the manifest's seed and attention variant (what export built)."""
    exported = manifest["preset"]["config"]
    return preset_from_manifest(manifest).with_overrides(
        seed=manifest.get("weights", {}).get("seed", exported["seed"]),
        attention=AttentionVariant(exported.get("attention", "fused")),
        adapter_out_init_std=exported.get("adapter_out_init_std", 0.0),
    )


def _checkpoint_paths(manifest: dict, given: Weights) -> Weights:
    """Given paths, else the manifest's recorded ones, all of which must exist."""
    if given.sd15 or given.motion_module or given.adapter or given.loras:
        paths = given
    else:
        recorded = manifest["weights"].get("checkpoints", {})
        scales = manifest["weights"].get("lora_scales", [])
        loras = tuple((Path(recorded[f"lora[{i}]"]), s) for i, s in enumerate(scales) if f"lora[{i}]" in recorded)
        paths = Weights(*(Path(recorded[k]) if k in recorded else None for k in ("sd15", "motion_module", "adapter")), loras)
    named = {"sd15": paths.sd15, "motion_module": paths.motion_module, "adapter": paths.adapter}
    named.update({f"lora[{i}]": p for i, (p, _) in enumerate(paths.loras)})
    missing = {k: str(p) for k, p in named.items() if p is not None and not Path(p).exists()}
    if missing or not any(named.values()):
        raise FileNotFoundError(
            f"the bundle was exported from checkpoints {manifest['weights'].get('checkpoints', {})}; "
            f"cannot rebuild PyTorch: not found here {missing or 'any'}. Pass --sd15/--motion-module/--adapter/--lora"
        )
    return paths


def build_reference(manifest: dict, weights: Weights):
    """`I2VPipeline` with the weights the bundle was exported from; checks its contract matches."""
    cfg = reference_config(manifest)
    source = manifest.get("weights", {}).get("source")
    if source in ("embedded-default", "random"):
        components = build_recorded(cfg, manifest["weights"])
    elif source == "checkpoints":
        paths = _checkpoint_paths(manifest, weights)
        components = load_components(
            cfg, sd15=paths.sd15, motion_module=paths.motion_module, i2v_adapter=paths.adapter,
            loras=[p for p, _ in paths.loras], lora_scales=[s for _, s in paths.loras],
        )
    else:
        raise ValueError(f"manifest weights source: expected embedded-default, random or checkpoints, got {source!r}")
    pipe = I2VPipeline(components)
    for name, record in manifest["stages"].items():
        exported = StageSpec.from_dict(name, record["io"])
        if pipe.specs.get(name) != exported:
            raise ValueError(f"rebuilt PyTorch stage {name!r} has contract {pipe.specs.get(name)}, the bundle {exported}")
    return pipe


# --- checks -------------------------------------------------------------------------------------


def stage_parity(runner, torch_pipe, seed: int) -> dict[str, dict]:
    """Per stage: runtime vs PyTorch stage module on `StageSpec.sample_inputs(seed)`."""
    figures = {}
    for name, spec in runner.specs.items():
        feeds = spec.sample_inputs(seed)
        out = runner.run(name, feeds)[spec.output_names[0]]
        with torch.no_grad():
            ref = torch_pipe.stages[name](*(torch.from_numpy(v) for v in feeds.values())).numpy()
        guided = torch_pipe.config.batch_size if name == "unet" else None
        figures[name] = parity_lib.measure(out, ref, guided_batch_size=guided).to_dict()
    return figures


def _diffusers_scheduler(name: str, cfg):
    classes = {"ddim": diffusers.DDIMScheduler, "euler": diffusers.EulerDiscreteScheduler, "lcm": diffusers.LCMScheduler}
    return classes[name].from_config(diffusers.DDIMScheduler(**cfg.to_diffusers()).config)


def scheduler_parity(name: str, cfg, steps: int, seed: int = 0, shape=(1, 4, 3, 8, 8)) -> dict:
    """Step ours and diffusers' on the same sample and noise prediction at every timestep.

    The noise prediction is the one that leads back to a fixed `x0`, plus 10% noise, so samples keep
    realistic magnitudes. Errors are relative to `max(1, max |x|)` (Euler's first samples reach ~100).
    """
    ref, ours = _diffusers_scheduler(name, cfg), make_scheduler(name, cfg)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    same_timesteps = bool(np.array_equal(ours.timesteps, ref.timesteps.numpy()))
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32) * np.float32(ours.init_noise_sigma)
    table = ref.alphas_cumprod.numpy()
    worst = {"step": 0.0, "scale_model_input": 0.0}
    for i, t in enumerate(ref.timesteps):
        ref_in = ref.scale_model_input(torch.from_numpy(x), t).numpy()
        scale = max(1.0, float(np.abs(ref_in).max()))
        worst["scale_model_input"] = max(worst["scale_model_input"], float(np.abs(ours.scale_model_input(x, t.item()) - ref_in).max()) / scale)
        a = float(table[int(round(float(t)))])
        eps = ((ref_in - np.sqrt(a) * x0) / np.sqrt(1 - a) + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        kwargs, extra = {}, {}
        if name == "lcm":  # the noise between steps: diffusers draws it from a generator, ours is given it
            kwargs["generator"] = torch.Generator().manual_seed(seed + i)
            extra["noise"] = torch.randn(shape, generator=torch.Generator().manual_seed(seed + i)).numpy()
        expected = ref.step(torch.from_numpy(eps), t, torch.from_numpy(x), **kwargs).prev_sample.numpy()
        got = ours.step(eps, t.item(), x, **extra)
        worst["step"] = max(worst["step"], float(np.abs(got - expected).max()) / max(1.0, float(np.abs(expected).max())))
        x = expected
    return {"steps": steps, "same_timesteps": same_timesteps, "max_step_error": worst["step"],
            "max_scale_model_input_error": worst["scale_model_input"]}


def tokenizer_parity(runtime_tokenizer, torch_tokenizer, tokenizer_dir: Path, texts) -> dict:
    """Ids of the bundle's tokenizer vs the PyTorch side's and transformers' over the bundle's files."""
    hf = HFTokenizer.from_pretrained(str(tokenizer_dir))
    mismatches = []
    with truncation_warnings_off():  # the over-long test text is truncated on purpose
        for text in texts:
            mismatches += _token_mismatches(text, runtime_tokenizer, torch_tokenizer, hf)
    return {"texts": len(texts), "identical": not mismatches, "mismatches": mismatches}


def _token_mismatches(text: str, runtime_tokenizer, torch_tokenizer, hf) -> list[dict]:
    ours = runtime_tokenizer.encode(text).tolist()
    twins = {"pytorch": torch_tokenizer.encode(text).tolist(),
             "transformers": hf(text, padding="max_length", max_length=77, truncation=True)["input_ids"]}
    return [{"text": text, "against": k} for k, ids in twins.items() if ids != ours]


def fsp_parity(name: str, cfg, first_latent: np.ndarray, num_frames: int, steps: int, seed: int) -> float:
    """Max-abs of numpy vs torch FSP on the same noise and mask, in the UNet's (VP) units."""

    fsp_cfg = cfg.fsp
    ref, ours = _diffusers_scheduler(name, cfg.scheduler), make_scheduler(name, cfg.scheduler)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    rng = np.random.default_rng(seed)
    b, c, h, w = first_latent.shape
    shape = (b, c, num_frames, h, w)
    mask = np_fsp.sample_mask(shape, fsp_cfg.mask_p, rng)
    noise = rng.standard_normal(shape).astype(np.float32)
    t = ref.timesteps[0]
    expected = torch_fsp.frame_similarity_prior(
        torch.from_numpy(first_latent), num_frames, ref, t, fsp_cfg, noise=torch.from_numpy(noise), mask=torch.from_numpy(mask)
    ).numpy()
    got = np_fsp.frame_similarity_prior(first_latent, num_frames, ours, t.item(), fsp_cfg, noise=noise, mask=mask)
    unit = 1.0 / np.sqrt(float(ref.sigmas[0]) ** 2 + 1.0) if name == "euler" else 1.0
    return float(np.abs(got - expected).max() * unit)


class RecordingRunner:
    """A stage runner that passes calls through and keeps a copy of every output of one stage."""

    def __init__(self, runner, stage: str = "unet"):
        self.runner, self.stage, self.outputs = runner, stage, []
        self.specs = runner.specs

    def run(self, name: str, feeds: dict) -> dict:
        out = self.runner.run(name, feeds)
        if name == self.stage:
            self.outputs.append(next(iter(out.values())).copy())
        return out


class _RecordingModule:
    """Wraps a PyTorch stage module the same way (`I2VPipeline.stages[name]` is called positionally)."""

    def __init__(self, module):
        self.module, self.outputs = module, []

    def __call__(self, *inputs):
        out = self.module(*inputs)
        self.outputs.append(out.detach().numpy().copy())
        return out


def guidance_step_figures(runtime_preds: list, torch_preds: list) -> list[dict]:
    """Per UNet call: correlation of the cond - uncond deltas and their standard deviations."""
    steps = []
    for ours, ref in zip(runtime_preds, torch_preds):
        d_ours, d_ref = parity_lib.guidance_delta(ours, 1), parity_lib.guidance_delta(ref, 1)
        steps.append({"correlation": parity_lib.correlation(d_ours, d_ref),
                      "std_runtime": float(d_ours.std()), "std_pytorch": float(d_ref.std())})
    return steps


def end_to_end(runtime_pipe, torch_pipe, image: np.ndarray, options: VerifyOptions, steps: int, guidance: float):
    """Both pipelines on the same image, prompts, noise and mask -> (figures, torch frames, runtime frames)."""

    cfg = runtime_pipe.config
    _, c, f, h, w = runtime_pipe.specs["unet"].inputs[0].shape  # sample (2, C, F, h, w)
    rng = np.random.default_rng(options.seed)
    mask = np_fsp.sample_mask((1, c, f, h, w), cfg.fsp.mask_p, rng)
    noise = rng.standard_normal((1, c, f, h, w)).astype(np.float32)
    recorder = RecordingRunner(runtime_pipe.runner)
    recorded = RuntimePipeline(runtime_pipe.specs, recorder, runtime_pipe.tokenizer, cfg)
    common = dict(fsp=cfg.fsp, progress=options.progress)
    out = recorded(image, options.prompt, options.negative_prompt, num_inference_steps=steps, guidance_scale=guidance,
                   noise=noise, mask=mask, **common)
    module = _RecordingModule(torch_pipe.stages["unet"])
    torch_pipe.stages["unet"] = module
    try:
        ref = torch_pipe(image, options.prompt, options.negative_prompt, num_inference_steps=steps,
                         guidance_scale=guidance, noise=torch.from_numpy(noise), mask=torch.from_numpy(mask), **common)
    finally:
        torch_pipe.stages["unet"] = module.module
    frame_psnr = [min(parity_lib.PSNR_CAP_DB, psnr_uint8(a, b)) for a, b in zip(out.frames, ref.frames)]
    per_step = guidance_step_figures(recorder.outputs, module.outputs)
    figures = {
        "timesteps": [float(t) for t in out.timesteps],
        "same_timesteps": [float(t) for t in out.timesteps] == [float(t) for t in ref.timesteps],
        "frame_psnr_db": frame_psnr,
        "min_frame_psnr_db": min(frame_psnr),
        "latent_max_abs": parity_lib.max_abs(out.latents, ref.latents.numpy()),
        "latent_psnr_db": parity_lib.psnr_db(out.latents, ref.latents.numpy()),
        "guidance_per_step": per_step,
        "min_guidance_correlation": min(s["correlation"] for s in per_step),
    }
    return figures, ref.frames, out.frames


def both_video_metrics(videos: dict[str, np.ndarray], image: np.ndarray, clip: Path | None) -> dict:
    """`runtime_py.metrics.video_metrics` of each video, plus the mean CLIP cosine with a CLIP checkpoint."""
    out = {name: video_metrics(frames, image).to_dict() for name, frames in videos.items()}
    if clip is not None:
        model = load_clip_vision(clip)
        for name, frames in videos.items():
            out[name]["clip_cosine"] = clip_consistency(frames, image, model)["mean_clip_cosine"]
    return out


def find_failures(report: dict, th: Thresholds) -> list[str]:
    """Every figure of `report` past its threshold, as one message each (figure and threshold)."""
    fails = []
    for name, p in report["stages"].items():
        if p["psnr_db"] < th.stage_psnr_db:
            fails.append(f"stage {name}: PSNR {p['psnr_db']:.1f} dB < {th.stage_psnr_db:g} dB (max-abs {p['max_abs']:.3g})")
        if "guidance_correlation" in p and not p["guidance_correlation"] >= th.guidance_correlation:
            fails.append(f"stage {name}: guidance delta correlation {p['guidance_correlation']:.4f} < {th.guidance_correlation}")
    for name, s in report["schedulers"].items():
        worst = max(s["max_step_error"], s["max_scale_model_input_error"])
        if worst > th.scheduler_step or not s["same_timesteps"]:
            fails.append(f"scheduler {name}: step error {worst:.3g} > {th.scheduler_step:g} or timesteps differ ({s['same_timesteps']=})")
    if not report["tokenizer"]["identical"]:
        fails.append(f"tokenizer: ids differ: {report['tokenizer']['mismatches']}")
    for name, value in report["fsp"].items():
        if value["max_abs"] > th.fsp_max_abs:
            fails.append(f"fsp ({name}): max-abs {value['max_abs']:.3g} > {th.fsp_max_abs:g}")
    e2e = report["end_to_end"]
    if e2e["min_frame_psnr_db"] < th.frame_psnr_db:
        worst = int(np.argmin(e2e["frame_psnr_db"]))
        fails.append(f"end to end: frame {worst} PSNR {e2e['min_frame_psnr_db']:.1f} dB < {th.frame_psnr_db:g} dB")
    if not e2e["min_guidance_correlation"] >= th.guidance_correlation:
        fails.append(f"end to end: guidance delta correlation {e2e['min_guidance_correlation']:.4f} < {th.guidance_correlation} at some step")
    if not e2e["same_timesteps"]:
        fails.append("end to end: the runtime and PyTorch visited different timesteps")
    return fails


def run_verify(options: VerifyOptions) -> VerifyResult:
    """All checks (see the module doc); raises `ValueError`/`FileNotFoundError` on bad input only."""

    values.sampling(options.num_inference_steps, options.guidance_scale, options.seed)
    w = options.weights
    check_separate(options.out, {"--bundle": options.bundle, "--image": options.image, "--clip": options.clip,
                                 "--sd15": w.sd15, "--motion-module": w.motion_module, "--adapter": w.adapter,
                                 **{f"--lora[{i}]": p for i, (p, _) in enumerate(w.loras)}})
    check_output_dir(options.out, overwrite=options.overwrite, kind=VERIFY_OUTPUT)
    if options.clip is not None and not Path(options.clip).is_dir():
        raise FileNotFoundError(f"CLIP checkpoint folder not found: {options.clip}")
    manifest = verify_bundle(options.bundle)
    precision = manifest.get("precision", "fp32")
    th = replace(thresholds_for(manifest), **options.thresholds)
    loaded = RuntimePipeline.from_bundle(options.bundle, options.backend, threads=options.threads, verify=False)
    runtime = RuntimePipeline(loaded.specs, NamedFailures(loaded.runner), loaded.tokenizer, loaded.config)
    if options.image is None:
        image = make_test_card(*runtime.image_size)
    else:
        image = runtime.load_image(options.image)
    sampling = runtime.config.sampling
    steps = sampling.num_inference_steps if options.num_inference_steps is None else options.num_inference_steps
    guidance = sampling.guidance_scale if options.guidance_scale is None else options.guidance_scale
    torch_pipe = build_reference(manifest, options.weights)
    logger.info("stages, schedulers, tokenizer, FSP ...")
    with torch.no_grad():
        first = torch_pipe.run_stage("vae_encoder", torch.from_numpy(image_to_unit_range(image))).numpy()
    tok_dir = tokenizer_path(options.bundle, manifest, "vocab.json").parent  # checked: inside the bundle, hashed
    report = {
        "bundle": str(options.bundle), "backend": options.backend, "precision": precision,
        "preset": runtime.config.name, "weights": manifest.get("weights", {}),
        "inputs": {"image": str(options.image) if options.image else "built-in test card", "prompt": options.prompt,
                   "negative_prompt": options.negative_prompt, "steps": steps, "guidance": guidance, "seed": options.seed},
        "thresholds": asdict(th),
        "stages": stage_parity(runtime.runner, torch_pipe, options.seed),
        "schedulers": {n: scheduler_parity(n, runtime.config.scheduler, min(steps, 50), options.seed) for n in SCHEDULERS},
        "tokenizer": tokenizer_parity(runtime.tokenizer, torch_pipe.components.tokenizer, tok_dir,
                                      (*TOKENIZER_TEXTS, options.prompt, options.negative_prompt)),
        "fsp": {n: {"max_abs": fsp_parity(n, runtime.config, first, runtime.config.num_frames, steps, options.seed)}
                for n in SCHEDULERS},
    }
    logger.info("end to end, %d steps ...", steps)
    report["end_to_end"], torch_frames, runtime_frames = end_to_end(runtime, torch_pipe, image, options, steps, guidance)
    report["metrics"] = both_video_metrics({"pytorch": torch_frames, "runtime": runtime_frames}, image, options.clip)
    failures = find_failures(report, th)
    report["failures"], report["passed"] = failures, not failures
    return VerifyResult(report, failures, image, {"pytorch": torch_frames, "runtime": runtime_frames}, sampling.fps)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.verify", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="report folder (verify.json, verify.md, frames.png, videos)")
    p.add_argument("--backend", choices=["onnx", "tflite"], default="onnx")
    p.add_argument("--image", type=Path, default=None, help="input image (default: the built-in test card)")
    p.add_argument("--prompt", default=VerifyOptions.prompt)
    p.add_argument("--negative-prompt", default=VerifyOptions.negative_prompt)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (bundle default)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-stage-psnr", type=float, default=None, help="dB (default: fp32 60, else the floor the bundle was gated on)")
    p.add_argument("--min-frame-psnr", type=float, default=None, help="dB (default by precision: fp32 40, else 25)")
    p.add_argument("--min-guidance-corr", type=float, default=None, help="default: fp32 0.99, else the floor the bundle was gated on")
    p.add_argument("--sd15", type=Path, help="SD1.5 folder, for a bundle exported from checkpoints")
    p.add_argument("--motion-module", type=Path)
    p.add_argument("--adapter", type=Path)
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:SCALE]")
    p.add_argument("--clip", type=Path, default=None,
                   help="local CLIP checkpoint folder (transformers, safetensors): adds CLIP cosine to the metrics")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    return p


def options_from_args(args: argparse.Namespace) -> VerifyOptions:
    cli.check_sampling_flags(steps=args.steps, guidance=args.guidance, seed=args.seed)
    named = {"stage_psnr_db": args.min_stage_psnr, "frame_psnr_db": args.min_frame_psnr,
             "guidance_correlation": args.min_guidance_corr}
    return VerifyOptions(
        bundle=args.bundle, out=args.out, backend=args.backend, image=args.image, prompt=args.prompt,
        negative_prompt=args.negative_prompt, num_inference_steps=args.steps, guidance_scale=args.guidance, seed=args.seed,
        thresholds={k: v for k, v in named.items() if v is not None},
        weights=Weights(args.sd15, args.motion_module, args.adapter, tuple(parse_lora(s) for s in args.lora)),
        threads=args.threads, clip=args.clip, overwrite=args.overwrite, progress=not args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int | None:
        options = options_from_args(args)
        result = run_verify(options)
        write_report(result, options.out, overwrite=options.overwrite)
        print("\n".join(summary_lines(result.report)))
        print(f"report: {options.out}/verify.md")
        if result.failures:
            print("FAILED: " + "; ".join(result.failures), file=sys.stderr)
            return 1

    return cli.run(command, user_errors=(ImportError, StageRunError))


if __name__ == "__main__":
    cli.entry(main, loggers=("evaluation", "runtime_py"))
