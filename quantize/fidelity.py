"""The fp32 PyTorch reference of a bundle, and fidelity figures of quantized stage files against it.

- Per stage: the export's parity inputs (`StageSpec.sample_inputs(seed)`) run through the quantized
  file in its runtime and through the PyTorch stage module: PSNR and max-abs (`i2v_core.parity.measure`),
  and for the UNet the cond - uncond guidance delta correlation and standard deviations.
- End to end: `RuntimePipeline` over the quantized bundle against `I2VPipeline` in fp32, on the same
  image, prompt, initial noise and FSP mask: PSNR of the generated frames (uint8, peak 255).

The reference is rebuilt from the manifest (preset, frames, size, attention, weights source), and
checked against the bundle's own fp32 files before anything is measured with it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.checkpoints.shipped import build_recorded
from i2v_core import parity as parity_lib
from i2v_core.bundle import bundle_path
from i2v_core.config import AttentionVariant
from i2v_core.media import make_test_card
from i2v_core.runners import RUNNERS
from i2v_core.stages import StageSpec
from runtime_py.fsp import sample_mask
from runtime_py.pipeline import RuntimePipeline, preset_from_manifest

logger = logging.getLogger(__name__)

VIDEO_PROMPT = "a red ball rolls to the right"
VIDEO_SEED = 7


class ReferenceMismatchError(RuntimeError):
    """The PyTorch model rebuilt from the manifest does not reproduce the bundle's fp32 files."""


def reference_config(manifest: dict):
    """The bundle's `PresetConfig`: preset, exported frames / size / attention, manifest defaults."""
    cfg = preset_from_manifest(manifest)
    attention = manifest.get("graph_options", {}).get("attention", cfg.attention.value)
    return cfg.with_overrides(attention=AttentionVariant(attention))


def reference_components(manifest: dict):
    """`Components` with the bundle's weights: deterministic (embedded default / random) or the
    checkpoints named in the manifest."""
    cfg = reference_config(manifest)
    weights = manifest.get("weights", {})
    if weights.get("source") != "checkpoints":
        return build_recorded(cfg, weights)

    paths = weights.get("checkpoints", {})
    loras = [Path(p) for k, p in sorted(paths.items()) if k.startswith("lora[")]
    missing = [f"{k}: {p}" for k, p in paths.items() if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"the bundle was exported from checkpoints that are not here: {missing}")
    return load_components(
        cfg, sd15=paths.get("sd15"), motion_module=paths.get("motion_module"), i2v_adapter=paths.get("adapter"),
        loras=loras, lora_scales=weights.get("lora_scales"),
    )


@dataclass
class StageReference:
    """A stage's contract, parity inputs and PyTorch output on them."""

    spec: StageSpec
    feeds: dict[str, np.ndarray]
    output: np.ndarray


def stage_references(modules: dict, specs: dict[str, StageSpec], seed: int) -> dict[str, StageReference]:
    refs = {}
    for name, spec in specs.items():
        feeds = spec.sample_inputs(seed)
        with torch.no_grad():
            out = modules[name](*(torch.from_numpy(v) for v in feeds.values()))
        refs[name] = StageReference(spec, feeds, out.numpy())
    return refs


def measure_file(target: str, path: Path, ref: StageReference, guided_batch_size: int | None) -> parity_lib.Parity:
    """Run `path` in its runtime on the reference's inputs; parity against the PyTorch output."""
    out = RUNNERS[target](path, ref.feeds, ref.spec.output_names)[ref.spec.output_names[0]]
    guided = guided_batch_size if ref.spec.name == "unet" else None
    return parity_lib.measure(out, ref.output, guided_batch_size=guided)


def check_reference(bundle: Path, manifest: dict, refs: dict[str, StageReference], guided_batch_size: int) -> None:
    """The rebuilt PyTorch stages must reproduce the bundle's fp32 files (export's 60 dB gate)."""
    for name, ref in refs.items():
        for target, entry in manifest["stages"][name]["targets"].items():
            path = bundle_path(bundle, manifest, entry["file"], f"stage {name} target {target} file")
            figures = measure_file(target, path, ref, guided_batch_size)
            if figures.psnr_db < parity_lib.FP32_MIN_PSNR_DB:
                raise ReferenceMismatchError(
                    f"the PyTorch {name} rebuilt from {bundle}/manifest.json does not match {entry['file']}: "
                    f"PSNR {figures.psnr_db:.1f} dB < {parity_lib.FP32_MIN_PSNR_DB:g} dB; "
                    "expected an fp32 bundle from export.build with its weights available"
                )


def frame_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 frames (peak 255), capped like the stage figures."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return parity_lib.PSNR_CAP_DB if mse == 0 else min(parity_lib.PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse))


@dataclass
class VideoReference:
    """The fp32 PyTorch video and the draws that made it, for the runtime to repeat."""

    image: np.ndarray
    prompt: str
    noise: np.ndarray
    mask: np.ndarray
    frames: np.ndarray


def video_reference(pipe, seed: int = VIDEO_SEED, prompt: str = VIDEO_PROMPT) -> VideoReference:
    """`I2VPipeline` on the test card with explicit noise and mask drawn from `numpy` (`seed`)."""

    cfg = pipe.config
    shape = (1, cfg.vae.latent_channels, cfg.num_frames, cfg.latent_height, cfg.latent_width)  # (B, 4, F, h, w)
    rng = np.random.default_rng(seed)
    mask = sample_mask(shape, cfg.fsp.mask_p, rng)
    noise = rng.standard_normal(shape).astype(np.float32)
    image = make_test_card(cfg.height, cfg.width)
    out = pipe(image, prompt, noise=torch.from_numpy(noise), mask=torch.from_numpy(mask), progress=False)
    return VideoReference(image, prompt, noise, mask, out.frames)


def video_fidelity(bundle: Path, target: str, ref: VideoReference) -> dict:
    """Generate with `RuntimePipeline` from the bundle on the reference's draws; frame PSNR figures."""
    pipe = RuntimePipeline.from_bundle(bundle, target, verify=False)
    out = pipe(ref.image, ref.prompt, noise=ref.noise, mask=ref.mask, progress=False)
    per_frame = [frame_psnr(a, b) for a, b in zip(out.frames, ref.frames)]
    return {
        "psnr_db_mean": round(float(np.mean(per_frame)), 3),
        "psnr_db_min": round(float(np.min(per_frame)), 3),
        "frames": len(per_frame),
        "seed": VIDEO_SEED,
        "prompt": ref.prompt,
    }
