"""`python -m runtime_py.generate`: image + prompt -> MP4 with the torch-free runtime over a bundle.

    python -m runtime_py.generate --bundle bundles/tiny --test-card --prompt "a red ball rolls" \\
        --text "Hello" --music track.wav --out video.mp4

Everything that can be wrong with the inputs is checked before any model runs: the bundle's files
against the manifest's sha256, every stage file loaded and its declared inputs and outputs checked
against the manifest's stage contract, the image (readable, an accepted mode) fitted to the
contract's size and checked against the `vae_encoder` input spec, the prompts' token counts against
the `text_encoder` input, the scheduler and step count, the caption (its time window, its font
loaded, drawn once), the music (decoded once, here), and the output paths. Outputs are written atomically: a failure leaves nothing at
`--out`, and an existing file is replaced only with `--overwrite`.

Prompts longer than the text encoder's 75 tokens are an error by default; `--truncate-prompt` cuts
them with a warning instead (the tokenizer's documented behaviour, as diffusers does).
"""

from __future__ import annotations

import argparse
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from i2v_core import cli, media, values
from i2v_core.media import make_test_card
from i2v_core.outputs import check_separate
from i2v_core.preprocess import image_to_unit_range
from i2v_core.tokenizer import check_prompt_lengths
from runtime_py.audio import load_music
from runtime_py.overlay import POSITIONS, TextOverlay, apply_overlay, render_text_layer
from runtime_py.pipeline import RuntimePipeline
from runtime_py.schedulers import SCHEDULERS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateOptions:
    """One generation. `image` None means the built-in test card. `None` sampling fields keep the
    bundle's defaults (manifest `sampling`, `fsp`); `backend` None: the bundle's own target when it
    has one (a TFLite-only bundle runs on LiteRT), else onnx."""

    bundle: Path
    out: Path
    prompt: str
    image: Path | None = None
    negative_prompt: str | None = None
    backend: str | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int = 0
    scheduler: str = "ddim"
    fsp: bool = True
    fsp_p: float | None = None
    color_match: bool | None = None
    fps: int | None = None
    overlay: TextOverlay | None = None
    music: Path | None = None
    music_rate: int = 44100
    gif: bool = False
    threads: int | None = None
    truncate_prompt: bool = False
    progress: bool = True
    overwrite: bool = False


@dataclass
class GenerateResult:
    frames: np.ndarray  # (F, H, W, 3) uint8, as written (caption included)
    paths: list[Path]
    fps: int
    audio: media.AudioTrack | None
    seconds: dict[str, float] = field(default_factory=dict)


class StageRunError(RuntimeError):
    """A stage failed inside its runtime: a model file it cannot load or run."""


class NamedFailures:
    """A stage runner that turns failures inside the runtime into one `StageRunError` naming the
    stage and its model file (onnxruntime and LiteRT raise their own exception types, without it).
    A sha256 check cannot catch a model that was broken before it was hashed; this names it."""

    def __init__(self, runner):
        self.runner = runner
        self.specs = runner.specs

    def run(self, name: str, feeds: dict) -> dict:
        self.specs[name].check_inputs(feeds)  # contract errors are already clear: raised as they are
        try:
            return self.runner.run(name, feeds)
        except Exception as err:  # past the contract check, anything raised comes from the runtime
            files = getattr(self.runner, "files", {})  # a chunked stage has files `<stage>.chunk<i>`
            where = files.get(name) or ", ".join(str(p) for k, p in files.items() if k.startswith(f"{name}.")) or "its model"
            raise StageRunError(f"stage {name} ({where}) failed in the runtime: {type(err).__name__}: {err}") from err


@dataclass
class Prepared:
    """Inputs checked and loaded, before any model runs."""

    pipe: object  # runtime_py.pipeline.RuntimePipeline
    image: np.ndarray  # (H, W, 3) uint8 at the contract's size
    fps: int
    audio: media.AudioTrack | None
    outputs: list[Path]


