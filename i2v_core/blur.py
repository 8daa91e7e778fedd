"""The Frame Similarity Prior's Gaussian kernel, torch-free: one definition for the PyTorch model
(`i2v_adapter.model.fsp`) and the numpy runtime (`runtime_py.fsp`)."""

from __future__ import annotations

import numpy as np


def gaussian_kernel1d(kernel_size: int, sigma: float) -> np.ndarray:
    """Normalised `(kernel_size,)` float32 Gaussian weights, built in float64."""
    half = (kernel_size - 1) / 2
    x = np.linspace(-half, half, kernel_size, dtype=np.float64)
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def check_blur_fits(kernel_size: int, height: int, width: int) -> None:
    """Reflect padding needs `kernel_size // 2 < min(height, width)`; raise `ValueError` otherwise."""
    pad = kernel_size // 2
    if pad >= min(height, width):
        raise ValueError(
            f"FSP blur kernel {kernel_size} needs latents larger than {pad} per side for reflect padding, "
            f"got {height}x{width}"
        )
