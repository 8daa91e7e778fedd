"""Frame Similarity Prior: p = 1 is plain noising, kept fraction ~ p, blur properties, seeding."""

import pytest
import torch

from i2v_adapter.model.components import build_scheduler
from i2v_adapter.model.fsp import degrade, frame_similarity_prior, gaussian_blur, gaussian_kernel1d, sample_mask
from i2v_core.config import FSPConfig


@pytest.fixture
def scheduler(tiny_cfg):
    s = build_scheduler(tiny_cfg)
    s.set_timesteps(25)
    return s


def test_p_one_is_plain_noising(scheduler):
    z0 = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(1, 4, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    t = scheduler.timesteps[0]
    out = frame_similarity_prior(z0, 8, scheduler, t, FSPConfig(mask_p=1.0), noise=noise)
    expected = scheduler.add_noise(z0.unsqueeze(2).expand(1, 4, 8, 16, 16), noise, t.reshape(1))
    assert torch.equal(out, expected)


def test_p_zero_is_blurred_first_frame(scheduler):
    z0 = torch.randn(1, 4, 16, 16)
    noise = torch.zeros(1, 4, 3, 16, 16)
    t = scheduler.timesteps[0]
    out = frame_similarity_prior(z0, 3, scheduler, t, FSPConfig(mask_p=0.0), noise=noise)
    alpha = scheduler.alphas_cumprod[t].sqrt()
    blurred = gaussian_blur(z0, 9, 18.0)
    for f in range(3):
        torch.testing.assert_close(out[:, :, f], alpha * blurred, rtol=1e-5, atol=1e-6)


def test_kept_fraction_is_about_p():
    for p in (0.2, 0.5, 0.9):
        mask = sample_mask((1, 4, 16, 64, 64), p, torch.Generator().manual_seed(3))
        assert abs(mask.mean().item() - p) < 0.01


def test_degrade_mixes_sharp_and_blurred_by_mask():
    x = torch.randn(1, 4, 2, 16, 16)
    mask = sample_mask(x.shape, 0.5, torch.Generator().manual_seed(0))
    out = degrade(x, mask, 9, 18.0)
    keep = mask.bool()
    assert torch.equal(out[keep], x[keep])
    assert not torch.allclose(out[~keep], x[~keep])


def test_same_seed_same_numbers_different_seed_different(scheduler):
    z0 = torch.randn(1, 4, 16, 16)
    t = scheduler.timesteps[0]

    def run(seed):
        return frame_similarity_prior(z0, 8, scheduler, t, FSPConfig(), generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_blur_kernel_and_constant_field():
    k = gaussian_kernel1d(9, 18.0)
    assert k.shape == (9,) and abs(k.sum().item() - 1) < 1e-6 and torch.equal(k, k.flip(0))
    const = torch.full((1, 4, 16, 16), 0.7)
    torch.testing.assert_close(gaussian_blur(const, 9, 18.0), const)


def test_blur_larger_than_latent_is_refused():
    with pytest.raises(ValueError, match="larger than 4 per side"):
        gaussian_blur(torch.zeros(1, 4, 4, 4), 9, 18.0)


@pytest.mark.parametrize(
    "field,value,match",
    [("mask_p", 1.5, "mask_p"), ("blur_kernel", 8, "odd"), ("blur_sigma", 0.0, "blur_sigma"), ("strength", 0.0, "strength")],
)
def test_bad_fsp_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        FSPConfig(**{field: value}).verify()