def output_paths(options: GenerateOptions) -> list[Path]:
    """`--out` (an `.mp4`) and, with `gif`, the `.gif` beside it; refuses existing files unless
    overwrite, and an output that is an input or lies inside the bundle."""
    out = Path(options.out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"expected --out to end in .mp4, got {out.name!r}")
    paths = [out] + ([out.with_suffix(".gif")] if options.gif else [])
    inputs = {"--bundle": options.bundle, "--image": options.image, "--music": options.music}
    for path in paths:
        check_separate(path, inputs, name="--out" if path == out else "the --gif output")
        if path.exists() and not options.overwrite:
            raise FileExistsError(f"output already exists: {path} (pass --overwrite to replace it)")
        if path.is_dir():
            raise IsADirectoryError(f"expected a file path to write, found a directory: {path}")
    return paths


def check_stage_inputs(pipe, image: np.ndarray, prompt: str) -> None:
    """The first feeds of `vae_encoder` and `text_encoder` against their specs, before any model runs."""
    pipe.specs["vae_encoder"].check_inputs({"image": image_to_unit_range(image)})
    ids = np.asarray(pipe.tokenizer.encode(prompt), dtype=np.int32)[None]  # (77,) -> (1, 77)
    pipe.specs["text_encoder"].check_inputs({"input_ids": ids})


def check_sampling(pipe, options: GenerateOptions) -> None:
    if options.scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {options.scheduler!r}: expected one of {', '.join(SCHEDULERS)}")
    steps = pipe.config.sampling.num_inference_steps if options.num_inference_steps is None else options.num_inference_steps
    pipe.make_scheduler(options.scheduler).set_timesteps(steps)  # raises on a step count it cannot take
    fsp_config(pipe, options).verify()


def fsp_config(pipe, options: GenerateOptions):
    changes = {"enabled": options.fsp}
    if options.fsp_p is not None:
        changes["mask_p"] = options.fsp_p
    return replace(pipe.config.fsp, **changes)


def load_input_image(pipe, options: GenerateOptions) -> np.ndarray:
    if options.image is None:
        return make_test_card(*pipe.image_size)
    return pipe.load_image(options.image)


def prepare(options: GenerateOptions) -> Prepared:
    """Every check that can fail, in order of cost; loads the bundle (hashes) but runs no model."""
    values.sampling(options.num_inference_steps, options.guidance_scale, options.seed, options.fps)
    outputs = output_paths(options)
    loaded = RuntimePipeline.from_bundle(options.bundle, options.backend, threads=options.threads)
    pipe = RuntimePipeline(loaded.specs, NamedFailures(loaded.runner), loaded.tokenizer, loaded.config)
    image = load_input_image(pipe, options)
    negative = pipe.config.sampling.negative_prompt if options.negative_prompt is None else options.negative_prompt
    check_prompt_lengths(pipe.tokenizer, [options.prompt, negative], truncate=options.truncate_prompt)
    check_stage_inputs(pipe, image, options.prompt)
    check_sampling(pipe, options)
    fps = pipe.config.sampling.fps if options.fps is None else options.fps
    duration = pipe.config.num_frames / fps
    if options.overlay is not None:
        options.overlay.verify(duration)
        height, width = pipe.image_size
        render_text_layer(options.overlay, width, height)  # drawn once here: a font problem shows before any model
    audio = None
    if options.music is not None:
        audio = load_music(options.music, duration, sample_rate=options.music_rate)
    return Prepared(pipe, image, fps, audio, outputs)


def write_outputs(frames: np.ndarray, prep: Prepared, overwrite: bool) -> None:
    """The MP4 (with music) and the GIF, each through a temporary file; both renamed only at the end."""
    with ExitStack() as stack:
        temps = [stack.enter_context(media.atomic_output_path(p, overwrite)) for p in prep.outputs]
        for path, tmp in zip(prep.outputs, temps):
            audio = prep.audio if path.suffix.lower() == ".mp4" else None
            media.write_video(frames, tmp, fps=prep.fps, overwrite=True, audio=audio)


