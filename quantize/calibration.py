"""Calibration data recorded from the reference PyTorch pipeline, stored as `calibration/<stage>.npz`.

Static recipes calibrate activation ranges on what the stages really see: `I2VPipeline` is run over
a few images (the built-in test card, then first frames of procedural clips from
`i2v_adapter.training.data.SyntheticClips`) with their prompts, and every stage call's inputs are recorded:
the token ids of prompt and negative prompt, the input images, the UNet's latents, timesteps and text
states at each timestep the sampler visits, and the latents the VAE decoder gets. Each stage keeps at
most `max_per_stage` calls, evenly spread (so the UNet keeps early and late timesteps).

An `.npz` holds one array per stage input, stacked: `(N, *input shape)`.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from i2v_adapter.training.data import SyntheticClips
from i2v_core.media import make_test_card
from i2v_core.stages import StageSpec

logger = logging.getLogger(__name__)

CALIBRATION_DIR = "calibration"
DEFAULT_PROMPTS = ("a red ball rolls to the right",)


@dataclass(frozen=True)
class CalibrationConfig:
    """`images`: videos to record (image 0 the test card, the rest procedural clips' first frames
    with their captions as prompts); `steps`: sampler steps (None: the preset's)."""

    images: int = 2
    steps: int | None = None
    max_per_stage: int = 4
    seed: int = 0
    prompts: tuple[str, ...] = DEFAULT_PROMPTS

    def verify(self) -> None:
        for name in ("images", "max_per_stage"):
            if getattr(self, name) < 1:
                raise ValueError(f"CalibrationConfig.{name}: expected >= 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"CalibrationConfig.steps: expected >= 1 or None, got {self.steps}")


@dataclass
class CalibrationSet:
    """Recorded stage inputs: `{stage: [feeds, ...]}` with feeds keyed by the contract's input names."""

    feeds: dict[str, list[dict[str, np.ndarray]]] = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # what was run, for the manifest

    def count(self, stage: str) -> int:
        return len(self.feeds.get(stage, []))

    def for_stage(self, stage: str) -> list[dict[str, np.ndarray]]:
        return self.feeds.get(stage, [])


def calibration_images(height: int, width: int, count: int, seed: int, prompts=DEFAULT_PROMPTS) -> list[tuple[np.ndarray, str]]:
    """`[(image (H, W, 3) uint8, prompt)]`: the test card with `prompts[0]`, then procedural first frames."""
    items = [(make_test_card(height, width), prompts[0])]
    if count > 1:
        clips = SyntheticClips(count - 1, num_frames=2, height=height, width=width, seed=seed)
        for i in range(count - 1):
            frames, caption = clips[i]
            items.append((frames[0], prompts[i + 1] if i + 1 < len(prompts) else caption))
    return items


def _evenly(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    keep = np.unique(np.linspace(0, len(items) - 1, limit).round().astype(int))
    return [items[i] for i in keep]


def record_calibration(pipe, config: CalibrationConfig = CalibrationConfig(), *, progress: bool = False) -> CalibrationSet:
    """Run `pipe` (an `I2VPipeline`) over the calibration images; return the recorded stage inputs."""
    config.verify()
    calls: dict[str, list[dict[str, np.ndarray]]] = {}
    original = pipe.run_stage

    def recording(name, *inputs):
        spec = pipe.specs[name]
        calls.setdefault(name, []).append({n: t.detach().cpu().numpy().copy() for n, t in zip(spec.input_names, inputs)})
        return original(name, *inputs)

    cfg = pipe.config
    items = calibration_images(cfg.height, cfg.width, config.images, config.seed, config.prompts)
    pipe.run_stage = recording
    try:
        for i, (image, prompt) in enumerate(items):
            pipe(image, prompt, num_inference_steps=config.steps, seed=config.seed + i, progress=progress)
    finally:
        del pipe.run_stage  # back to the class's method
    order = [name for name in pipe.specs if name in calls]  # contract order, not call order
    feeds = {name: _evenly(calls[name], config.max_per_stage) for name in order}
    record = {
        "source": "i2v_adapter.pipeline.I2VPipeline",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "prompts": [p for _, p in items],
        "recorded_calls": {name: len(calls[name]) for name in order},
        "samples": {name: len(kept) for name, kept in feeds.items()},
    }
    return CalibrationSet(feeds, record)


def save_stage(path: Path, spec: StageSpec, feeds: list[dict[str, np.ndarray]]) -> None:
    """`calibration/<stage>.npz`: one stacked `(N, *shape)` array per input (written in one go)."""
    arrays = {name: np.stack([f[name] for f in feeds]) for name in spec.input_names}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def load_stage(path: Path, spec: StageSpec) -> list[dict[str, np.ndarray]]:
    """Read a `calibration/<stage>.npz` back, checking every sample against the stage contract."""
    with np.load(path, allow_pickle=False) as data:
        missing = [n for n in spec.input_names if n not in data.files]
        if missing:
            raise ValueError(f"{path}: expected arrays {spec.input_names} for {spec.name}, missing {missing}")
        arrays = {n: data[n] for n in spec.input_names}
    count = len(next(iter(arrays.values())))
    feeds = [{n: a[i] for n, a in arrays.items()} for i in range(count)]
    for feed in feeds:
        spec.check_inputs(feed)
    return feeds


def save_calibration(bundle: Path, specs: dict[str, StageSpec], calib: CalibrationSet) -> list[str]:
    """Write every recorded stage into `<bundle>/calibration/`; return the relative paths."""
    folder = bundle / CALIBRATION_DIR
    folder.mkdir(exist_ok=True)
    written = []
    for stage, spec in specs.items():  # contract order
        feeds = calib.for_stage(stage)
        if feeds:
            save_stage(folder / f"{stage}.npz", spec, feeds)
            written.append(f"{CALIBRATION_DIR}/{stage}.npz")
    return written


def load_calibration(bundle: Path, specs: dict[str, StageSpec], record: dict | None = None) -> CalibrationSet:
    """The calibration set stored in a bundle (`calibration/<stage>.npz` for the stages present)."""
    feeds = {}
    for stage, spec in specs.items():
        path = bundle / CALIBRATION_DIR / f"{stage}.npz"
        if path.is_file():
            feeds[stage] = load_stage(path, spec)
    if not feeds:
        raise FileNotFoundError(f"no calibration data in {bundle / CALIBRATION_DIR}: expected <stage>.npz files")
    return CalibrationSet(feeds, dict(record or {"source": str(bundle / CALIBRATION_DIR)}))
