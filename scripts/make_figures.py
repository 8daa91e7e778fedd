"""The tiny default's figures in `docs/`: sample strips and the README's example GIF.

    .venv/bin/python scripts/make_figures.py --out docs --overwrite            # the shipped weights
    .venv/bin/python scripts/make_figures.py --weights DIR --out /tmp/figures  # another weights folder

Clips are not picked by how well they turn out: by default the first `--count` held-out clips
(`evaluation.ablation`, seed 90210) whose caption is a translation, each generated with the
ablation's seed (its index), so the figures show what the ablation's table measures.

- `tiny_samples.png`: per clip three rows of F frames: the base T2V model (no adapter, no FSP), the
  default pipeline (adapter + FSP), the held-out clip itself.
- `tiny_example.gif`: the first of those clips, the default pipeline's video beside the real clip,
  shown at 2x.
- `tiny_vae_colours.png`: a disk of each training colour on grey (top) and its VAE round trip
  (bottom); the cosine similarity of the latents at the disk's centre is printed per colour pair.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from evaluation.ablation import TRANSLATIONS, generate_variant, held_out_clips, pipelines
from i2v_adapter.model.stage_modules import stage_modules
from i2v_adapter.training.data import COLOURS
from i2v_core import cli
from i2v_core.config import get_preset
from i2v_core.media import write_image, write_video
from i2v_core.preprocess import image_to_unit_range, unit_range_to_uint8


def translating_clips(count: int, clips) -> list[int]:
    """Indices of the first `count` of `clips` (`ablation.held_out_clips`) that move a shape right, left, up or down."""
    found = [i for i, (_, _, motion) in enumerate(clips) if motion in TRANSLATIONS][:count]
    if len(found) < count:
        raise ValueError(f"expected {count} translating clips among the first {len(clips)} held-out clips, found {len(found)}")
    return found


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4, scale: int = 2) -> np.ndarray:
    """`(F, H, W, 3)` x 2 -> `(F, scale*H, scale*(2W + gap), 3)`, a white gap between the two videos."""
    f, h = left.shape[:2]
    spacer = np.full((f, h, gap, 3), 255, np.uint8)
    both = np.concatenate([left, spacer, right], axis=2)
    return both.repeat(scale, axis=1).repeat(scale, axis=2)


def vae_colours(components) -> tuple[np.ndarray, dict[str, float]]:
    """`(2H, 7W, 3)` inputs over reconstructions, and `{"red/green": cosine, ...}` of the centre latents."""

    cfg, stages = components.config, stage_modules(components)
    yy, xx = np.mgrid[0:cfg.height, 0:cfg.width]
    disk = (yy - cfg.height // 2) ** 2 + (xx - cfg.width // 2) ** 2 < (0.17 * min(cfg.height, cfg.width)) ** 2
    columns, centres = [], {}
    for name, rgb in COLOURS.items():
        image = np.full((cfg.height, cfg.width, 3), 110, np.uint8)
        image[disk] = rgb
        with torch.no_grad():
            latent = stages["vae_encoder"](torch.from_numpy(image_to_unit_range(image)))  # (1, 4, h, w)
            rebuilt = unit_range_to_uint8(stages["vae_decoder"](latent).numpy())[0]
        centres[name] = latent[0, :, cfg.latent_height // 2, cfg.latent_width // 2].numpy()
        columns.append(np.concatenate([image, rebuilt], axis=0))
    names = list(centres)
    cosine = {
        f"{a}/{b}": round(float(centres[a] @ centres[b] / np.linalg.norm(centres[a]) / np.linalg.norm(centres[b])), 3)
        for k, a in enumerate(names) for b in names[k + 1:]
    }
    return np.concatenate(columns, axis=1), cosine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/make_figures.py", description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=None, help="a trained-weights folder (default: the shipped ones)")
    p.add_argument("--count", type=int, default=2, help="translating held-out clips in the sample strips")
    p.add_argument("--out", type=Path, required=True, help="folder for tiny_samples.png and tiny_example.gif")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.count < 1:
        print(f"error: expected --count >= 1, got {args.count}", file=sys.stderr)
        return 2
    cfg = get_preset("tiny")
    samples, gif, colours = (args.out / f"tiny_{n}" for n in ("samples.png", "example.gif", "vae_colours.png"))
    for target in (samples, gif, colours):
        if target.exists() and not args.overwrite:
            print(f"error: {target} exists; pass --overwrite to replace it", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    pipes = pipelines(args.weights, cfg)
    clips = held_out_clips(64, cfg)
    rows, first = [], None
    for i in translating_clips(args.count, clips):
        clip, prompt, _ = clips[i]
        base = generate_variant(pipes["t2v"], "t2v", clip[0], prompt, seed=i)
        default = generate_variant(pipes["adapter+fsp"], "adapter+fsp", clip[0], prompt, seed=i)
        print(f"clip {i}: {prompt!r}")
        rows += [np.concatenate(list(video), axis=1) for video in (base, default, clip)]  # F x (H, W, 3) -> (H, F*W, 3)
        if first is None:
            first = (default, clip)
    write_image(np.concatenate(rows, axis=0), samples, overwrite=args.overwrite)
    write_video(side_by_side(*first), gif, fps=4, overwrite=args.overwrite)
    strip, cosine = vae_colours(pipes["adapter"].components)
    write_image(strip, colours, overwrite=args.overwrite)
    print("VAE latent cosine similarity at the disk centre:", ", ".join(f"{k} {v}" for k, v in cosine.items()))
    print(f"wrote {samples}, {gif} and {colours}")
    return 0


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter", "evaluation"))
