"""`python -m evaluation.ablation`: the paper's Table 3 in miniature, on the tiny model.

    python -m evaluation.ablation --out runs/ablation                      # shipped tiny weights
    python -m evaluation.ablation --weights DIR --train-config configs/tiny_adapter_trained.json --out runs/ablation

A fixed held-out set: frame 0 of procedural clips drawn with a seed never used in training
(`HELD_OUT_SEED`), with the clip's own caption as the prompt ("a red circle moves to the right on a
plain background"). Variants, each generated with the same seed per image:

- `t2v`: the base text-to-video model, I2V-Adapter removed, no FSP (frame 0 is still put in clean);
- `t2v+fsp`: the base model started from the Frame Similarity Prior (what FSP alone gives);
- `adapter`: with the I2V-Adapter, no FSP (start from pure noise);
- `adapter+fsp`: with the adapter and the Frame Similarity Prior (the default pipeline);
- `int8 bundle` (with `--bundle-int8`): the default pipeline on an exported, quantized bundle through
  the numpy runtime (`runtime_py`);
- `ground truth`: the held-out clips themselves (the scale of each metric for real motion).

Metrics per video (`runtime_py.metrics`): FlowScore (px/frame), WarpingError, first-frame SSIM and
PSNR over frames 1..F-1; plus `direction`: for clips that translate, whether the mean optical flow
over moving pixels points the way the caption says (the share of such videos that do).

And, free of the sampler's randomness, the adapter objective itself (`denoising_error`): the
epsilon MSE over frames 1..F-1 of each held-out clip noised to fixed timesteps, frame 0 clean, with
and without the adapter, on the same noise; what the sampler's first step commits to
(`first_step_error`): the clean-latent error of the UNet's prediction from pure noise at the first
DDIM timestep, frame 0 clean; and whether the model reads the caption's motion at all
(`caption_effect`, and `caption_effect_first_step` with the first-step error): the same errors of
the default model on the translating clips with their own caption, the opposite direction ("moves
to the left" for "moves to the right"), a direction on the other axis ("moves down") and no caption.
Writes `ablation.json` (per video and means) and `ablation.md` (the tables).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from i2v_adapter.checkpoints.shipped import PARTS, default_components, load_trained
from i2v_adapter.model.adapter import remove_i2v_adapter
from i2v_adapter.pipeline import I2VPipeline, with_fsp
from i2v_adapter.training.config import TrainConfig
from i2v_adapter.training.data import CAPTION_STYLES, START_STYLES, SyntheticClips
from i2v_adapter.training.objectives import encode_frames, epsilon_loss, noisy_input, predicted_clean, predicted_noise
from i2v_core import cli
from i2v_core.config import get_preset
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import OutputKind, check_separate
from runtime_py.metrics import optical_flow, video_metrics
from runtime_py.pipeline import RuntimePipeline

logger = logging.getLogger(__name__)

HELD_OUT_SEED = 90210  # training used seeds 0 to 5
ERROR_TIMESTEPS = (50, 250, 500, 750, 950)
VARIANTS = ("t2v", "t2v+fsp", "adapter", "adapter+fsp")
_DIRECTIONS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
_PHRASES = {"right": "moves to the right", "left": "moves to the left", "up": "moves up", "down": "moves down"}
_OPPOSITE = {"right": "left", "left": "right", "up": "down", "down": "up"}
# A direction on the other axis. Where a shape starts gives its direction along its axis away (a shape
# that moves right starts in the left part of the frame), so with frame 0 known the caption is needed
# for the axis more than for the way along it.
_ACROSS = {"right": "down", "down": "right", "left": "up", "up": "left"}
TRANSLATIONS = tuple(_DIRECTIONS)  # the motions whose direction a caption names
# The prompts the shipped tiny default was trained on (MODEL_CARD.md): the motion phrase alone
# ("moves to the right"); the image says the rest.
SHIPPED_CAPTIONS = "motion"


def held_out_clips(count: int, cfg, seed: int = HELD_OUT_SEED, captions: str = SHIPPED_CAPTIONS,
                   start: str = "edge") -> list[tuple[np.ndarray, str, str]]:
    """`(frames (F, H, W, 3) uint8, prompt, motion)` of the first `count` held-out clips (or of another
    `seed`), with captions in a style of `data.CAPTION_STYLES` and starts of `data.START_STYLES`."""
    clips = SyntheticClips(count, num_frames=cfg.num_frames, height=cfg.height, width=cfg.width, seed=seed,
                           captions=captions, start=start)
    return [(*clips[i], clips.spec(i).motion) for i in range(count)]


def held_out_set(count: int, cfg) -> list[tuple[np.ndarray, str, str]]:
    """`(image (H, W, 3) uint8, prompt, motion)`: frame 0 of each held-out clip is the input image."""
    return [(frames[0], prompt, motion) for frames, prompt, motion in held_out_clips(count, cfg)]


def motion_direction_ok(frames: np.ndarray, motion: str) -> bool | None:
    """For a translating motion: does the mean flow of moving pixels (> 0.5 px/frame) point that way?"""
    if motion not in _DIRECTIONS:
        return None
    flows = np.stack([optical_flow(a, b) for a, b in zip(frames[:-1], frames[1:])])  # (F-1, H, W, 2)
    moving = np.linalg.norm(flows, axis=-1) > 0.5
    if not moving.any():
        return False
    mean = flows[moving].mean(axis=0)  # (2,) dx, dy
    return bool(np.dot(mean, _DIRECTIONS[motion]) > 0.5 * np.linalg.norm(mean))


def generate_variant(pipe, variant: str, image, prompt: str, seed: int) -> np.ndarray:
    """`(F, H, W, 3)` uint8 from the PyTorch pipeline; FSP only in the `+fsp` variants."""
    fsp = with_fsp(pipe.config.fsp, enabled=variant.endswith("+fsp"))
    return pipe(image, prompt, seed=seed, fsp=fsp, progress=False).frames


def pipelines(weights: Path | None, cfg):
    """`{variant: pipeline}` for preset config `cfg`: one with the adapter, one with it removed."""
    def build():
        components = default_components(cfg, random_weights=weights is not None)
        if weights is not None:
            files = {p: weights / f"{p}.safetensors" for p in PARTS if (weights / f"{p}.safetensors").is_file()}
            load_trained(components, **files)
        return components

    base = build()
    remove_i2v_adapter(base.unet)
    with_adapter = I2VPipeline(build())
    without = I2VPipeline(base)
    return {"t2v": without, "t2v+fsp": without, "adapter": with_adapter, "adapter+fsp": with_adapter}


def _clip_inputs(pipe, clip: np.ndarray, prompt: str):
    """`(latents (1, 4, F, h, w), text states (1, 77, D))` of one clip and its prompt, through the pipeline's stages."""

    latents = encode_frames(pipe.stages["vae_encoder"], torch.from_numpy(clip[None]), torch.float32)
    ids = torch.from_numpy(pipe.components.tokenizer.encode(prompt).astype(np.int32))[None]  # (1, 77)
    return latents, pipe.stages["text_encoder"](ids)


