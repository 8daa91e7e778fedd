"""Golden vectors for the Android app's Java core, written from `runtime_py` and the torch-free tokenizer
and colour matching, so that the Java tests check the phone's logic against the Python reference.

    .venv/bin/python android_demo/make_golden.py --overwrite   # refresh the committed vectors
    .venv/bin/python android_demo/make_golden.py --check       # exit 1 if the committed ones are stale
    .venv/bin/python android_demo/make_golden.py --out DIR     # write elsewhere

Files (JSON, a few KB each) in `android_demo/core/src/test/resources/golden/`:

- `tokenizer.json`: CLIP ids of a varied text set (full SD1.5 vocabulary), truncation.
- `schedulers.json`: DDIM / Euler / LCM timesteps, sigmas, input scaling and two chained steps.
- `fsp.json`: Gaussian kernel, blur and Frame Similarity Prior for fixed noise and mask.
- `guidance.json`: classifier-free guidance combination.
- `colour.json`: LAB conversion and colour matching of a small frame set.
- `timestep_embedding.json`: the sinusoidal timestep embedding an NPU bundle's UNet takes
  (`i2v_core.stages.SinusoidalEmbedding`) at the tiny preset's parameters and at odd ones, for a few
  timesteps, and the pipeline preset's UNet contract under `--npu mediatek` (`unet_io`).
- `pipeline.json`: whole `RuntimePipeline` runs (DDIM, Euler) over the deterministic stand-in stages
  below, from a fixed image, noise and mask.
- `bundle/`: a small bundle written with `i2v_core.manifest.build_manifest` (stand-in stage files,
  a reduced but valid BPE tokenizer); its preset is the pipeline's.

Floats are float32 values written in their shortest round-trip form; uint8 images are base64.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from i2v_core import cli, colour  # noqa: E402
from i2v_core.blur import gaussian_kernel1d  # noqa: E402
from i2v_core.config import FSPConfig, SamplingConfig, SchedulerConfig, get_preset  # noqa: E402
from i2v_core.manifest import StageRecord, TargetRecord, build_manifest, write_manifest  # noqa: E402
from i2v_core.measure import Usage  # noqa: E402
from i2v_core.media import atomic_output_dir  # noqa: E402
from i2v_core.outputs import OutputKind  # noqa: E402
from i2v_core.parity import Parity  # noqa: E402
from i2v_core.stages import SinusoidalEmbedding, stage_specs, timestep_embedding  # noqa: E402
from i2v_core.tokenizer import BOS, EOS, CLIPTokenizer, byte_to_unicode, truncation_warnings_off  # noqa: E402
from runtime_py import fsp as rfsp  # noqa: E402
from runtime_py.pipeline import RuntimePipeline  # noqa: E402
from runtime_py.runners import CallableRunner  # noqa: E402
from runtime_py.schedulers import make_scheduler  # noqa: E402

DEFAULT_OUT = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden"
F32 = np.float32
TEXTS = [
    "",
    "a photo of a cat",
    "A Photo   of a CAT!!",
    "an astronaut riding a horse on mars, trending on artstation, 4k",
    "it's the dog's toy; they're here, we've done it, I'm sure, you'll see, he'd go",
    "naïve café crème brûlée",
    "Ünïcödé «quotes» — dash… ellipsis",
    "日本語のテキスト and 中文",
    "emoji 🐱🚀 test 😀",
    "tabs\tand\nnew\u00a0lines\u3000ideographic space",
    "numbers 1234567 and 3.14159 and v1.5",
    "<|startoftext|>special<|endoftext|> tokens",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ",
    "x" * 5 + " " + " ".join(["word"] * 100),
]
MINI_MERGES = 300
PIPELINE_PROMPT = "a small red boat drifting on calm water"
# Pipeline runs over the stand-in stages: defaults, then FSP strength < 1 with a negative prompt, then
# a pure-noise start (FSP off) without colour matching.
_RUN = {"steps": 4, "guidance": 7.5, "negative_prompt": "", "fsp_enabled": True, "fsp_strength": 1.0, "color_match": True}
PIPELINE_RUNS = [
    {**_RUN, "scheduler": "ddim"},
    {**_RUN, "scheduler": "euler"},
    {**_RUN, "scheduler": "ddim", "steps": 6, "guidance": 3.0, "negative_prompt": "blurry, low quality", "fsp_strength": 0.5},
    {**_RUN, "scheduler": "euler", "steps": 3, "fsp_enabled": False, "color_match": False},
]


# ----------------------------------------------------------------------------- encoding helpers


def floats(x) -> list:
    """float32 values, each written as its shortest round-trip decimal."""
    return [float(str(v)) for v in np.asarray(x, dtype=F32).ravel()]


def tensor(x) -> dict:
    x = np.asarray(x, dtype=F32)
    return {"shape": list(x.shape), "data": floats(x)}


def uint8_image(x) -> dict:
    x = np.ascontiguousarray(x, dtype=np.uint8)
    return {"shape": list(x.shape), "base64": base64.b64encode(x.tobytes()).decode("ascii")}


def rng_for(name: str) -> np.random.Generator:
    """A generator per golden file, so one file's content does not depend on another's."""
    return np.random.default_rng([sum(name.encode()), len(name)])


# ----------------------------------------------------------------------------- vector sets


def tokenizer_vectors() -> dict:
    """Ids of `TEXTS`; the last text is over 75 tokens (truncated: its warning is expected here)."""
    tok = CLIPTokenizer.from_bpe_file()
    with truncation_warnings_off():
        cases = [{"text": t, "ids": tok.encode(t).tolist(), "num_tokens": len(tok.tokenize(t))} for t in TEXTS]
    return {"vocab_size": tok.vocab_size, "max_length": 77, "cases": cases}


def mini_tokenizer() -> CLIPTokenizer:
    """A valid CLIP BPE tokenizer with the first `MINI_MERGES` merges only (small enough to commit)."""
    merges = CLIPTokenizer.from_bpe_file().merges[:MINI_MERGES]
    symbols = list(byte_to_unicode().values())
    symbols += [s + "</w>" for s in symbols]
    symbols += ["".join(pair) for pair in merges] + [BOS, EOS]
    return CLIPTokenizer({s: i for i, s in enumerate(symbols)}, merges)


def scheduler_case(name: str, steps: int, rng: np.random.Generator, prediction_type: str = "epsilon", **options) -> dict:
    sched = make_scheduler(name, SchedulerConfig(prediction_type=prediction_type), **options)
    sched.set_timesteps(steps)
    shape = (1, 2, 2, 3, 3)
    sample = (rng.standard_normal(shape) * sched.init_noise_sigma).astype(F32)
    first = {"sample": tensor(sample), "steps": []}
    for t in sched.timesteps[:2]:
        eps = rng.standard_normal(shape).astype(F32)
        noise = rng.standard_normal(shape).astype(F32)
        scaled = sched.scale_model_input(sample, t)
        sample = sched.step(eps, t, sample, noise=noise).astype(F32)
        first["steps"].append(
            {"t": float(t), "model_output": tensor(eps), "noise": tensor(noise), "scaled": tensor(scaled), "out": tensor(sample)}
        )
    x, noise = rng.standard_normal(shape).astype(F32), rng.standard_normal(shape).astype(F32)
    t0 = sched.timesteps[0]
    case = {
        "scheduler": name,
        "options": options,
        "prediction_type": prediction_type,
        "num_inference_steps": steps,
        "timesteps": [float(t) for t in sched.timesteps],
        "init_noise_sigma": float(F32(sched.init_noise_sigma)),
        "add_noise": {"t": float(t0), "x": tensor(x), "noise": tensor(noise), "out": tensor(sched.add_noise(x, noise, t0))},
        **first,
    }
    if name == "euler":
        case["sigmas"] = floats(sched.sigmas)
    return case


def scheduler_vectors() -> dict:
    rng = rng_for("schedulers")
    ac = make_scheduler("ddim").alphas_cumprod
    probe = [0, 1, 2, 10, 100, 499, 500, 998, 999]
    cases = [
        scheduler_case("ddim", 10, rng),
        scheduler_case("ddim", 25, rng),
        scheduler_case("ddim", 7, rng, timestep_spacing="linspace"),
        scheduler_case("ddim", 6, rng, timestep_spacing="trailing"),
        scheduler_case("euler", 10, rng),
        scheduler_case("euler", 25, rng),
        scheduler_case("euler", 8, rng, timestep_spacing="leading"),
        scheduler_case("lcm", 4, rng),
        scheduler_case("lcm", 7, rng),
        # last: the cases before keep their draws
        *(scheduler_case(name, steps, rng, prediction_type="v_prediction") for name, steps in (("ddim", 10), ("euler", 10), ("lcm", 4))),
    ]
    scaled_ac = make_scheduler("ddim", SchedulerConfig(beta_schedule="scaled_linear")).alphas_cumprod
    return {
        "alphas_cumprod": {"index": probe, "linear": floats(ac[probe]), "scaled_linear": floats(scaled_ac[probe])},
        "cases": cases,
    }


def fsp_case(rng: np.random.Generator, shape: tuple[int, ...], frames: int, cfg: FSPConfig, steps: int) -> dict:
    b, c, h, w = shape
    latent = rng.standard_normal(shape).astype(F32)
    mask = rfsp.sample_mask((b, c, frames, h, w), cfg.mask_p, rng)
    noise = rng.standard_normal((b, c, frames, h, w)).astype(F32)
    sched = make_scheduler("ddim")
    sched.set_timesteps(steps)
    t = sched.timesteps[0]
    out = rfsp.frame_similarity_prior(latent, frames, sched, t, cfg, mask=mask, noise=noise)
    return {
        "kernel_size": cfg.blur_kernel,
        "sigma": cfg.blur_sigma,
        "kernel": floats(gaussian_kernel1d(cfg.blur_kernel, cfg.blur_sigma)),
        "num_frames": frames,
        "scheduler_steps": steps,
        "timestep": int(t),
        "latent": tensor(latent),
        "blurred": tensor(rfsp.gaussian_blur(latent, cfg.blur_kernel, cfg.blur_sigma)),
        "mask": tensor(mask),
        "noise": tensor(noise),
        "out": tensor(out),
    }


def fsp_vectors() -> dict:
    rng = rng_for("fsp")
    return {
        "cases": [
            fsp_case(rng, (1, 2, 8, 8), 3, FSPConfig(), 10),
            fsp_case(rng, (1, 1, 6, 7), 2, FSPConfig(blur_kernel=5, blur_sigma=1.5, mask_p=0.3), 25),
        ]
    }


def guidance_vectors() -> dict:
    rng = rng_for("guidance")
    pred = rng.standard_normal((2, 2, 3, 2, 2)).astype(F32)
    uncond, cond = pred[:1], pred[1:]  # (2, C, F, h, w) -> 2 x (1, C, F, h, w)
    cases = [{"scale": g, "out": tensor(uncond + g * (cond - uncond))} for g in (7.5, 1.0, 0.0, 3.3)]
    return {"noise_pred": tensor(pred), "cases": cases}


def colour_vectors() -> dict:
    rng = rng_for("colour")
    base = rng.integers(0, 256, size=(6, 5, 3))
    tint = np.array([[0, 0, 0], [40, -10, -30], [-25, 30, 10]])
    frames = np.clip(base[None] + tint[:, None, None, :] + rng.integers(-12, 13, size=(3, 6, 5, 3)), 0, 255)
    frames = frames.astype(np.uint8)  # (F, H, W, 3)
    reference = rng.integers(0, 256, size=(4, 3, 3)).astype(np.uint8)
    return {
        "frames": uint8_image(frames),
        "lab": tensor(colour.rgb_to_lab(frames[1])),
        "lab_to_rgb": uint8_image(colour.lab_to_rgb(colour.rgb_to_lab(frames[2]))),
        "matched_ab": uint8_image(colour.colour_match(frames)),
        "matched_lab": uint8_image(colour.colour_match(frames, channels=("L", "a", "b"))),
        "reference": uint8_image(reference),
        "matched_to_reference": uint8_image(colour.colour_match(frames, reference=reference)),
    }


EMBEDDING_TIMESTEPS = [0.0, 1.0, 251.0, 501.0, 751.0, 999.0, 980.5, 3.25]


def embedding_vectors() -> dict:
    """The embedding as numpy computes it: the tiny preset's (what `--npu mediatek` bundles carry) and one
    with every option off its default (sin first, an odd dim padded, a frequency shift, scale, period)."""
    embeddings = [timestep_embedding(get_preset("tiny")), SinusoidalEmbedding(7, False, 1.0, 2.5, 500)]
    cases = [{"embedding": emb.to_dict(), "timesteps": floats(EMBEDDING_TIMESTEPS), "out": tensor(emb(EMBEDDING_TIMESTEPS))}
             for emb in embeddings]
    return {"cases": cases, "unet_io": stage_specs(pipeline_preset(), npu="mediatek")["unet"].to_dict()}


# ----------------------------------------------------------------------------- pipeline over stand-in stages


def pipeline_preset():
    """The tiny preset cut to 3 frames of 32x32 (4x4 latents), FSP kernel 5, 4 steps."""
    return get_preset("tiny").with_overrides(
        num_frames=3,
        height=32,
        width=32,
        fsp=FSPConfig(blur_kernel=5),
        sampling=SamplingConfig(num_inference_steps=4),
    )


def stand_in_stages() -> dict:
    """Deterministic float32 stand-ins for the four stages; the Java tests implement the same formulas.

    text_encoder: `(ids % 97) / 97 * (j + 1) / D`; vae_encoder: every 8th pixel of channel `c % 3`
    times `0.5 + 0.125 c`; unet: `0.25 x + 0.001 t + states[b, 1, c]`; vae_decoder: nearest x8
    upsampling of channels 0..2, times 0.5.
    """

    def text_encoder(ids):
        d = pipeline_preset().text_encoder.hidden_size
        v = (ids % 97).astype(F32) / F32(97)  # (1, 77)
        scale = (np.arange(d, dtype=F32) + F32(1)) / F32(d)  # (D,)
        return v[:, :, None] * scale[None, None, :]  # (1, 77, D)

    def vae_encoder(image):
        factors = (F32(0.5) + F32(0.125) * np.arange(4, dtype=F32))[None, :, None, None]
        return image[:, [0, 1, 2, 0], ::8, ::8] * factors  # (1, 3, H, W) -> (1, 4, h, w)

    def unet(sample, timestep, states):
        per_channel = states[:, 1, :4][:, :, None, None, None]  # (2, 77, D) -> (2, 4, 1, 1, 1)
        return sample * F32(0.25) + timestep[0] * F32(0.001) + per_channel

    def vae_decoder(latent):
        return np.repeat(np.repeat(latent[:, :3], 8, axis=2), 8, axis=3) * F32(0.5)  # (1, 3, h, w) -> (1, 3, H, W)

    return {"text_encoder": text_encoder, "vae_encoder": vae_encoder, "unet": unet, "vae_decoder": vae_decoder}


def pipeline_vectors(tok: CLIPTokenizer) -> dict:
    cfg = pipeline_preset()
    specs = {k: v for k, v in stage_specs(cfg).items()}
    pipe = RuntimePipeline(specs, CallableRunner(specs, stand_in_stages()), tok, cfg)
    rng = rng_for("pipeline")
    image = rng.integers(0, 256, size=(cfg.height, cfg.width, 3)).astype(np.uint8)
    shape = (1, 4, cfg.num_frames, cfg.latent_height, cfg.latent_width)
    noise = rng.standard_normal(shape).astype(F32)
    mask = rfsp.sample_mask(shape, cfg.fsp.mask_p, rng)
    runs = []
    for options in PIPELINE_RUNS:
        fsp = dataclasses.replace(cfg.fsp, enabled=options["fsp_enabled"], strength=options["fsp_strength"])
        out = pipe(image, PIPELINE_PROMPT, options["negative_prompt"], num_inference_steps=options["steps"], guidance_scale=options["guidance"],
                   scheduler=options["scheduler"], fsp=fsp, color_match=options["color_match"], noise=noise, mask=mask,
                   progress=False)
        runs.append({**options, "timesteps": [float(t) for t in out.timesteps], "latents": tensor(out.latents),
                     "frames": uint8_image(out.frames)})
    ids = [tok.encode(t).tolist() for t in ("", PIPELINE_PROMPT)]
    return {"prompt": PIPELINE_PROMPT, "negative_prompt": "", "prompt_ids": ids, "image": uint8_image(image),
            "noise": tensor(noise), "mask": tensor(mask), "runs": runs}


def write_bundle(directory: Path, tok: CLIPTokenizer) -> None:
    """A small bundle of the pipeline preset: stand-in stage files (hash checks only), mini tokenizer."""
    cfg = pipeline_preset()
    stages = {}
    for name, spec in stage_specs(cfg).items():
        file = f"{name}.tflite"
        (directory / file).write_bytes(f"stand-in for {file}: the Java core tests check its sha256 only\n".encode())
        stages[name] = StageRecord(spec, {"tflite": TargetRecord([file], Parity(200.0, 0.0), Usage())})
    tok.save_pretrained_files(directory / "tokenizer")
    manifest = build_manifest(
        directory,
        cfg=cfg,
        targets=["tflite"],
        stages=stages,
        weights={"source": "stand-in", "seed": cfg.seed, "checkpoints": {}},
        graph_options={"attention": cfg.attention.value, "tflite_signature": "serving_default"},
        tokenizer_dir="tokenizer",
        parity_seed=0,
    )
    write_manifest(directory, manifest)


# ----------------------------------------------------------------------------- writing and checking


def write_all(directory: Path) -> list[Path]:
    """Write every golden file into the existing empty `directory`; return their paths."""
    tok = mini_tokenizer()
    sets = {
        "tokenizer.json": tokenizer_vectors(),
        "schedulers.json": scheduler_vectors(),
        "fsp.json": fsp_vectors(),
        "guidance.json": guidance_vectors(),
        "colour.json": colour_vectors(),
        "pipeline.json": pipeline_vectors(tok),
        "timestep_embedding.json": embedding_vectors(),
    }
    for name, data in sets.items():
        (directory / name).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    (directory / "bundle").mkdir()
    write_bundle(directory / "bundle", tok)
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _close(a, b, path: str, problems: list[str]) -> None:
    """Compare two JSON trees: equal structure, equal ints and strings, floats within 1e-6 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            problems.append(f"{path}: keys {sorted(a)} != {sorted(b)}")
            return
        for k in a:
            _close(a[k], b[k], f"{path}.{k}", problems)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            problems.append(f"{path}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]", problems)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or abs(a - b) > 1e-6 * max(1.0, abs(b)):
            problems.append(f"{path}: {a!r} != {b!r}")
    elif a != b:
        problems.append(f"{path}: {str(a)[:60]!r} != {str(b)[:60]!r}")


