"""Background music for generated videos (torch-free: numpy and PyAV).

- `load_music`: decode any audio file FFmpeg reads (WAV, MP3, M4A/AAC, FLAC, OGG, ...), resample
  to stereo float at 44.1 or 48 kHz, trim to the video's length and fade out its end. The result is
  a `media.AudioTrack`, which `i2v_core.media.write_video` muxes into the MP4 as AAC.
- `synthesise_track`: a short, deterministic tune (a few plucked notes, numpy) written as a 16-bit
  stereo WAV, so demos and tests need no downloaded music.
"""

from __future__ import annotations

import argparse
import logging
import os
import wave
from pathlib import Path

import numpy as np

from i2v_core import cli, media
from i2v_core.media import AudioTrack

logger = logging.getLogger(__name__)

SAMPLE_RATES = (44100, 48000)
DEFAULT_FADE_S = 0.5
# A C-major arpeggio and back (Hz): C5 E5 G5 C6 G5 E5.
DEFAULT_NOTES = (523.25, 659.25, 783.99, 1046.5, 783.99, 659.25)


class MusicError(ValueError):
    """A music file cannot be used: missing, not decodable as audio, or without an audio stream."""


def _decode(path: Path, sample_rate: int) -> np.ndarray:
    """`(2, N)` float32 of the whole first audio stream, resampled to stereo at `sample_rate`."""
    import av  # deferred: PyAV (FFmpeg) only for MP4 files

    chunks = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MusicError(f"expected an audio stream in {path}, found none")
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate)
            for frame in container.decode(audio=0):
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
    except av.FFmpegError as err:
        raise MusicError(f"could not decode {path} as audio: {err}") from err
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise MusicError(f"expected audio samples in {path}, decoded none")
    return np.concatenate(chunks, axis=1).astype(np.float32)  # n x (2, n_i) -> (2, N)


def fade_out(samples: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """A copy of `(C, N)` samples with a linear fade to silence over the last `seconds`."""
    out = samples.copy()
    n = min(out.shape[1], int(round(seconds * sample_rate)))
    if n > 0:
        out[:, -n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out


def load_music(
    path: str | os.PathLike, duration: float, *, sample_rate: int = 44100, fade: float = DEFAULT_FADE_S
) -> AudioTrack:
    """Decode `path` and fit it to a video of `duration` seconds: stereo, `sample_rate`, trimmed,
    faded out over `min(fade, duration / 4)` seconds. A track shorter than the video is kept whole
    (the video ends in silence), with a note in the log.

    Raises `MusicError` (a `ValueError`) naming the file for anything that cannot be decoded.
    """
    src = Path(path)
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"expected a music sample rate in {SAMPLE_RATES}, got {sample_rate}")
    if duration <= 0:
        raise ValueError(f"expected a video duration > 0 s, got {duration}")
    if not src.is_file():
        raise MusicError(f"music file not found: {src}" if not src.exists() else f"music path is not a file: {src}")
    samples = _decode(src, sample_rate)
    wanted = int(round(duration * sample_rate))
    if samples.shape[1] < wanted:
        logger.info("%s lasts %.2f s, the video %.2f s: the end is silent", src, samples.shape[1] / sample_rate, duration)
    samples = fade_out(samples[:, :wanted], sample_rate, min(fade, duration / 4))
    return AudioTrack(np.clip(samples, -1.0, 1.0), sample_rate)


def synthesise_samples(
    seconds: float, sample_rate: int = 44100, notes: tuple[float, ...] = DEFAULT_NOTES, volume: float = 0.4
) -> np.ndarray:
    """`(2, N)` float32: `notes` (Hz) played in turn, each a sine with two harmonics and a plucked
    envelope (5 ms attack, exponential decay); slightly wider in the right channel."""
    if seconds <= 0 or not notes:
        raise ValueError(f"expected seconds > 0 and at least one note, got {seconds} s, {len(notes)} notes")
    n = int(round(seconds * sample_rate))
    per_note = max(1, n // len(notes))
    t = np.arange(per_note) / sample_rate
    envelope = np.minimum(1.0, t / 0.005) * np.exp(-3.0 * t / max(t[-1], 1e-3))
    mono = np.zeros(n)
    for i, hz in enumerate(notes):
        tone = sum(np.sin(2 * np.pi * hz * k * t) / k**1.5 for k in (1, 2, 3))
        start = i * per_note
        mono[start : start + per_note] = (tone * envelope)[: n - start]
    mono *= volume / max(1e-9, float(np.abs(mono).max()))
    right = np.roll(mono, int(0.004 * sample_rate)) * 0.9
    return np.stack([mono, right]).astype(np.float32)  # (2, N)


def write_wav(path: str | os.PathLike, track: AudioTrack, *, overwrite: bool = False) -> Path:
    """`track` as a 16-bit PCM WAV, atomically."""
    interleaved = np.round(np.clip(track.samples, -1.0, 1.0).T * 32767).astype("<i2")  # (C, N) -> (N, C)
    with media.atomic_output_path(path, overwrite) as tmp:
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(track.samples.shape[0])
            out.setsampwidth(2)
            out.setframerate(track.sample_rate)
            out.writeframes(interleaved.tobytes())
    return Path(path)


def synthesise_track(
    path: str | os.PathLike, seconds: float = 4.0, *, sample_rate: int = 44100, overwrite: bool = False
) -> Path:
    """Write `synthesise_samples(seconds)` to `path` as a WAV (for demos and tests); return the path."""
    return write_wav(path, AudioTrack(synthesise_samples(seconds, sample_rate), sample_rate), overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime_py.audio --out track.wav [--seconds 4] [--overwrite]`: write the demo track."""
    p = argparse.ArgumentParser(prog="python -m runtime_py.audio", description="Write a short synthesised music track (WAV).")
    p.add_argument("--out", type=Path, required=True, help="WAV file to write")
    p.add_argument("--seconds", type=float, default=4.0, help="length in seconds (default 4)")
    p.add_argument("--sample-rate", type=int, default=44100, choices=SAMPLE_RATES)
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = p.parse_args(argv)

    def command() -> None:
        out = synthesise_track(args.out, args.seconds, sample_rate=args.sample_rate, overwrite=args.overwrite)
        print(f"wrote {out}")

    return cli.run(command)


if __name__ == "__main__":
    cli.entry(main, loggers=("runtime_py",))
