"""`python -m i2v_adapter.generate`: image + prompt -> MP4 and GIF with the PyTorch reference pipeline.

With no `--image`, a built-in test card (a red disc on a graded background) is used, so
`make demo` runs on a fresh machine with nothing downloaded. The output folder gets `video.mp4`,
`video.gif`, `input.png` and `generation.json` (settings and timings); it is written to a temporary
folder and renamed at the end, and an existing folder is refused unless `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.pipeline import I2VPipeline, with_fsp
from i2v_core import media
from i2v_core.cli import parse_lora
from i2v_core.config import PRESETS, get_preset
from i2v_core.media import make_test_card

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.generate", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--image", type=Path, help="input image (first frame); default: a built-in test card")
    p.add_argument("--prompt", default="a red ball rolls to the right")
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (preset default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (preset default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=None, help="number of frames (preset default)")
    p.add_argument("--no-fsp", action="store_true", help="start from pure noise instead of the Frame Similarity Prior")
    p.add_argument("--fsp-p", type=float, default=None, help="FSP keep probability p (default 0.5)")
    p.add_argument("--no-color-match", action="store_true", help="skip LAB colour matching to frame 0")
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--sd15", type=Path, help="SD1.5 folder in diffusers layout (unet/, vae/, text_encoder/)")
    p.add_argument("--motion-module", type=Path, help="AnimateDiff motion module: MotionAdapter folder or original .safetensors")
    p.add_argument("--adapter", type=Path, help="I2V-Adapter weights (.safetensors; convert .pth first)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:SCALE]", help="LoRA to fuse (a style); repeatable")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="seeded random weights instead of checkpoints (full-size presets) or the shipped trained weights (tiny); noise, for timing",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def load_pipeline(args: argparse.Namespace):
    """The pipeline for the CLI's preset, from local checkpoints when given, else deterministic weights."""
    cfg = get_preset(args.preset)
    if args.frames is not None:
        cfg = cfg.with_overrides(num_frames=args.frames)
    if not (args.sd15 or args.motion_module or args.adapter or args.lora):
        if cfg.name != "tiny" and not args.random_weights:
            raise ValueError(
                f"preset {cfg.name!r} needs checkpoints (--sd15 and --motion-module, optionally --adapter), "
                "or --random-weights to run the architecture with random weights"
            )
        return I2VPipeline.from_preset(cfg, random_weights=args.random_weights)

    loras = [parse_lora(s) for s in args.lora]
    components = load_components(
        cfg,
        sd15=args.sd15,
        motion_module=args.motion_module,
        i2v_adapter=args.adapter,
        loras=[p for p, _ in loras],
        lora_scales=[s for _, s in loras],
    )
    return I2VPipeline(components)


def run(args: argparse.Namespace) -> Path:
    start = time.perf_counter()
    pipe = load_pipeline(args)
    cfg = pipe.config
    image = media.load_image(args.image, height=cfg.height, width=cfg.width) if args.image else make_test_card(cfg.height, cfg.width)
    fsp = with_fsp(cfg.fsp, enabled=not args.no_fsp, **({} if args.fsp_p is None else {"mask_p": args.fsp_p}))
    loaded = time.perf_counter()
    result = pipe(
        image,
        args.prompt,
        args.negative_prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        seed=args.seed,
        fsp=fsp,
        color_match=not args.no_color_match,
        progress=not args.quiet,
    )
    generated = time.perf_counter()
    fps = args.fps or cfg.sampling.fps
    record = {
        "preset": cfg.name,
        "prompt": args.prompt,
        "negative_prompt": args.negative_prompt,
        "image": str(args.image) if args.image else "built-in test card",
        "seed": args.seed,
        "steps": len(result.timesteps),
        "timesteps": result.timesteps,
        "guidance_scale": args.guidance if args.guidance is not None else cfg.sampling.guidance_scale,
        "fsp": fsp.__dict__,
        "frames": list(result.frames.shape),
        "fps": fps,
        "seconds": {"load": round(loaded - start, 3), "generate": round(generated - loaded, 3)},
    }
    with media.atomic_output_dir(args.out, overwrite=args.overwrite) as tmp:
        media.write_video(result.frames, tmp / "video.mp4", fps=fps)
        media.write_video(result.frames, tmp / "video.gif", fps=fps)
        media.write_image(image, tmp / "input.png")
        (tmp / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return args.out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}/video.mp4, video.gif, input.png, generation.json")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
