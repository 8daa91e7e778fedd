"""LAB colour matching of generated frames to the first frame (numpy only, torch-free).

I2V-Adapter's post-process keeps the video's colours on the input image: each frame's CIE LAB `a`
and `b` channels are histogram-matched to those of the reference frame (frame 0, the input image),
while lightness `L` is left alone so motion shading survives. `colour_match` does that; its
`channels` argument can add `L`.

Colour conversions are sRGB (IEC 61966-2-1) with the D65 white point, computed in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from i2v_core.media import check_frames
from i2v_core.preprocess import check_rgb_uint8

logger = logging.getLogger(__name__)

# Linear sRGB -> CIE XYZ (D65), IEC 61966-2-1.
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ)
# The white point as the image of RGB (1, 1, 1): (0.95047, 1.0, 1.08883). Taking it from the matrix
# itself makes pure white land on a = b = 0 exactly.
_WHITE = _SRGB_TO_XYZ.sum(axis=1)
_EPS = 6.0 / 29.0  # CIE LAB: cube root above _EPS**3, linear segment below
LAB_CHANNELS = ("L", "a", "b")


def _check_last_axis(x: np.ndarray, what: str) -> None:
    if x.ndim == 0 or x.shape[-1] != 3:
        raise ValueError(f"expected {what} of shape (..., 3), got {x.shape} {x.dtype}")


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB -> CIE LAB (D65). `(..., 3)` uint8 in [0, 255] or float in [0, 1] -> `(..., 3)` float32.

    L is in [0, 100]; a and b are about [-128, 127] for in-gamut colours.
    """
    rgb = np.asarray(rgb)
    _check_last_axis(rgb, "RGB values")
    if rgb.dtype == np.uint8:
        x = rgb / 255.0
    elif np.issubdtype(rgb.dtype, np.floating):
        x = rgb.astype(np.float64)
    else:
        raise ValueError(f"expected RGB values as uint8 or float, got {rgb.dtype}")
    # Undo the sRGB transfer curve (the clamp keeps the power off negative inputs).
    linear = np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)
    t = (linear @ _SRGB_TO_XYZ.T) / _WHITE  # (..., 3) XYZ relative to white
    f = np.where(t > _EPS**3, np.cbrt(t), t / (3 * _EPS**2) + 4.0 / 29.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lab = np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE LAB (D65) -> sRGB. `(..., 3)` float -> `(..., 3)` uint8; out-of-gamut colours are clipped."""
    lab = np.asarray(lab, dtype=np.float64)
    _check_last_axis(lab, "LAB values")
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    t = np.where(f > _EPS, f**3, 3 * _EPS**2 * (f - 4.0 / 29.0))
    linear = np.clip((t * _WHITE) @ _XYZ_TO_SRGB.T, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(np.clip(srgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _value_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an array (sorted) and the fraction of elements at or below each."""
    distinct, counts = np.unique(values.ravel(), return_counts=True)
    return distinct, np.cumsum(counts) / values.size


def _check_matchable(x: np.ndarray, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"expected a non-empty {name} array, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"expected finite values in {name}, found NaN or infinity")


def match_histogram(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Remap `source`'s values so their distribution follows `reference`'s (one channel).

    Each distinct source value goes to the reference value at the same cumulative fraction, with
    linear interpolation between reference values (exact histogram specification, as
    `skimage.exposure.match_histograms` does per channel). Shapes may differ; the result has
    `source`'s shape, in `source`'s float dtype (float64 for integer input).
    """
    source, reference = np.asarray(source), np.asarray(reference)
    _check_matchable(source, "source")
    _check_matchable(reference, "reference")
    ref_values, ref_cdf = _value_cdf(reference)
    out = _match_to_cdf(source, ref_values, ref_cdf)
    return out.astype(source.dtype) if np.issubdtype(source.dtype, np.floating) else out


def _match_to_cdf(source: np.ndarray, ref_values: np.ndarray, ref_cdf: np.ndarray) -> np.ndarray:
    distinct, inverse, counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    mapped = np.interp(np.cumsum(counts) / source.size, ref_cdf, ref_values)
    return mapped[inverse.ravel()].reshape(source.shape)


def _channel_indices(channels: Iterable[str]) -> list[int]:
    names = list(channels)
    unknown = [c for c in names if c not in LAB_CHANNELS]
    if unknown or not names:
        raise ValueError(f"expected LAB channels from {LAB_CHANNELS} (at least one), got {tuple(names)}")
    return sorted({LAB_CHANNELS.index(c) for c in names})


def colour_match(
    frames: np.ndarray,
    reference: np.ndarray | None = None,
    channels: Iterable[str] = ("a", "b"),
) -> np.ndarray:
    """Histogram-match each frame's LAB `channels` to `reference`. `(F, H, W, 3)` uint8 -> same.

    `reference`: `(H', W', 3)` uint8 RGB (any size); default `frames[0]`. Frames equal to the
    reference, so frame 0 by default, are returned unchanged rather than round-tripped through LAB.
    Unmatched channels keep each frame's own values; colours pushed out of the sRGB gamut are
    clipped. Works frame by frame, so memory stays at a few frames' worth of float64.
    """
    check_frames(frames)
    reference = frames[0] if reference is None else reference
    check_rgb_uint8(reference)
    indices = _channel_indices(channels)
    ref_lab = rgb_to_lab(reference)
    ref_cdfs = {i: _value_cdf(ref_lab[..., i]) for i in indices}

    out = np.empty_like(frames)
    for k, frame in enumerate(frames):
        if frame.shape == reference.shape and np.array_equal(frame, reference):
            out[k] = frame
            continue
        lab = rgb_to_lab(frame)
        for i in indices:
            lab[..., i] = _match_to_cdf(lab[..., i], *ref_cdfs[i])
        out[k] = lab_to_rgb(lab)
    logger.debug("colour-matched %d frames on LAB channels %s", len(frames), [LAB_CHANNELS[i] for i in indices])
    return out