def denoising_error(pipe, clips, timesteps=ERROR_TIMESTEPS, *, first_frame_clean: bool = True) -> dict[int, float]:
    """`{t: mean epsilon MSE}` over frames 1..F-1 of `clips` noised to `t`, frame 0 clean, caption as prompt.

    The noise of clip `i` is drawn from seed `i`, so two pipelines (with and without the adapter)
    are scored on identical inputs. `first_frame_clean=False`: the T2V objective instead, every
    frame noised and scored. A v-prediction UNet is scored on the noise its output implies, so
    either kind of model gets the same measure.
    """

    stages, scheduler = pipe.stages, pipe.components.scheduler
    errors: dict[int, list[float]] = {int(t): [] for t in timesteps}
    with torch.no_grad():
        for i, (clip, prompt, _) in enumerate(clips):
            latents, states = _clip_inputs(pipe, clip, prompt)
            noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(i))
            for t in errors:
                step = torch.tensor([t])
                sample = noisy_input(scheduler, latents, noise, step, first_frame_clean=first_frame_clean)
                pred = predicted_noise(scheduler, sample, stages["unet"](sample, step.float(), states), step)
                errors[t].append(float(epsilon_loss(pred, noise, first=1 if first_frame_clean else 0)))
    return {t: round(float(np.mean(v)), 6) for t, v in errors.items()}


