"""Training data (torch-free): procedural clips, a folder of captioned videos, and the index stream.

Both datasets return `(frames, caption)`: `frames (F, H, W, 3)` uint8 RGB, `caption` a str.

- `SyntheticClips`: a seeded generator of short clips of one shape (circle, square, triangle) that
  moves, grows, shrinks, rotates or changes colour over a plain or simply textured background, with a
  caption saying what happens ("a red circle moves to the right on a striped background"). Clip `i`
  is a pure function of `(seed, i)`, so any number of clips is generated on the fly, identically in
  every process.
- `VideoFolderDataset`: a folder of clips (anything `media.read_video` decodes: `.mp4`, `.gif`, ...)
  with `captions.csv` (columns `file,caption`) or `captions.jsonl` (`{"file": ..., "caption": ...}`
  per line). Each clip is sampled to F evenly spaced frames and centre-cropped / resized to the preset
  size. A clip that cannot be decoded, or has fewer than F frames, is skipped: one warning, counted
  in `skipped`, and the next good clip is returned in its place.
- `StepSampler`: the index stream of a training run, a fresh permutation per pass over the data,
  startable at any position so a resumed run sees exactly the clips an uninterrupted one would.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from i2v_core.media import image_to_array, read_video

logger = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 70),
    "blue": (40, 90, 230),
    "yellow": (240, 215, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
    "white": (250, 250, 250),
}
MOTIONS = ("right", "left", "up", "down", "grow", "shrink", "recolour", "rotate")
BACKGROUNDS = ("plain", "striped", "checkered", "gradient")
CAPTION_STYLES = ("full", "motion")
# Where a translating shape starts: "edge" (the clips of the shipped runs) starts it in the part of the
# frame it moves away from, so its place gives the direction away; "centre" starts it anywhere both
# directions of its axis fit, so only the caption tells them apart (and it travels about half as far).
START_STYLES = ("edge", "centre")
_MOVES = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy), y down
_SUPERSAMPLE = 4  # the shape's coverage is drawn at 4x and averaged down: smooth sub-pixel motion


@dataclass(frozen=True)
class ClipSpec:
    """What one synthetic clip shows. Positions and sizes are fractions of `min(H, W)`."""

    shape: str
    colour: str
    motion: str
    background: str
    start: tuple[float, float]  # centre (x, y) at frame 0
    end: tuple[float, float]  # centre (x, y) at the last frame
    size: tuple[float, float]  # radius / half side at frame 0 and at the last frame
    angle: tuple[float, float]  # degrees at frame 0 and at the last frame
    target_colour: str  # == colour unless motion is "recolour"

    @property
    def caption(self) -> str:
        return self.describe("full")

    def describe(self, captions: str = "full") -> str:
        """The caption in one of `CAPTION_STYLES`: "full" names colour, shape, motion and background;
        "motion" only the motion ("moves to the right"), so that captions differ in nothing else."""
        if captions not in CAPTION_STYLES:
            raise ValueError(f"expected captions to be one of {list(CAPTION_STYLES)}, got {captions!r}")
        phrase = {
            "right": "moves to the right",
            "left": "moves to the left",
            "up": "moves up",
            "down": "moves down",
            "grow": "grows",
            "shrink": "shrinks",
            "rotate": "rotates",
            "recolour": f"turns {self.target_colour}",
        }[self.motion]
        if captions == "motion":
            return phrase
        article = "an" if self.colour[0] in "aeiou" else "a"
        return f"{article} {self.colour} {self.shape} {phrase} on a {self.background} background"


class SyntheticClips:
    """`num_clips` procedural clips of `num_frames` frames at `height x width`; deterministic per index.

    `motions`: the motions drawn from (default: all of `MOTIONS`, and then the clips of every
    earlier run); e.g. the four translations for a stage that learns the direction words.
    """

    def __init__(self, num_clips: int, *, num_frames: int, height: int, width: int, seed: int = 0,
                 motions: tuple[str, ...] | list[str] | None = None, captions: str = "full", start: str = "edge"):
        for name, value, low in (
            ("num_clips", num_clips, 1), ("num_frames", num_frames, 2), ("height", height, 8), ("width", width, 8)
        ):
            if int(value) != value or value < low:
                raise ValueError(f"SyntheticClips: expected {name} to be an integer >= {low}, got {value!r}")
        self.num_clips, self.num_frames, self.height, self.width, self.seed = num_clips, num_frames, height, width, seed
        if motions is not None:
            unknown = [m for m in motions if m not in MOTIONS]
            if unknown or not motions:
                raise ValueError(f"SyntheticClips: expected motions among {list(MOTIONS)}, got {list(motions)!r}")
        self.motions = tuple(MOTIONS if motions is None else motions)
        if captions not in CAPTION_STYLES:
            raise ValueError(f"SyntheticClips: expected captions to be one of {list(CAPTION_STYLES)}, got {captions!r}")
        self.captions = captions
        if start not in START_STYLES:
            raise ValueError(f"SyntheticClips: expected start to be one of {list(START_STYLES)}, got {start!r}")
        self.start = start

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> tuple[np.ndarray, str]:
        spec = self.spec(index)
        return self.render(spec, np.random.default_rng([self.seed, index, 1])), spec.describe(self.captions)

    def spec(self, index: int) -> ClipSpec:
        """The description of clip `index` (a pure function of `(seed, index)`)."""
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip index {index} out of range for {self.num_clips} clips")
        rng = np.random.default_rng([self.seed, index, 0])
        shape = str(rng.choice(SHAPES))
        motions = [m for m in self.motions if not (shape == "circle" and m == "rotate")]  # a turning circle looks still
        if not motions:  # only "rotate" asked for: circles would not move, so they turn into squares
            shape, motions = "square", ["rotate"]
        motion = str(rng.choice(motions))
        colour = str(rng.choice(list(COLOURS)))
        target = str(rng.choice([c for c in COLOURS if c != colour])) if motion == "recolour" else colour
        r0 = rng.uniform(0.12, 0.18)
        r1 = {"grow": r0 * 1.6, "shrink": r0 * 0.55}.get(motion, r0)
        if motion == "shrink":
            r0, r1 = r0 * 1.4, r1 * 1.4
        start, end = _trajectory(rng, motion, max(r0, r1) * (1.2 if shape == "circle" else 1.45), self.start)
        a0 = rng.uniform(0, 90)
        turn = {"square": 45.0, "triangle": 60.0}.get(shape, 0.0) if motion == "rotate" else 0.0
        background = str(rng.choice(BACKGROUNDS))
        return ClipSpec(shape, colour, motion, background, start, end, (r0, r1), (a0, a0 + turn), target)

    def render(self, spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
        """`(F, H, W, 3)` uint8 frames of `spec` over a background drawn from `rng`."""
        background = _background(spec.background, self.height, self.width, rng)
        frames = np.empty((self.num_frames, self.height, self.width, 3), dtype=np.uint8)
        c0, c1 = np.array(COLOURS[spec.colour], np.float32), np.array(COLOURS[spec.target_colour], np.float32)
        for k in range(self.num_frames):
            t = k / (self.num_frames - 1)
            centre = tuple(a + t * (b - a) for a, b in zip(spec.start, spec.end))
            size = spec.size[0] + t * (spec.size[1] - spec.size[0])
            angle = spec.angle[0] + t * (spec.angle[1] - spec.angle[0])
            alpha = self._coverage(spec.shape, centre, size, angle)[..., None]  # (H, W) -> (H, W, 1)
            colour = c0 + t * (c1 - c0)
            frames[k] = np.round(background * (1 - alpha) + colour * alpha).astype(np.uint8)
        return frames

    def _coverage(self, shape: str, centre, size: float, angle: float) -> np.ndarray:
        """`(H, W)` float32 in [0, 1]: the fraction of each pixel the shape covers."""
        s, scale = _SUPERSAMPLE, min(self.height, self.width) * _SUPERSAMPLE
        mask = Image.new("L", (self.width * s, self.height * s), 0)
        cx, cy, r = centre[0] * scale, centre[1] * scale, size * scale
        draw = ImageDraw.Draw(mask)
        if shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        else:
            corners, radius, offset = (4, r * math.sqrt(2), 45.0) if shape == "square" else (3, r * 1.25, -90.0)
            points = [
                (cx + radius * math.cos(math.radians(angle + offset + 360.0 * k / corners)),
                 cy + radius * math.sin(math.radians(angle + offset + 360.0 * k / corners)))
                for k in range(corners)
            ]
            draw.polygon(points, fill=255)
        small = mask.resize((self.width, self.height), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0


def _trajectory(rng: np.random.Generator, motion: str, reach: float,
                start: str = "edge") -> tuple[tuple[float, float], tuple[float, float]]:
    """Start and end centres, as fractions of the short side, keeping a shape of radius `reach` inside
    (`start`: one of `START_STYLES`)."""
    low, high = reach, 1.0 - reach
    if motion not in _MOVES:
        centre = (float(rng.uniform(low, high)), float(rng.uniform(low, high)))
        return centre, centre
    dx, dy = _MOVES[motion]
    if start == "centre":  # the same start distribution whichever way it goes
        distance = rng.uniform(0.35, 0.5) * (high - low) / 2
        along = rng.uniform(low + distance, high - distance)  # start coordinate along the motion
    else:
        distance = rng.uniform(0.3, 0.45) * (high - low) / 0.6
        along = rng.uniform(low, high - distance)  # start coordinate along the motion (forward direction)
    across = rng.uniform(low, high)
    forward = dx + dy > 0
    if start == "centre":
        a0, a1 = along, (along + distance if forward else along - distance)
    else:
        a0, a1 = (along, along + distance) if forward else (1.0 - along, 1.0 - along - distance)  # mirrored
    if dx:
        return (float(a0), float(across)), (float(a1), float(across))
    return (float(across), float(a0)), (float(across), float(a1))


def _background(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """`(H, W, 3)` float32 in [0, 255]: muted tones, so the saturated shape colours stand out."""
    base = rng.uniform(50, 170) + rng.uniform(-20, 20, size=3)
    other = np.clip(base + rng.choice([-1, 1]) * rng.uniform(30, 55), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "plain":
        weight = np.zeros((height, width), np.float32)
    elif kind == "gradient":
        weight = (xx / max(width - 1, 1)) if rng.random() < 0.5 else (yy / max(height - 1, 1))
    else:
        period = float(rng.uniform(0.08, 0.2) * min(height, width))
        if kind == "striped":
            direction = [xx, yy, xx + yy][int(rng.integers(3))]
            weight = (np.floor(direction / period) % 2).astype(np.float32)
        elif kind == "checkered":
            weight = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
        else:
            raise ValueError(f"unknown background {kind!r}: expected one of {', '.join(BACKGROUNDS)}")
    weight = weight[..., None]  # (H, W) -> (H, W, 1)
    return (base * (1 - weight) + other * weight).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# A folder of captioned videos
# --------------------------------------------------------------------------------------------------


def read_captions(root: str | os.PathLike) -> list[tuple[Path, str]]:
    """`(clip path, caption)` pairs from `root/captions.csv` or `root/captions.jsonl`.

    Raises `FileNotFoundError` when neither exists and `ValueError` for both, for a missing column
    or field (with the line number), or for an empty list.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"expected a data folder at {root}, found {'a file' if root.exists() else 'nothing'}")
    csv_path, jsonl_path = root / "captions.csv", root / "captions.jsonl"
    if csv_path.exists() and jsonl_path.exists():
        raise ValueError(f"{root} has both captions.csv and captions.jsonl: keep one")
    if csv_path.exists():
        rows = _csv_rows(csv_path)
    elif jsonl_path.exists():
        rows = _jsonl_rows(jsonl_path)
    else:
        raise FileNotFoundError(
            f"expected captions.csv (columns file,caption) or captions.jsonl in {root}, found neither"
        )
    if not rows:
        raise ValueError(f"no clips listed in the captions file of {root}")
    return [(root / file, caption) for file, caption in rows]


