"""The verification report folder: `verify.json`, `verify.md`, `frames.png` and both videos.

`frames.png` has one column per frame and three rows: PyTorch, the runtime, and their absolute
difference amplified x10 (black where they agree). Everything is written into a temporary folder
that replaces `out` only when complete (`i2v_core.media.atomic_output_dir`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from i2v_core import media
from i2v_core.outputs import OutputKind
from runtime_py.overlay import load_font

DIFF_GAIN = 10
LABEL_WIDTH = 72


def json_ready(value):
    """Plain JSON values: numpy scalars to Python, non-finite floats to None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def frame_strip(rows: dict[str, np.ndarray]) -> np.ndarray:
    """`{label: (F, H, W, 3) uint8}` -> one `(R*H, LABEL_WIDTH + F*W, 3)` uint8 image, a labelled row each."""
    strips = []
    for label, frames in rows.items():
        f, h, w, _ = frames.shape
        row = np.concatenate(list(frames), axis=1)  # F x (H, W, 3) -> (H, F*W, 3)
        tag = Image.new("RGB", (LABEL_WIDTH, h), (255, 255, 255))
        ImageDraw.Draw(tag).text((4, h // 2), label, fill=(0, 0, 0), font=load_font(max(9, min(14, h // 8))), anchor="lm")
        strips.append(np.concatenate([np.asarray(tag), row], axis=1))
    return np.concatenate(strips, axis=0)  # R x (H, ., 3) -> (R*H, ., 3)


def diff_frames(a: np.ndarray, b: np.ndarray, gain: int = DIFF_GAIN) -> np.ndarray:
    return np.clip(np.abs(a.astype(np.int16) - b.astype(np.int16)) * gain, 0, 255).astype(np.uint8)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _fmt(x, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def markdown(report: dict) -> str:
    """`verify.md`: verdict, failures, then one table per check."""
    th = report["thresholds"]
    lines = [f"# Runtime verification: {report['bundle']} ({report['backend']}, {report['precision']})", ""]
    lines.append(f"**{'PASSED' if report['passed'] else 'FAILED'}**" + "".join(f"\n- {f}" for f in report["failures"]))
    i = report["inputs"]
    lines += ["", f"Input: {i['image']}; prompt {i['prompt']!r}, negative {i['negative_prompt']!r}; "
              f"{i['steps']} steps, guidance {i['guidance']}, seed {i['seed']}. Weights: {report['weights']}.", ""]
    lines += ["## Stages (runtime vs PyTorch stage module, contract sample inputs)", ""]
    lines += _table(["stage", "PSNR dB", "max-abs", "guidance corr"],
                    [[n, _fmt(p["psnr_db"], ".1f"), _fmt(p["max_abs"]), _fmt(p.get("guidance_correlation"), ".6f")]
                     for n, p in report["stages"].items()])
    lines += ["", f"Floors: PSNR {th['stage_psnr_db']} dB, guidance correlation {th['guidance_correlation']}.", ""]
    lines += ["## Schedulers (numpy vs diffusers, error per step / max(1, max |x|))", ""]
    lines += _table(["scheduler", "steps", "same timesteps", "max step error", "max scale_model_input error"],
                    [[n, s["steps"], s["same_timesteps"], _fmt(s["max_step_error"]), _fmt(s["max_scale_model_input_error"])]
                     for n, s in report["schedulers"].items()])
    tok = report["tokenizer"]
    lines += ["", f"## Tokenizer\n\n{tok['texts']} texts: ids {'identical' if tok['identical'] else 'DIFFER'} "
              "(bundle files vs the PyTorch side's tokenizer and transformers' CLIPTokenizer).", ""]
    lines += ["## Frame Similarity Prior (numpy vs torch, same noise and mask)", ""]
    lines += _table(["scheduler", "max-abs"], [[n, _fmt(v["max_abs"])] for n, v in report["fsp"].items()])
    lines += _e2e_markdown(report["end_to_end"], th) + _metrics_markdown(report["metrics"])
    return "\n".join(lines) + "\n"


def _e2e_markdown(e2e: dict, th: dict) -> list[str]:
    lines = ["", "## End to end (same image, prompts, noise and FSP mask)", "",
             f"Timesteps {e2e['timesteps']}; final latents max-abs {_fmt(e2e['latent_max_abs'])}, "
             f"PSNR {_fmt(e2e['latent_psnr_db'], '.1f')} dB. Floor: frame PSNR {th['frame_psnr_db']} dB.", ""]
    lines += _table(["frame", "PSNR dB (peak 255)"], [[k, _fmt(v, ".1f")] for k, v in enumerate(e2e["frame_psnr_db"])])
    lines += ["", "UNet cond - uncond delta per step:", ""]
    lines += _table(["step", "correlation", "std runtime", "std PyTorch"],
                    [[k, _fmt(s["correlation"], ".6f"), _fmt(s["std_runtime"], ".4g"), _fmt(s["std_pytorch"], ".4g")]
                     for k, s in enumerate(e2e["guidance_per_step"])])
    return lines + ["", "![frames: PyTorch, runtime, |difference| x10](frames.png)"]


def _metrics_markdown(metrics: dict) -> list[str]:
    keys = ["flow_score", "warping_error", "first_frame_ssim", "first_frame_psnr_db"]
    with_clip = all("clip_cosine" in m for m in metrics.values())
    keys += ["clip_cosine"] if with_clip else []
    clip = ("CLIP cosine: mean over frames 1..F-1 vs the input image (evaluation/clip_score.py)." if with_clip
            else "CLIP similarity is not computed (pass --clip with a local CLIP checkpoint).")
    lines = ["", "## Video metrics", "",
             f"Flow: OpenCV {metrics['pytorch']['flow_method'].upper()} (a proxy for the paper's RAFT). FlowScore in "
             "pixels per frame; WarpingError: occlusion-masked MSE of RGB in [0, 1]; first-frame SSIM/PSNR: mean over "
             f"frames 1..F-1 vs the input image (see runtime_py/metrics.py). {clip}", ""]
    return lines + _table(["video", *keys], [[name, *(_fmt(m[k], ".4g") for k in keys)] for name, m in metrics.items()])


def summary_lines(report: dict) -> list[str]:
    """A few lines for the terminal."""
    e2e = report["end_to_end"]
    stages = ", ".join(f"{n} {p['psnr_db']:.1f} dB" for n, p in report["stages"].items())
    sched = max(s["max_step_error"] for s in report["schedulers"].values())
    m = report["metrics"]
    return [
        f"{'PASSED' if report['passed'] else 'FAILED'}: {report['bundle']} ({report['backend']}, {report['precision']})",
        f"stages: {stages}",
        f"schedulers: worst step error {sched:.3g}; tokenizer identical: {report['tokenizer']['identical']}; "
        f"FSP worst max-abs {max(v['max_abs'] for v in report['fsp'].values()):.3g}",
        f"end to end: min frame PSNR {e2e['min_frame_psnr_db']:.1f} dB, min guidance corr {e2e['min_guidance_correlation']:.6f}",
        f"FlowScore PyTorch {m['pytorch']['flow_score']:.3f} / runtime {m['runtime']['flow_score']:.3f}; "
        f"WarpingError {m['pytorch']['warping_error']:.4g} / {m['runtime']['warping_error']:.4g}",
    ]


VERIFY_OUTPUT = OutputKind("verify report folder", "verify.json")  # what --overwrite may replace


def write_report(result, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write `result` (a `verify.VerifyResult`) into the folder `out`, atomically."""
    frames = result.frames
    strip = frame_strip({
        "PyTorch": frames["pytorch"],
        "runtime": frames["runtime"],
        f"|diff|x{DIFF_GAIN}": diff_frames(frames["pytorch"], frames["runtime"]),
    })
    with media.atomic_output_dir(out, overwrite=overwrite, kind=VERIFY_OUTPUT) as tmp:
        (tmp / "verify.json").write_text(json.dumps(json_ready(result.report), indent=2, allow_nan=False) + "\n")
        (tmp / "verify.md").write_text(markdown(result.report), encoding="utf-8")
        media.write_image(strip, tmp / "frames.png")
        media.write_image(result.image, tmp / "input.png")
        for name, video in frames.items():
            media.write_video(video, tmp / f"{name}.mp4", fps=result.fps)
    return Path(out)
