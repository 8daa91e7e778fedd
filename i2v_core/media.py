"""Image input, image and video output, and atomic file writes (torch-free).

Only the standard library, numpy, Pillow and PyAV are used, so the torch-free phone reference runtime
shares this module. PyAV is imported lazily: code that never touches MP4 does not need it.

Atomic writes: every writer here puts its bytes in a hidden temporary sibling of the target (same
directory, so the final `os.replace` is a rename on one filesystem) and renames it into place only
when writing succeeded. An interrupted or failed write leaves nothing at the target and removes its
temporary file. An existing target is refused with `FileExistsError` unless `overwrite=True`.
`atomic_output_path`, `atomic_write_bytes` and `atomic_output_dir` are the general tools for other
steps (bundle export, reports). An existing folder is replaced only if it is empty or an output of
the step's own kind (`i2v_core.outputs.OutputKind`): a folder the project did not write is never
deleted.

A process killed outright (SIGKILL, power loss) cannot remove its temporary folder
(`.NAME.1a2b3c4d.tmp`). The next `atomic_output_dir` into the same parent removes such folders once
they are an hour old and no running writer holds them (each writer holds a lock on its own folder);
where it cannot tell or cannot remove one, it names it in a warning. Only names of exactly that
pattern are touched. Before its final rename, every writer checks for an interrupt a library may
have swallowed (`i2v_core.cli.check_interrupted`), and a user-fixable `OSError` (full disk,
read-only, permissions) names the output path rather than the temporary one.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from i2v_core.cli import check_interrupted
from i2v_core.errors import is_user_os_error
from i2v_core.outputs import OutputKind, check_replaceable
from i2v_core.preprocess import check_rgb_uint8

logger = logging.getLogger(__name__)

# Modes converted to RGB. Alpha (RGBA, LA, PA, and P with a transparency entry) is composited over
# white. High bit-depth grey ("I;16", "I") and float ("F") are refused: scaling them to 8 bits needs
# a choice of range that belongs to the caller.
ACCEPTED_IMAGE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "1", "CMYK")
VIDEO_SUFFIXES = (".mp4", ".gif")


class ImageInputError(ValueError):
    """An input image cannot be used: not a file, undecodable, or an unsupported pixel mode."""


class ImageNotFoundError(ImageInputError, FileNotFoundError):
    """The input image path does not exist (catchable as `ValueError` or `FileNotFoundError`)."""


# --------------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------------


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if target.exists() and not overwrite:
        raise FileExistsError(f"output already exists: {target} (pass --overwrite to replace it)")


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False, kind: OutputKind | None = None) -> None:
    """Refuse, before any work, an output folder that a step would not be allowed to write: one
    that exists (unless `overwrite`, and then only an empty folder or an output of `kind`), or a
    path that is a file."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"expected an output folder at {target}, found a file")
    _refuse_existing(target, overwrite)
    if target.exists():
        check_replaceable(target, kind)