def _csv_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"file", "caption"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"{path}: expected columns file,caption, found {reader.fieldnames} (missing {sorted(missing)})"
            )
        return [(row["file"], row["caption"] or "") for row in reader]


def _jsonl_rows(path: Path) -> list[tuple[str, str]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append((str(record["file"]), str(record["caption"])))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ValueError(
                    f"{path}:{number}: expected a JSON object with 'file' and 'caption', "
                    f"got {line.strip()[:80]!r} ({err})"
                ) from None
    return rows


def sample_indices(num_available: int, num_frames: int) -> np.ndarray:
    """`num_frames` evenly spaced frame indices over `[0, num_available)`, first and last included."""
    return np.linspace(0, num_available - 1, num_frames).round().astype(np.int64)


class VideoFolderDataset:
    """Captioned clips from a folder, sampled to `num_frames` frames at `height x width`.

    Bad clips (undecodable, missing, or shorter than `num_frames`) are skipped with one warning each
    and counted in `skipped`; the next good clip (in list order, wrapping) is returned instead, and
    `ValueError` is raised only when every clip is bad. With DataLoader workers each worker counts
    its own skips: read `skipped` with `num_workers=0`.
    """

    def __init__(self, root: str | os.PathLike, *, num_frames: int, height: int, width: int):
        self.root = Path(root)
        self.items = read_captions(self.root)
        self.num_frames, self.height, self.width = num_frames, height, width
        self._bad: set[int] = set()

    @property
    def skipped(self) -> int:
        """How many distinct clips were skipped so far."""
        return len(self._bad)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[np.ndarray, str]:
        n = len(self.items)
        for offset in range(n):
            j = (index + offset) % n
            if j in self._bad:
                continue
            path, caption = self.items[j]
            try:
                return self.load_clip(path), caption
            except (ValueError, OSError, RuntimeError) as err:
                self._bad.add(j)
                logger.warning("skipping clip %s (%d skipped so far): %s", path, self.skipped, err)
        raise ValueError(f"no usable clip in {self.root}: all {n} clips were skipped (see the warnings)")

    def load_clip(self, path: Path) -> np.ndarray:
        """`(F, H, W, 3)` uint8; `ValueError` if the clip has fewer than `num_frames` frames."""
        video = read_video(path)  # (N, h, w, 3)
        if video.shape[0] < self.num_frames:
            raise ValueError(f"expected at least {self.num_frames} frames, found {video.shape[0]}")
        picked = video[sample_indices(video.shape[0], self.num_frames)]
        size = dict(height=self.height, width=self.width, source=str(path))
        return np.stack([image_to_array(Image.fromarray(frame), **size) for frame in picked])  # (F, H, W, 3)


class StepSampler:
    """Dataset indices for positions `start .. start + length - 1` of an endless shuffled stream.

    Position `k` is item `k % n` of pass `k // n`'s permutation (seeded by `(seed, pass)`), so the
    stream does not depend on where a run was interrupted. Usable as a DataLoader `sampler`.
    """

    def __init__(self, num_items: int, *, seed: int, start: int = 0, length: int):
        if num_items < 1 or start < 0 or length < 0:
            raise ValueError(
                f"StepSampler: expected num_items >= 1, start >= 0, length >= 0; got {num_items}, {start}, {length}"
            )
        self.num_items, self.seed, self.start, self.length = num_items, seed, start, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        current, order = -1, None
        for k in range(self.start, self.start + self.length):
            epoch = k // self.num_items
            if epoch != current:
                current, order = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
            yield int(order[k % self.num_items])