def first_step_error(pipe, clips, *, first_frame_clean: bool = True, pure_noise: bool = True) -> dict[int, float]:
    """`{t: mean clean-latent MSE}` at the sampler's first timestep `t`, from pure noise, caption as prompt.

    What DDIM's first step sees: frames 1..F-1 pure noise (every frame with `first_frame_clean=False`),
    frame 0 the clean latent; the error is that of the UNet's predicted clean latent against the clip's
    (the layout the first step commits to), not of epsilon. Noise of clip `i` from seed `i`.
    `pure_noise=False`: the clip noised to `t` instead, as training noises it (its
    `sqrt(alpha_bar)` share of the clip left in), to show how much a model reads from that leak.
    """

    stages, scheduler = pipe.stages, pipe.components.scheduler
    t = pipe.timesteps(pipe.config.sampling.num_inference_steps, with_fsp(pipe.config.fsp, enabled=False))[0]
    step = t.reshape(1)
    first = 1 if first_frame_clean else 0
    errors = []
    with torch.no_grad():
        for i, (clip, prompt, _) in enumerate(clips):
            latents, states = _clip_inputs(pipe, clip, prompt)
            noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(i))
            if pure_noise:
                sample = noise.clone()
                if first_frame_clean:
                    sample[:, :, 0] = latents[:, :, 0]
            else:
                sample = noisy_input(scheduler, latents, noise, step, first_frame_clean=first_frame_clean)
            output = stages["unet"](sample, step.float(), states)
            x0 = predicted_clean(scheduler, sample, output, step)
            errors.append(float((x0 - latents)[:, :, first:].pow(2).mean()))
    return {int(t): round(float(np.mean(errors)), 5)}


def direction_following(pipe, clips, *, fsp: bool = True, seed: int = 0) -> dict[str, int]:
    """Sampled videos of the translating `clips` (frame 0 as the image): how many move the captioned
    way (`motion_direction_ok`), with the own caption and with the direction reversed in it; one seed
    per clip, shared by both captions. A model that reads the direction scores high on both."""
    moving = [c for c in clips if c[2] in TRANSLATIONS]
    counts = {"clips": len(moving), "as captioned": 0, "opposite direction": 0}
    for i, (clip, prompt, motion) in enumerate(moving):
        for name, text, way in (("as captioned", prompt, motion),
                                ("opposite direction", opposite_caption(prompt, motion), _OPPOSITE[motion])):
            frames = generate_variant(pipe, "adapter+fsp" if fsp else "adapter", clip[0], text, seed=seed + i)
            counts[name] += bool(motion_direction_ok(frames, way))
    return counts


def copy_first_frame_error(pipe, clips) -> float:
    """Mean clean-latent MSE of frames 1..F-1 against frame 0's latent copied into them.

    The yardstick of `first_step_error`: what a model that only copies the input image would score.
    Most of it sits in the few latent pixels the moving shape covers, so a model that knew where the
    caption sends the shape would score well below it.
    """
    with torch.no_grad():
        errors = [float((latents[:, :, 1:] - latents[:, :, :1]).pow(2).mean())
                  for latents, _ in (_clip_inputs(pipe, clip, prompt) for clip, prompt, _ in clips)]
    return round(float(np.mean(errors)), 5)


def redirected_caption(prompt: str, motion: str, to: str) -> str:
    """The caption of a clip translating `motion` with the direction `to` in its place."""
    if motion not in _PHRASES or _PHRASES[motion] not in prompt or to not in _PHRASES:
        raise ValueError(f"expected a caption saying {_PHRASES.get(motion, 'a translation')!r} and a direction "
                         f"among {list(_PHRASES)}, got {prompt!r} and {to!r}")
    return prompt.replace(_PHRASES[motion], _PHRASES[to])


def opposite_caption(prompt: str, motion: str) -> str:
    """The caption of a translating clip with the direction reversed."""
    return redirected_caption(prompt, motion, _OPPOSITE.get(motion, ""))


