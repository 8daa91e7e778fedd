"""Frame Similarity Prior in numpy (paper eq. 7), the twin of `i2v_adapter.model.fsp`.

    x_t0^i ~ N(alpha_t0 * D(x_0^1), sigma_t0^2 I),   D(x) = M_p * x + (1 - M_p) * GaussianBlur(x)

Same kernel (normalised Gaussian, built in float64), same reflect padding, same order of draws
(mask, then noise). The draws come from a numpy `Generator`, whose stream differs from torch's: to
compare with PyTorch on identical randomness, pass `noise` and `mask` in.
"""

from __future__ import annotations

import numpy as np

from i2v_core.blur import check_blur_fits, gaussian_kernel1d
from i2v_core.config import FSPConfig


def gaussian_blur(x: np.ndarray, kernel_size: int, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes of `(..., H, W)`, reflect padding; same shape and dtype.

    The sums run in float64, so the result is the float32 kernel applied without float32 rounding.
    """
    pad = kernel_size // 2
    height, width = x.shape[-2:]
    check_blur_fits(kernel_size, height, width)
    k = gaussian_kernel1d(kernel_size, sigma).astype(np.float64)
    lead = [(0, 0)] * (x.ndim - 2)
    padded = np.pad(x.astype(np.float64), [*lead, (pad, pad), (pad, pad)], mode="reflect")  # (..., H+2p, W+2p)
    rows = sum(k[j] * padded[..., :, j : j + width] for j in range(kernel_size))  # along W: (..., H+2p, W)
    out = sum(k[j] * rows[..., j : j + height, :] for j in range(kernel_size))  # along H: (..., H, W)
    return out.astype(x.dtype)


def first_frame_prior(first_latent: np.ndarray, mask: np.ndarray, kernel_size: int, sigma: float) -> np.ndarray:
    """`D(x) = M * x + (1 - M) * blur(x)` of the first-frame latent repeated over the mask's frames.

    `first_latent (B, C, h, w)`, `mask (B, C, F, h, w)` with values in [0, 1] -> `(B, C, F, h, w)`.
    Every frame starts from the same latent, so it is blurred once.
    """
    x = first_latent[:, :, None]  # (B, C, h, w) -> (B, C, 1, h, w), broadcast over F
    blurred = gaussian_blur(first_latent, kernel_size, sigma)[:, :, None]
    return mask * x + (1 - mask) * blurred


def sample_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli(p) keep-mask, float32: 1 keeps the sharp latent, 0 takes the blurred one."""
    return (rng.random(shape) < p).astype(np.float32)


def frame_similarity_prior(
    first_latent: np.ndarray,
    num_frames: int,
    scheduler,
    timestep,
    cfg: FSPConfig,
    *,
    rng: np.random.Generator | None = None,
    noise: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Initial latents `(B, C, F, h, w)` float32 from the clean first-frame latent `(B, C, h, w)`.

    `mask` then `noise` are drawn from `rng` unless passed in; `scheduler.add_noise` takes the prior
    to `timestep`, the first the sampler visits. Frame 0 is noised like the others: the caller puts
    the clean latent back.
    """
    b, c, h, w = first_latent.shape
    shape = (b, c, num_frames, h, w)
    if (mask is None or noise is None) and rng is None:
        raise ValueError("frame_similarity_prior needs `rng` unless both `noise` and `mask` are given")
    if mask is None:
        mask = sample_mask(shape, cfg.mask_p, rng)
    if noise is None:
        noise = rng.standard_normal(shape, dtype=np.float32)
    for name, value in (("mask", mask), ("noise", noise)):
        if value.shape != shape:
            raise ValueError(f"expected FSP {name} of shape {shape}, got {value.shape}")
    prior = first_frame_prior(first_latent.astype(np.float32), mask.astype(np.float32), cfg.blur_kernel, cfg.blur_sigma)
    return scheduler.add_noise(prior, noise, timestep)