def _fsync_file(path: Path) -> None:
    """Flush a file's data to disk so the rename cannot land before its contents after a crash."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_output_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; rename it onto `path` when the block succeeds.

    The temporary file already exists (empty) and keeps the target's suffix at the end of its name
    (`.video.mp4.1a2b3c4d.tmp.mp4`), so tools that pick a format from the suffix still work. Missing
    parent directories are created. If the block raises, the temporary file is removed and the
    target is untouched.

    `overwrite`: replace an existing file at `path`; otherwise `FileExistsError`, checked both
    before the block runs (fail fast) and again just before the rename.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    if target.is_dir():
        raise IsADirectoryError(f"expected a file path to write, found a directory: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
    # O_EXCL reserves the name; mode 0o666 lets the umask decide the final permissions.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        _fsync_file(tmp)
        _refuse_existing(target, overwrite)
        check_interrupted()
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        _raise_naming_output(err, tmp, target)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write `data` to `path` atomically (see `atomic_output_path`); return the path."""
    with atomic_output_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False, *, kind: OutputKind | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory next to `path`; move it to `path` when the block succeeds.

    Use it for directory-to-directory steps (a bundle, a generation folder): fill the yielded
    directory, and readers never see a half-written `path`. With `overwrite=True` an existing
    directory at `path` is moved aside, replaced, then deleted (two renames: for an instant `path`
    is absent, but never half-written); if the swap fails the old directory is put back. Only an
    empty directory or an output of `kind` (the step's own, e.g. a bundle) is replaced: anything
    else is refused with `FileExistsError` naming what it holds, before the block runs and again
    before the swap. An existing non-directory at `path` is refused. If the block raises, the
    temporary directory is deleted and `path` is untouched.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    if target.exists():
        check_replaceable(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temp_dirs(target.parent)
    token = secrets.token_hex(4)
    tmp = target.with_name(f".{target.name}.{token}.tmp")
    tmp.mkdir()
    lock = _hold(tmp)
    try:
        yield tmp
        for file in (p for p in tmp.rglob("*") if p.is_file() and not p.is_symlink()):
            _fsync_file(file)
        _refuse_existing(target, overwrite)
        if target.exists():
            check_replaceable(target, kind)
        check_interrupted()
        _swap_dir_into_place(tmp, target, target.with_name(f".{target.name}.{token}.old"))
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_naming_output(err, tmp, target)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _swap_dir_into_place(tmp: Path, target: Path, old: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _raise_naming_output(err: BaseException, tmp: Path, target: Path) -> None:
    """Re-raise a user-fixable `OSError` about the temporary path (or about no path, as a failed
    `write` reports a full disk) as the same error about the output path; others are left alone."""
    if not is_user_os_error(err):
        return
    filename = err.filename
    if filename is None:
        named = target
    else:
        try:
            named = target / Path(os.fsdecode(filename)).relative_to(tmp)
        except (TypeError, ValueError):
            return  # about another path (an input): already named
    raise OSError(err.errno, err.strerror, str(named)) from err


# `atomic_output_dir`'s temporary folders, exactly: `.NAME.<8 hex digits>.tmp`.
TEMP_DIR_PATTERN = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
STALE_AFTER_SECONDS = 3600.0


def _lock(fd: int, blocking: bool) -> bool | None:
    """flock `fd`: True when held, False when another process holds it, None when this platform or
    file system cannot lock."""
    try:
        import fcntl  # deferred: POSIX only
    except ImportError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _hold(folder: Path) -> int | None:
    """Lock `folder` for as long as the returned descriptor is open (None: cannot lock here), so a
    sweep in another process leaves a live temporary folder alone."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    if _lock(fd, blocking=False):
        return fd
    os.close(fd)
    return None


def sweep_stale_temp_dirs(parent: str | os.PathLike, *, max_age: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Remove `atomic_output_dir` temporary folders in `parent` (`TEMP_DIR_PATTERN`, real folders,
    not symlinks) unchanged for `max_age` seconds and held by no running writer; return them.
    One that may be in use (no locks here) or cannot be removed is named in a warning instead.
    Nothing else in `parent` is touched."""
    removed, kept = [], []
    now = time.time()
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not TEMP_DIR_PATTERN.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < max_age:
                continue
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile
        try:
            held = _lock(fd, blocking=False)
            if held:
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
            elif held is None:
                kept.append(entry.path)
        except OSError as err:
            kept.append(f"{entry.path} ({err.strerror})")
        finally:
            os.close(fd)
    if removed:
        logger.info("removed %d stale temporary folders of interrupted runs: %s", len(removed), ", ".join(map(str, removed)))
    if kept:
        logger.warning(
            "stale temporary folders of interrupted runs, over %.0f min old (remove them if no run is writing "
            "there): %s", max_age / 60, ", ".join(kept),
        )
    return removed


# --------------------------------------------------------------------------------------------------
# Image input
# --------------------------------------------------------------------------------------------------


def _check_target_size(height: int, width: int) -> None:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"expected {name} to be a positive integer, got {value!r}")


def load_image(path: str | os.PathLike, *, height: int, width: int) -> np.ndarray:
    """Read an image file as the model's first frame: `(height, width, 3)` uint8 RGB.

    EXIF orientation is applied, alpha is composited over white, then the image is centre-cropped to
    the `width / height` aspect ratio and resized with Lanczos (see `image_to_array`). For animated
    files the first frame is used.

    Raises `ImageNotFoundError` for a missing path and `ImageInputError` for a path that is not a
    file, cannot be decoded, or has an unsupported mode (both are `ValueError`s).
    """
    _check_target_size(height, width)
    src = Path(path)
    if not src.exists():
        raise ImageNotFoundError(f"input image not found: {src}")
    if not src.is_file():
        raise ImageInputError(f"input image is not a file: {src}")
    try:
        with Image.open(src) as img:
            img.load()
            if getattr(img, "n_frames", 1) > 1:
                logger.info("%s has %d frames; using the first", src, img.n_frames)
            return image_to_array(img, height=height, width=width, source=str(src))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageInputError(f"could not decode {src} as an image: {err}") from err


def image_to_array(
    image: Image.Image, *, height: int, width: int, source: str = "the in-memory image"
) -> np.ndarray:
    """A PIL image -> `(height, width, 3)` uint8 RGB, fitted by centre crop and Lanczos resize.

    The largest centred region with the target aspect ratio is kept (the longer side is trimmed
    equally on both ends), then resized to `(width, height)`. Images smaller than the target are
    upscaled, with a warning. `source` names the image in messages.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    _check_target_size(height, width)
    rgb = _to_rgb(ImageOps.exif_transpose(image), source)
    return _fit(rgb, height, width, source)


def _to_rgb(image: Image.Image, source: str) -> Image.Image:
    """Any accepted mode -> mode "RGB", alpha composited over white."""
    mode = image.mode
    if mode not in ACCEPTED_IMAGE_MODES:
        raise ImageInputError(
            f"unsupported image mode {mode!r} in {source}: expected one of {', '.join(ACCEPTED_IMAGE_MODES)}"
        )
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    # Converting a palette image straight to RGB would drop its transparency entry; go through RGBA.
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _fit(image: Image.Image, height: int, width: int, source: str) -> np.ndarray:
    """Centre-crop `image` to the target aspect ratio, then Lanczos-resize to `(width, height)`.

    The crop happens first so that the discarded margins cannot bleed into the edge pixels through
    the filter's support.
    """
    w, h = image.size
    if w * height > width * h:  # wider than the target: trim left and right
        crop_w, crop_h = max(1, round(h * width / height)), h
    else:  # taller (or equal): trim top and bottom
        crop_w, crop_h = w, max(1, round(w * height / width))
    left, top = (w - crop_w) // 2, (h - crop_h) // 2
    if crop_w < width or crop_h < height:
        logger.warning(
            "%s is %dx%d; upscaling its %dx%d centre crop to %dx%d (expect a soft image)",
            source, w, h, crop_w, crop_h, width, height,
        )
    cropped = image.crop((left, top, left + crop_w, top + crop_h))
    resized = cropped.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def write_image(image: np.ndarray, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write an `(H, W, 3)` uint8 RGB array atomically; the format follows the suffix (`.png`, ...)."""
    check_rgb_uint8(image)
    target = Path(path)
    fmt = Image.registered_extensions().get(target.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"unsupported image suffix {target.suffix!r} in {target}: expected e.g. .png, .jpg, .webp")
    with atomic_output_path(target, overwrite) as tmp:
        Image.fromarray(image).save(tmp, format=fmt)
    return target


# --------------------------------------------------------------------------------------------------
# Video output and input
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioTrack:
    """`samples (C, N)` float32 in [-1, 1] (C 1 or 2 channels) at `sample_rate` Hz, to mux into an MP4."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self):
        s = self.samples
        if not (isinstance(s, np.ndarray) and s.dtype == np.float32 and s.ndim == 2 and s.shape[0] in (1, 2)):
            found = f"{s.shape} {s.dtype}" if isinstance(s, np.ndarray) else type(s).__name__
            raise ValueError(f"expected audio samples of shape (1 or 2, N) float32, got {found}")
        if self.sample_rate <= 0:
            raise ValueError(f"expected an audio sample rate > 0, got {self.sample_rate}")


def check_frames(frames: np.ndarray) -> None:
    """Raise `ValueError` unless `frames` is a non-empty `(F, H, W, 3)` uint8 array."""
    is_array = isinstance(frames, np.ndarray)
    if not (is_array and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3):
        found = f"{frames.shape} {frames.dtype}" if is_array else type(frames).__name__
        raise ValueError(f"expected frames of shape (F, H, W, 3) uint8, got {found}")
    if min(frames.shape) == 0:
        raise ValueError(f"expected at least one frame of at least 1x1 pixels, got shape {frames.shape}")


def _video_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        supported = ", ".join(VIDEO_SUFFIXES)
        raise ValueError(f"unsupported video suffix {path.suffix!r} in {path}: expected one of {supported}")
    return suffix[1:]


def write_video(
    frames: np.ndarray,
    path: str | os.PathLike,
    *,
    fps: int = 8,
    overwrite: bool = False,
    crf: int = 18,
    audio: AudioTrack | None = None,
) -> Path:
    """Write `(F, H, W, 3)` uint8 RGB frames as `.mp4` (H.264) or `.gif`, atomically; return the path.

    `audio` (MP4 only): a soundtrack muxed as AAC beside the video, as given (trim it to the video's
    length first, e.g. with `runtime_py.audio.load_music`).

    MP4: libx264, yuv420p, constant quality `crf` (0 lossless .. 51 worst; 18 is visually
    near-lossless), `+faststart` so players can start before the download ends. yuv420p needs even
    sizes, so an odd height or width is padded by one row or column repeating the edge pixels:
    the MP4 is then up to one pixel taller or wider than `frames`.

    GIF: exact size, loops forever, one adaptive palette per frame, frame time `round(1000 / fps)`
    ms. GIF writers merge identical consecutive frames into one longer frame, so reading a GIF back
    can give fewer frames than were written (playback timing is unchanged). `crf` is ignored.
    """
    check_frames(frames)
    target = Path(path)
    kind = _video_kind(target)
    if isinstance(fps, bool) or not isinstance(fps, numbers.Integral) or fps <= 0:
        raise ValueError(f"expected fps to be a positive integer, got {fps!r}")
    if isinstance(crf, bool) or not isinstance(crf, numbers.Integral) or not 0 <= crf <= 51:
        raise ValueError(f"expected crf to be an integer in [0, 51], got {crf!r}")
    if audio is not None and kind != "mp4":
        raise ValueError(f"only .mp4 carries audio: expected no audio track for {target}")
    with atomic_output_path(target, overwrite) as tmp:
        if kind == "mp4":
            _write_mp4(frames, tmp, int(fps), int(crf), audio)
        else:
            _write_gif(frames, tmp, int(fps))
    logger.info("wrote %d frames to %s", frames.shape[0], target)
    return target


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """`(F, H, W, 3)` -> `(F, H + H % 2, W + W % 2, 3)`, repeating the last row / column."""
    _, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if not (pad_h or pad_w):
        return frames
    logger.info("padding %dx%d frames to %dx%d: H.264 yuv420p needs even sizes", w, h, w + pad_w, h + pad_h)
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _write_mp4(frames: np.ndarray, path: Path, fps: int, crf: int, audio: AudioTrack | None = None) -> None:
    import av  # deferred: PyAV (FFmpeg) only for MP4 files

    if "libx264" not in av.codecs_available:
        raise RuntimeError("this PyAV build has no libx264 encoder, so it cannot write .mp4; write a .gif instead")
    frames = _pad_to_even(frames)
    _, h, w, _ = frames.shape
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        sound = None if audio is None else _add_aac_stream(container, audio)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))  # flush the encoder's delayed frames
        if sound is not None:
            _encode_audio(container, sound, audio)


def _add_aac_stream(container, audio: AudioTrack):
    layout = "stereo" if audio.samples.shape[0] == 2 else "mono"
    stream = container.add_stream("aac", rate=audio.sample_rate, layout=layout)
    stream.bit_rate = 128_000
    return stream


def _encode_audio(container, stream, audio: AudioTrack) -> None:
    """Encode `audio` in the AAC encoder's frame size (1024 samples), with running pts."""
    import av  # deferred: PyAV (FFmpeg) only for MP4 files

    layout = "stereo" if audio.samples.shape[0] == 2 else "mono"
    size = stream.codec_context.frame_size or 1024
    samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
    for start in range(0, samples.shape[1], size):
        chunk = np.ascontiguousarray(samples[:, start : start + size])  # (C, <= size)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = audio.sample_rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def _write_gif(frames: np.ndarray, path: Path, fps: int) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
    )


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a video file -> `(F, H, W, 3)` uint8 RGB.

    `.gif` is read with Pillow (later frames composited as a viewer shows them); anything else is
    handed to PyAV, so any container FFmpeg demuxes (`.mp4`, `.mov`, `.webm`, ...) works. Raises
    `FileNotFoundError` for a missing file and `ValueError` for an undecodable or empty one.
    """
    src = Path(path)
    if not src.exists():
        raise FileNotFoundError(f"video not found: {src}")
    if not src.is_file():
        raise ValueError(f"video path is not a file: {src}")
    frames = _read_gif(src) if src.suffix.lower() == ".gif" else _read_with_pyav(src)
    if not frames:
        raise ValueError(f"expected at least one video frame in {src}, found none")
    return np.stack(frames)  # F x (H, W, 3) -> (F, H, W, 3)


def _read_gif(src: Path) -> list[np.ndarray]:
    try:
        with Image.open(src) as img:
            return [np.asarray(frame.convert("RGB"), dtype=np.uint8) for frame in ImageSequence.Iterator(img)]
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"could not decode {src} as a GIF: {err}") from err


def _read_with_pyav(src: Path) -> list[np.ndarray]:
    import av  # deferred: PyAV (FFmpeg) only for MP4 files

    try:
        with av.open(str(src)) as container:
            if not container.streams.video:
                raise ValueError(f"expected a video stream in {src}, found none")
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except av.FFmpegError as err:
        raise ValueError(f"could not decode {src} as a video: {err}") from err


def make_test_card(height: int, width: int) -> np.ndarray:
    """`(H, W, 3)` uint8: a red disc left of centre on a blue-to-green gradient."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([0.15 + 0.1 * xx / width, 0.3 + 0.4 * yy / height, 0.8 - 0.4 * yy / height], axis=-1)
    disc = (xx - 0.35 * width) ** 2 + (yy - 0.5 * height) ** 2 < (0.18 * min(height, width)) ** 2
    image[disc] = (0.9, 0.1, 0.1)
    return np.round(image * 255).astype(np.uint8)
