"""Array conversions shared by the PyTorch pipeline and the torch-free runtime (numpy only)."""

from __future__ import annotations

import numpy as np
from PIL import Image

# CLIP image normalisation (OpenAI CLIP, also used by IP-Adapter's CLIPImageProcessor).
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def check_rgb_uint8(image: np.ndarray, height: int | None = None, width: int | None = None) -> None:
    expected = (height or "H", width or "W", 3)
    ok = isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    if ok and height is not None:
        ok = image.shape[:2] == (height, width)
    if not ok:
        found = f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image).__name__)}"
        raise ValueError(f"expected an RGB image array of shape {expected} uint8, got {found}")


def image_to_unit_range(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(1, 3, H, W)` float32 in [-1, 1] (the `vae_encoder` input)."""
    check_rgb_uint8(image)
    x = image.astype(np.float32) / 127.5 - 1.0
    return x.transpose(2, 0, 1)[None]  # (H, W, 3) -> (1, 3, H, W)


def unit_range_to_uint8(images: np.ndarray) -> np.ndarray:
    """`(N, 3, H, W)` float in about [-1, 1] -> `(N, H, W, 3)` uint8 (the `vae_decoder` output)."""
    x = np.clip(images.astype(np.float32) / 2.0 + 0.5, 0.0, 1.0)
    return np.round(x * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)  # (N, 3, H, W) -> (N, H, W, 3)


def clip_pixel_values(image: np.ndarray, size: int) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(1, 3, size, size)` float32, CLIP-normalised (`image_encoder` input).

    Centre-crop to a square, then bilinear resize (Pillow), as CLIP's processor does.
    """
    check_rgb_uint8(image)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(image[top : top + side, left : left + side])
    resized = np.asarray(square.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    x = (resized - CLIP_MEAN) / CLIP_STD
    return x.transpose(2, 0, 1)[None].astype(np.float32)  # (S, S, 3) -> (1, 3, S, S)
