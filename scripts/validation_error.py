"""Epsilon error of trained UNet / adapter files on validation clips: pick checkpoints, see what a run learnt.

    .venv/bin/python scripts/validation_error.py --unet runs/tiny/t2v_p2/unet.safetensors
    .venv/bin/python scripts/validation_error.py --unet U --adapter A --objective adapter

Validation clips are procedural clips of `--seed` (777; training used 0 to 5, the ablation's held-out
set 90210); of the first `--count`, the ones that translate are scored, each with its own caption,
the opposite direction, the other axis and no caption (`evaluation.ablation.caption_effect`), at the ablation's
fixed timesteps. `--objective t2v` noises every frame (what the T2V stage trains), `adapter` keeps
frame 0 clean and scores frames 1..F-1 (what the adapter stage trains). `--measure first-step`
scores instead the clean latent predicted at the sampler's first DDIM step from pure noise
(`evaluation.ablation.first_step_error`): there a T2V model has nothing but the caption to go on;
with `--objective adapter` it also prints the error of copying frame 0 (`copy_first_frame_error`).
`--measure direction` samples videos instead (`evaluation.ablation.direction_following`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation.ablation import (
    SHIPPED_CAPTIONS,
    TRANSLATIONS,
    caption_effect,
    caption_table,
    copy_first_frame_error,
    denoising_error,
    direction_following,
    first_step_error,
    held_out_clips,
    pipelines,
)
from i2v_adapter.checkpoints.shipped import load_trained
from i2v_adapter.training.config import TrainConfig
from i2v_adapter.training.data import CAPTION_STYLES, START_STYLES
from i2v_core import cli
from i2v_core.config import get_preset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/validation_error.py", description=__doc__.splitlines()[0])
    p.add_argument("--unet", type=Path, default=None, help="a T2V UNet file (default: the shipped one)")
    p.add_argument("--adapter", type=Path, default=None, help="an adapter file (default: shipped; with --unet: none)")
    p.add_argument("--text-encoder", type=Path, default=None,
                   help="a text encoder file (a t2v run's with train_text_encoder; default: the shipped one)")
    p.add_argument("--objective", choices=("t2v", "adapter"), default="t2v")
    p.add_argument("--measure", choices=("epsilon", "first-step", "direction"), default="epsilon",
                   help="direction: sample each clip's video (default pipeline) with its caption and with the "
                        "direction reversed, and count the videos that move the captioned way")
    p.add_argument("--train-config", type=Path, default=None,
                   help="the architecture and prediction type of --unet's run (default: the tiny preset)")
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--count", type=int, default=48, help="clips drawn; the translating ones are scored")
    p.add_argument("--motions", nargs="+", choices=TRANSLATIONS, default=None,
                   help="score only the clips of these translations (e.g. a run trained on one direction)")
    p.add_argument("--start", choices=START_STYLES, default=None,
                   help="where translating shapes start (default: --train-config's data.synthetic_start, else edge)")
    p.add_argument("--captions", choices=CAPTION_STYLES, default=None,
                   help="the caption style (default: --train-config's data.synthetic_captions, else the shipped model's)")
    args = p.parse_args(argv)
    captions, start = SHIPPED_CAPTIONS, "edge"
    if args.train_config is not None:
        tcfg = TrainConfig.from_json(args.train_config)
        cfg, captions, start = tcfg.preset_config(), tcfg.data.synthetic_captions, tcfg.data.synthetic_start  # e.g. v
    else:
        cfg = get_preset("tiny")
    captions = args.captions or captions
    start = args.start or start
    pipe = pipelines(None, cfg)["t2v" if args.objective == "t2v" else "adapter"]
    if args.text_encoder is not None:
        load_trained(pipe.components, text_encoder=args.text_encoder)
    if args.unet is not None:
        load_trained(pipe.components, unet=args.unet)  # a fresh adapter (W_O' = 0) when one is installed
    if args.adapter is not None:
        if args.objective == "t2v":
            print("error: --adapter scores the adapter objective: expected --objective adapter", file=sys.stderr)
            return 2
        load_trained(pipe.components, adapter=args.adapter)
    items = held_out_clips(args.count, cfg, seed=args.seed, captions=captions, start=start)
    if args.motions is not None:
        items = [item for item in items if item[2] in args.motions]
        if not items:
            print(f"error: none of the first {args.count} clips moves {' or '.join(args.motions)}: "
                  "expected a larger --count", file=sys.stderr)
            return 2
    if args.measure == "direction":
        if args.objective != "adapter":
            print("error: --measure direction samples videos from frame 0: expected --objective adapter", file=sys.stderr)
            return 2
        counts = direction_following(pipe, items)
        print(f"videos moving the captioned way, of {counts['clips']} translating clips: "
              f"{counts['as captioned']} with the own caption, {counts['opposite direction']} with it reversed")
        return 0
    measure = denoising_error if args.measure == "epsilon" else first_step_error
    effect = caption_effect(pipe, items, measure, first_frame_clean=args.objective == "adapter")
    moving = [item for item in items if item[2] in TRANSLATIONS]
    print(caption_table(effect, len(moving)), end="")
    if args.measure == "first-step" and args.objective == "adapter":
        print(f"copying frame 0 into frames 1..F-1: {copy_first_frame_error(pipe, moving):.5f}")
    return 0


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter", "evaluation"))