def caption_effect(pipe, clips, measure=denoising_error, **kwargs) -> dict[str, dict[int, float]]:
    """`{"as captioned" | "opposite direction" | "other axis" | "no caption": {t: error}}` over the
    translating `clips`: `measure` (`denoising_error` or `first_step_error`) with each caption ("other
    axis": right <-> down, left <-> up); `kwargs` go to it."""
    moving = [c for c in clips if c[2] in TRANSLATIONS]
    if not moving:
        return {}
    prompts = {
        "as captioned": [prompt for _, prompt, _ in moving],
        "opposite direction": [opposite_caption(prompt, motion) for _, prompt, motion in moving],
        "other axis": [redirected_caption(prompt, motion, _ACROSS[motion]) for _, prompt, motion in moving],
        "no caption": ["" for _ in moving],
    }
    return {name: measure(pipe, [(clip, text, motion) for (clip, _, motion), text in zip(moving, texts)], **kwargs)
            for name, texts in prompts.items()}


def caption_table(effect: dict[str, dict[int, float]], count: int) -> str:
    """Markdown: the default model's epsilon MSE per timestep under each caption."""
    if not effect:
        return "(no translating clip in the held-out set)\n"
    steps = list(next(iter(effect.values())))
    lines = [f"| caption ({count} translating clips) | " + " | ".join(f"t = {t}" for t in steps) + " |",
             "|---|" + "---|" * len(steps)]
    for name, errors in effect.items():
        lines.append(f"| {name} | " + " | ".join(f"{errors[t]:.5f}" for t in steps) + " |")
    return "\n".join(lines) + "\n"


def error_table(errors: dict[str, dict[int, float]], what: str = "epsilon MSE") -> str:
    """Markdown: an error per timestep (`what`), base T2V against the adapter."""
    base, adapted = errors["t2v"], errors["adapter"]
    lines = [f"| timestep ({what}) | base T2V, frame 0 clean | + I2V-Adapter | change |", "|---|---|---|---|"]
    for t in base:
        lines.append(f"| {t} | {base[t]:.5f} | {adapted[t]:.5f} | {100.0 * (adapted[t] / base[t] - 1.0):+.1f}% |")
    return "\n".join(lines) + "\n"


def evaluate(frames: np.ndarray, image: np.ndarray, motion: str) -> dict:
    row = video_metrics(frames, image).to_dict()
    row.pop("flow_method")
    row["direction_ok"] = motion_direction_ok(frames, motion)
    return row


def summarise(rows: list[dict]) -> dict:
    keys = ("flow_score", "warping_error", "first_frame_ssim", "first_frame_psnr_db")
    out = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys}
    judged = [r["direction_ok"] for r in rows if r["direction_ok"] is not None]
    out["direction_accuracy"] = round(float(np.mean(judged)), 3) if judged else None
    out["direction_judged"] = len(judged)
    return out