def generate(options: GenerateOptions) -> GenerateResult:
    """Check, generate, caption, write. Raises `ValueError`/`FileNotFoundError`/`FileExistsError`
    naming the bad input; nothing is written at `options.out` unless everything succeeded."""
    start = time.perf_counter()
    prep = prepare(options)
    checked = time.perf_counter()
    result = prep.pipe(
        prep.image,
        options.prompt,
        options.negative_prompt,
        num_inference_steps=options.num_inference_steps,
        guidance_scale=options.guidance_scale,
        seed=options.seed,
        fsp=fsp_config(prep.pipe, options),
        color_match=options.color_match,
        scheduler=options.scheduler,
        progress=options.progress,
    )
    generated = time.perf_counter()
    frames = result.frames
    if options.overlay is not None:
        frames = apply_overlay(frames, options.overlay, prep.fps)
    write_outputs(frames, prep, options.overwrite)
    seconds = {"load_and_check": checked - start, "generate": generated - checked, "write": time.perf_counter() - generated}
    return GenerateResult(frames, prep.outputs, prep.fps, prep.audio, {k: round(v, 3) for k, v in seconds.items()})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime_py.generate", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True, help="export bundle directory (manifest.json)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", type=Path, help="input image: the first frame")
    src.add_argument("--test-card", action="store_true", help="use the built-in test card as the input image")
    p.add_argument("--prompt", required=True)
    p.add_argument("--negative-prompt", default=None, help="default: the bundle's")
    p.add_argument("--out", type=Path, required=True, help="output .mp4 (a .gif beside it with --gif)")
    p.add_argument("--backend", choices=["onnx", "tflite"], default=None,
                   help="runtime (default: the bundle's own target when it has one, else onnx)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (bundle default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (bundle default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduler", choices=list(SCHEDULERS), default="ddim")
    p.add_argument("--fsp-p", type=float, default=None, help="Frame Similarity Prior keep probability p")
    p.add_argument("--no-fsp", action="store_true", help="start from pure noise instead of the Frame Similarity Prior")
    p.add_argument("--color-match", action=argparse.BooleanOptionalAction, default=None,
                   help="LAB colour matching of every frame to frame 0 (bundle default: on)")
    p.add_argument("--fps", type=int, default=None, help="frames per second (bundle default)")
    t = p.add_argument_group("caption")
    t.add_argument("--text", default=None, help="caption drawn on the video")
    t.add_argument("--text-position", choices=POSITIONS, default="bottom")
    t.add_argument("--text-start", type=float, default=0.0, help="seconds")
    t.add_argument("--text-end", type=float, default=None, help="seconds (default: the end of the video)")
    t.add_argument("--text-size", type=int, default=None, help="pixels (default: a tenth of the frame height)")
    t.add_argument("--text-fade", type=float, default=0.25, help="fade in/out seconds")
    t.add_argument("--font", default=None, help="a .ttf/.otf font (default: Pillow's built-in)")
    p.add_argument("--music", type=Path, default=None, help="background music (any format FFmpeg decodes)")
    p.add_argument("--music-rate", type=int, choices=[44100, 48000], default=44100, help="music sample rate (Hz)")
    p.add_argument("--gif", action="store_true", help="also write a .gif beside the .mp4")
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: the runtime's choice)")
    p.add_argument("--truncate-prompt", action="store_true", help="cut over-long prompts (with a warning) instead of failing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def options_from_args(args: argparse.Namespace) -> GenerateOptions:
    cli.check_sampling_flags(steps=args.steps, guidance=args.guidance, seed=args.seed, fps=args.fps)
    overlay = None
    if args.text is not None:
        overlay = TextOverlay(args.text, args.text_position, args.text_start, args.text_end, args.text_size,
                              args.text_fade, font=args.font)
    return GenerateOptions(
        bundle=args.bundle, out=args.out, prompt=args.prompt, image=args.image, negative_prompt=args.negative_prompt,
        backend=args.backend, num_inference_steps=args.steps, guidance_scale=args.guidance, seed=args.seed, scheduler=args.scheduler,
        fsp=not args.no_fsp, fsp_p=args.fsp_p, color_match=args.color_match, fps=args.fps, overlay=overlay,
        music=args.music, music_rate=args.music_rate, gif=args.gif, threads=args.threads, truncate_prompt=args.truncate_prompt,
        progress=not args.quiet, overwrite=args.overwrite,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> None:
        result = generate(options_from_args(args))
        f, h, w, _ = result.frames.shape
        sound = f", music {result.audio.sample_rate} Hz AAC" if result.audio is not None else ""
        print(f"wrote {', '.join(map(str, result.paths))}: {f} frames {w}x{h} at {result.fps} fps{sound} "
              f"(generate {result.seconds['generate']:.1f} s)")

    return cli.run(command, user_errors=(ImportError, StageRunError))


if __name__ == "__main__":
    cli.entry(main, loggers=("runtime_py",))
