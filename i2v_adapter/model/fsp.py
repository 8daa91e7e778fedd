"""Frame Similarity Prior (paper eq. 7): start later frames from the noisy, blurred first frame.

    x_t0^i ~ N(alpha_t0 * D(x_0^1), sigma_t0^2 I),   D(x) = M_p * x + (1 - M_p) * GaussianBlur(x)

with `M_p ~ Bernoulli(p)` per latent element. Official defaults: p = 0.5, a 9x9 Gaussian with
sigma 18 in latent space (reflect padding, as torchvision's `gaussian_blur`). Frame 0 is then
replaced by the clean latent by the caller, and stays clean at every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2v_core import blur
from i2v_core.config import FSPConfig


def gaussian_kernel1d(kernel_size: int, sigma: float, dtype=torch.float32) -> torch.Tensor:
    """Normalised `(kernel_size,)` Gaussian weights (the runtime's kernel, as a tensor)."""
    return torch.from_numpy(blur.gaussian_kernel1d(kernel_size, sigma)).to(dtype)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `(N, C, H, W)` with reflect padding; same shape out."""
    pad = kernel_size // 2
    blur.check_blur_fits(kernel_size, *x.shape[-2:])
    channels = x.shape[1]
    k = gaussian_kernel1d(kernel_size, sigma, x.dtype).to(x.device)
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(channels, 1, 1, kernel_size), groups=channels)  # along W
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(channels, 1, kernel_size, 1), groups=channels)  # along H


def degrade(x: torch.Tensor, mask: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """`D(x) = M * x + (1 - M) * blur(x)` for `x` of shape `(B, C, F, h, w)`; `mask` same shape, 0/1."""
    b, c, f, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)  # (B, C, F, h, w) -> (B*F, C, h, w)
    blurred = gaussian_blur(frames, kernel_size, sigma)
    blurred = blurred.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)  # (B*F, C, h, w) -> (B, C, F, h, w)
    return mask * x + (1 - mask) * blurred


def sample_mask(shape, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli(p) keep-mask: 1 keeps the sharp latent, 0 takes the blurred one."""
    return (torch.rand(shape, generator=generator) < p).float()


def frame_similarity_prior(
    first_latent: torch.Tensor,
    num_frames: int,
    scheduler,
    timestep,
    cfg: FSPConfig,
    *,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Initial latents `(B, C, F, h, w)` from the clean first-frame latent `(B, C, h, w)`.

    Draws `mask` then `noise` from `generator` unless they are passed in (to compare implementations
    on identical randomness). `timestep` is the first timestep the sampler will visit. Frame 0 of the
    result is noised like the others: callers put the clean latent back.
    """
    b, c, h, w = first_latent.shape
    shape = (b, c, num_frames, h, w)
    x = first_latent.unsqueeze(2).expand(shape)  # (B, C, h, w) -> (B, C, F, h, w)
    if mask is None:
        mask = sample_mask(shape, cfg.mask_p, generator)
    if noise is None:
        noise = torch.randn(shape, generator=generator)
    prior = degrade(x, mask.to(x), cfg.blur_kernel, cfg.blur_sigma)
    t = torch.as_tensor(timestep).reshape(1)
    return scheduler.add_noise(prior, noise.to(x), t)