def markdown_table(summary: dict[str, dict], count: int) -> str:
    lines = [
        f"| variant ({count} held-out images) | FlowScore (px/frame) | WarpingError | first-frame SSIM | "
        "first-frame PSNR (dB) | direction as captioned |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        judged = s["direction_judged"]  # the accuracy is a fraction of the judged (translating) videos
        direction = "n/a" if s["direction_accuracy"] is None else f"{round(s['direction_accuracy'] * judged)} of {judged}"
        lines.append(
            f"| {name} | {s['flow_score']:.3f} | {s['warping_error']:.5f} | {s['first_frame_ssim']:.3f} | "
            f"{s['first_frame_psnr_db']:.2f} | {direction} |"
        )
    return "\n".join(lines) + "\n"


def run_ablation(weights: Path | None, count: int, cfg, bundle_int8: Path | None = None,
                 backend: str = "onnx", progress: bool = True, captions: str = SHIPPED_CAPTIONS,
                 start: str = "edge") -> tuple[dict, dict]:
    pipes = pipelines(weights, cfg)
    names = list(VARIANTS)
    if bundle_int8 is not None:
        pipes["int8 bundle"] = RuntimePipeline.from_bundle(bundle_int8, backend)
        names.append("int8 bundle")
    cfg = pipes["adapter"].config
    clips = held_out_clips(count, cfg, captions=captions, start=start)
    rows: dict[str, list[dict]] = {n: [] for n in names + ["ground truth"]}
    for i, (clip, prompt, motion) in enumerate(tqdm(clips, desc="ablation", disable=not progress)):
        image = clip[0]
        rows["ground truth"].append({"index": i, "prompt": prompt, **evaluate(clip, image, motion)})
        for name in names:
            pipe = pipes[name]
            if name == "int8 bundle":
                frames = pipe(image, prompt, seed=i, progress=False).frames
            else:
                frames = generate_variant(pipe, name, image, prompt, seed=i)
            rows[name].append({"index": i, "prompt": prompt, **evaluate(frames, image, motion)})
    objective = {
        "denoising_error": {name: denoising_error(pipes[name], clips) for name in ("t2v", "adapter")},
        "first_step_error": {name: first_step_error(pipes[name], clips) for name in ("t2v", "adapter")},
        "first_step_error_noised_clip": {name: first_step_error(pipes[name], clips, pure_noise=False)
                                         for name in ("t2v", "adapter")},
        "caption_effect": caption_effect(pipes["adapter"], clips),
        "caption_effect_first_step": caption_effect(pipes["adapter"], clips, first_step_error),
        "copy_first_frame_error": copy_first_frame_error(pipes["adapter"], clips),
    }
    return rows, {n: summarise(r) for n, r in rows.items()}, objective


ABLATION_OUTPUT = OutputKind("ablation folder", "ablation.json")  # what --overwrite may replace


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.ablation", description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=None,
                   help="a folder of trained weights (i2v_adapter.checkpoints.shipped layout); default: the preset's own")
    p.add_argument("--train-config", type=Path, default=None,
                   help="take the architecture from this training config (default: the tiny preset)")
    p.add_argument("--count", type=int, default=24, help="held-out images")
    p.add_argument("--captions", choices=CAPTION_STYLES, default=SHIPPED_CAPTIONS,
                   help="prompt style (default: the shipped model's, the motion phrase alone)")
    p.add_argument("--start", choices=START_STYLES, default="edge",
                   help="held-out clips whose start gives the direction away (edge, as in training) or not (centre)")
    p.add_argument("--bundle-int8", type=Path, default=None, help="a quantized export bundle to add as a row")
    p.add_argument("--backend", default="onnx", help="runtime backend for --bundle-int8 (onnx or tflite)")
    p.add_argument("--out", type=Path, required=True, help="output folder (ablation.json, ablation.md)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1:
        print(f"error: expected --count >= 1, got {args.count}", file=sys.stderr)
        return 2

    def command() -> None:
        check_separate(args.out, {"--weights": args.weights, "--train-config": args.train_config, "--bundle-int8": args.bundle_int8})
        check_output_dir(args.out, overwrite=args.overwrite, kind=ABLATION_OUTPUT)
        with atomic_output_dir(args.out, overwrite=args.overwrite, kind=ABLATION_OUTPUT) as tmp:
            if args.train_config is not None:
                cfg = TrainConfig.from_json(args.train_config).preset_config()
            else:
                cfg = get_preset("tiny")
            rows, summary, objective = run_ablation(args.weights, args.count, cfg, bundle_int8=args.bundle_int8,
                                                    backend=args.backend, progress=not args.quiet,
                                                    captions=args.captions, start=args.start)
            record = {"held_out_seed": HELD_OUT_SEED, "count": args.count, "captions": args.captions,
                      "start": args.start, "summary": summary, **objective,
                      "videos": rows}
            (tmp / "ablation.json").write_text(json.dumps(record, indent=1) + "\n")
            moving = sum(1 for r in rows["ground truth"] if r["direction_ok"] is not None)
            tables = "\n".join((
                markdown_table(summary, args.count), error_table(objective["denoising_error"]),
                error_table(objective["first_step_error"], "first DDIM step from pure noise, clean-latent MSE"),
                error_table(objective["first_step_error_noised_clip"], "the same from the clip noised to t"),
                f"Copying frame 0 into frames 1..F-1 (clean-latent MSE): {objective['copy_first_frame_error']:.5f}\n",
                caption_table(objective["caption_effect"], moving),
                caption_table(objective["caption_effect_first_step"], moving),
            ))
            (tmp / "ablation.md").write_text(tables)
        print(tables, end="")

    return cli.run(command)


if __name__ == "__main__":
    cli.entry(main, loggers=("evaluation", "i2v_adapter",))