def compare_dirs(fresh: Path, committed: Path) -> list[str]:
    """Differences between a fresh golden directory and the committed one (empty if up to date).

    JSON files are compared by value (floats to 1e-6 relative, so another machine's last-bit
    differences do not count as stale); the manifest's `created_by` and other files byte for byte.
    """
    names = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())  # noqa: E731
    problems = []
    if names(fresh) != names(committed):
        return [f"files differ: fresh {names(fresh)}, committed {names(committed)}"]
    for rel in names(fresh):
        a, b = fresh / rel, committed / rel
        if rel.endswith(".json"):
            before = len(problems)
            _close(json.loads(a.read_text(encoding="utf-8")), json.loads(b.read_text(encoding="utf-8")), rel, problems)
            del problems[before + 5 :]
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{rel}: bytes differ")
    return problems


GOLDEN_OUTPUT = OutputKind("golden vector folder", "tokenizer.json")  # what --overwrite may replace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--check", action="store_true", help="compare fresh vectors with --out; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        if not args.out.is_dir():
            print(f"error: expected committed golden vectors in {args.out}, found nothing", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "golden"
            fresh.mkdir()
            write_all(fresh)
            problems = compare_dirs(fresh, args.out)
        if problems:
            print(f"stale golden vectors in {args.out}; refresh with --overwrite:", file=sys.stderr)
            print("\n".join(f"  {p}" for p in problems[:20]), file=sys.stderr)
            return 1
        print(f"golden vectors in {args.out} are up to date")
        return 0
    try:
        with atomic_output_dir(args.out, overwrite=args.overwrite, kind=GOLDEN_OUTPUT) as tmp:
            count = len(write_all(tmp))
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {count} files, {size / 1024:.1f} KiB, to {args.out}")
    return 0


if __name__ == "__main__":
    cli.entry(main, loggers=("android_demo",))
