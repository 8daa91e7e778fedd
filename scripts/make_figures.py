"""The tiny default's figures in `docs/`: sample strips and the README's example GIF.

    .venv/bin/python scripts/make_figures.py --out docs --overwrite            # the shipped weights
    .venv/bin/python scripts/make_figures.py --weights DIR --out /tmp/figures  # another weights folder

Clips are not picked by how well they turn out: by default the first `--count` held-out clips
(`i2v_adapter.ablation`, seed 90210) whose caption is a translation, each generated with the
ablation's seed (its index), so the figures show what the ablation's table measures.

- `tiny_samples.png`: per clip three rows of F frames: the base T2V model (no adapter, no FSP), the
  default pipeline (adapter + FSP), the held-out clip itself.
- `tiny_example.gif`: the first of those clips, the default pipeline's video beside the real clip,
  shown at 2x.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from i2v_adapter.ablation import generate_variant, held_out_clips, pipelines
from i2v_adapter.config import get_preset
from i2v_adapter.media import write_image, write_video

TRANSLATIONS = ("right", "left", "up", "down")


def translating_clips(count: int, cfg, search: int = 64) -> list[int]:
    """Indices of the first `count` held-out clips that move a shape right, left, up or down."""
    clips = held_out_clips(search, cfg)
    found = [i for i, (_, _, motion) in enumerate(clips) if motion in TRANSLATIONS][:count]
    if len(found) < count:
        raise ValueError(f"expected {count} translating clips among the first {search} held-out clips, found {len(found)}")
    return found


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4, scale: int = 2) -> np.ndarray:
    """`(F, H, W, 3)` x 2 -> `(F, scale*H, scale*(2W + gap), 3)`, a white gap between the two videos."""
    f, h = left.shape[:2]
    spacer = np.full((f, h, gap, 3), 255, np.uint8)
    both = np.concatenate([left, spacer, right], axis=2)
    return both.repeat(scale, axis=1).repeat(scale, axis=2)


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
    samples, gif = args.out / "tiny_samples.png", args.out / "tiny_example.gif"
    for target in (samples, gif):
        if target.exists() and not args.overwrite:
            print(f"error: {target} exists; pass --overwrite to replace it", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    pipes = pipelines(args.weights, cfg)
    clips = held_out_clips(64, cfg)
    rows, first = [], None
    for i in translating_clips(args.count, cfg):
        clip, prompt, _ = clips[i]
        base = generate_variant(pipes["t2v"], "t2v", clip[0], prompt, seed=i)
        default = generate_variant(pipes["adapter+fsp"], "adapter+fsp", clip[0], prompt, seed=i)
        print(f"clip {i}: {prompt!r}")
        rows += [np.concatenate(list(video), axis=1) for video in (base, default, clip)]  # F x (H, W, 3) -> (H, F*W, 3)
        if first is None:
            first = (default, clip)
    write_image(np.concatenate(rows, axis=0), samples, overwrite=args.overwrite)
    write_video(side_by_side(*first), gif, fps=4, overwrite=args.overwrite)
    print(f"wrote {samples} and {gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
