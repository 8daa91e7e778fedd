"""`python -m i2v_adapter.generate`: image + prompt -> MP4 and GIF with the PyTorch reference pipeline.

With `--test-card`, or no `--image`, a built-in test card (a red disc on a graded background) is
used, so `make demo` runs on a fresh machine with nothing downloaded. The output folder gets
`video.mp4`, `video.gif`, `input.png` and `generation.json` (settings and timings); it is written to
a temporary folder and renamed at the end, and an existing folder is refused unless `--overwrite`
(which replaces only a generation folder, one with `generation.json`, or an empty folder).

The flags shared with `python -m runtime_py.generate` mean the same: `--image` / `--test-card`,
`--steps` (>= 1), `--guidance` (finite, >= 0), `--seed` (0 .. 2**32 - 1), `--fps` (>= 1), and
prompts longer than the text encoder's 75 tokens are an error unless `--truncate-prompt`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.pipeline import I2VPipeline, with_fsp
from i2v_core import cli, media, values
from i2v_core.cli import parse_lora
from i2v_core.config import PRESETS, get_preset
from i2v_core.media import make_test_card
from i2v_core.outputs import OutputKind, check_separate
from i2v_core.tokenizer import check_prompt_lengths

logger = logging.getLogger(__name__)

GENERATION_OUTPUT = OutputKind("generation folder", "generation.json")  # what --overwrite may replace


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.generate", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--image", type=Path, help="input image (first frame); default: the built-in test card")
    src.add_argument("--test-card", action="store_true", help="use the built-in test card as the input image (the default)")
    p.add_argument("--prompt", default="moves to the right", help="the tiny default reads motion phrases: moves to the right / left / up / down")
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
    p.add_argument("--truncate-prompt", action="store_true", help="cut over-long prompts (with a warning) instead of failing")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@dataclass(frozen=True)
class GenerateOptions:
    """What `python -m i2v_adapter.generate` does, as typed values. None: the preset's default."""

    out: Path
    preset: str = "tiny"
    image: Path | None = None
    prompt: str = "moves to the right"
    negative_prompt: str | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    num_frames: int | None = None
    fsp: bool = True
    fsp_p: float | None = None
    color_match: bool = True
    fps: int | None = None
    sd15: Path | None = None
    motion_module: Path | None = None
    adapter: Path | None = None
    loras: tuple[tuple[Path, float], ...] = field(default_factory=tuple)
    random_weights: bool = False
    truncate_prompt: bool = False
    overwrite: bool = False
    progress: bool = True

    @property
    def checkpoints(self) -> bool:
        return bool(self.sd15 or self.motion_module or self.adapter or self.loras)

    def inputs(self) -> dict[str, Path | None]:
        """Every input path by flag: the output folder must keep clear of them."""
        named = {"--image": self.image, "--sd15": self.sd15, "--motion-module": self.motion_module, "--adapter": self.adapter}
        return {**named, **{f"--lora[{i}]": p for i, (p, _) in enumerate(self.loras)}}


def load_pipeline(options: GenerateOptions) -> I2VPipeline:
    """The pipeline for the preset, from local checkpoints when given, else its default weights."""
    cfg = get_preset(options.preset)
    if options.num_frames is not None:
        cfg = cfg.with_overrides(num_frames=options.num_frames)
    if not options.checkpoints:
        if cfg.name != "tiny" and not options.random_weights:
            raise ValueError(
                f"preset {cfg.name!r} needs checkpoints (--sd15 and --motion-module, optionally --adapter), "
                "or --random-weights to run the architecture with random weights"
            )
        return I2VPipeline.from_preset(cfg, random_weights=options.random_weights)
    components = load_components(
        cfg,
        sd15=options.sd15,
        motion_module=options.motion_module,
        i2v_adapter=options.adapter,
        loras=[p for p, _ in options.loras],
        lora_scales=[s for _, s in options.loras],
    )
    return I2VPipeline(components)


def generate(options: GenerateOptions) -> Path:
    """Generate one video and write `video.mp4`, `video.gif`, `input.png` and `generation.json` into
    `options.out` (atomically; an existing folder is refused unless `overwrite`)."""
    values.sampling(options.num_inference_steps, options.guidance_scale, options.seed, options.fps)
    check_separate(options.out, options.inputs())
    media.check_output_dir(options.out, overwrite=options.overwrite, kind=GENERATION_OUTPUT)
    start = time.perf_counter()
    pipe = load_pipeline(options)
    cfg = pipe.config
    image = (media.load_image(options.image, height=cfg.height, width=cfg.width) if options.image
             else make_test_card(cfg.height, cfg.width))
    negative = cfg.sampling.negative_prompt if options.negative_prompt is None else options.negative_prompt
    check_prompt_lengths(pipe.components.tokenizer, [options.prompt, negative], truncate=options.truncate_prompt)
    fsp = with_fsp(cfg.fsp, enabled=options.fsp, **({} if options.fsp_p is None else {"mask_p": options.fsp_p}))
    loaded = time.perf_counter()
    result = pipe(
        image,
        options.prompt,
        options.negative_prompt,
        num_inference_steps=options.num_inference_steps,
        guidance_scale=options.guidance_scale,
        seed=options.seed,
        fsp=fsp,
        color_match=options.color_match,
        progress=options.progress,
    )
    generated = time.perf_counter()
    fps = cfg.sampling.fps if options.fps is None else options.fps
    record = {
        "preset": cfg.name,
        "prompt": options.prompt,
        "negative_prompt": options.negative_prompt,
        "image": str(options.image) if options.image else "built-in test card",
        "seed": options.seed,
        "steps": len(result.timesteps),
        "timesteps": result.timesteps,
        "guidance_scale": cfg.sampling.guidance_scale if options.guidance_scale is None else options.guidance_scale,
        "fsp": asdict(fsp),
        "frames": list(result.frames.shape),
        "fps": fps,
        "seconds": {"load": round(loaded - start, 3), "generate": round(generated - loaded, 3)},
    }
    with media.atomic_output_dir(options.out, overwrite=options.overwrite, kind=GENERATION_OUTPUT) as tmp:
        media.write_video(result.frames, tmp / "video.mp4", fps=fps)
        media.write_video(result.frames, tmp / "video.gif", fps=fps)
        media.write_image(image, tmp / "input.png")
        (tmp / "generation.json").write_text(json.dumps(record, indent=2) + "\n")
    return options.out


def options_from_args(args: argparse.Namespace) -> GenerateOptions:
    cli.check_sampling_flags(steps=args.steps, guidance=args.guidance, seed=args.seed, fps=args.fps)
    return GenerateOptions(
        out=args.out, preset=args.preset, image=args.image, prompt=args.prompt, negative_prompt=args.negative_prompt,
        num_inference_steps=args.steps, guidance_scale=args.guidance, seed=args.seed, num_frames=args.frames,
        fsp=not args.no_fsp, fsp_p=args.fsp_p, color_match=not args.no_color_match, fps=args.fps, sd15=args.sd15,
        motion_module=args.motion_module, adapter=args.adapter, loras=tuple(parse_lora(s) for s in args.lora),
        random_weights=args.random_weights, truncate_prompt=args.truncate_prompt, overwrite=args.overwrite,
        progress=not args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> None:
        out = generate(options_from_args(args))
        print(f"wrote {out}/video.mp4, video.gif, input.png, generation.json")

    return cli.run(command)


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
