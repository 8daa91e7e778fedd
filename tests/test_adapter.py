"""The adapter processor: exactness at initialisation, naive vs fused, install/remove, parameters."""

import pytest
import torch

from i2v_adapter.info import model_info
from i2v_adapter.model.adapter import (
    FirstFrameAttnProcessor,
    adapter_parameters,
    adapter_processors,
    freeze_all_but_adapter,
    i2v_adapter_state_dict,
    install_i2v_adapter,
    remove_i2v_adapter,
    set_attention_variant,
    spatial_self_attentions,
)
from i2v_adapter.model.attention import first_frame_fused
from i2v_adapter.model.components import build_motion_unet
from i2v_core.config import AttentionVariant


def _inputs(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, f = 2, cfg.num_frames
    sample = torch.randn(b, 4, f, cfg.latent_height, cfg.latent_width, generator=g)
    states = torch.randn(b, 77, cfg.unet.cross_attention_dim, generator=g).repeat_interleave(f, 0)
    return sample, torch.tensor([500.0]), states


@pytest.fixture
def base_and_adapted(tiny_cfg):
    base = build_motion_unet(tiny_cfg).eval()
    adapted = build_motion_unet(tiny_cfg).eval()
    install_i2v_adapter(adapted, AttentionVariant.NAIVE)
    return base, adapted


@torch.no_grad()
def test_untrained_adapter_is_exactly_the_t2v_model(tiny_cfg, base_and_adapted):
    base, adapted = base_and_adapted
    x = _inputs(tiny_cfg)
    ref = base(*x).sample
    for variant in AttentionVariant:
        set_attention_variant(adapted, variant)
        assert (adapted(*x).sample - ref).abs().max().item() == 0.0


@torch.no_grad()
def test_nonzero_output_projection_changes_output_and_variants_agree(tiny_cfg, base_and_adapted):
    base, adapted = base_and_adapted
    g = torch.Generator().manual_seed(1)
    for proc in adapter_processors(adapted).values():
        proc.to_out_ff.weight.copy_(torch.randn(proc.to_out_ff.weight.shape, generator=g) * 0.05)
        proc.to_q_ff.weight.add_(torch.randn(proc.to_q_ff.weight.shape, generator=g) * 0.05)
    x = _inputs(tiny_cfg)
    ref = base(*x).sample
    set_attention_variant(adapted, AttentionVariant.NAIVE)
    naive = adapted(*x).sample
    set_attention_variant(adapted, AttentionVariant.FUSED)
    fused = adapted(*x).sample
    assert (naive - ref).abs().max().item() > 1e-3
    assert (naive - fused).abs().max().item() <= 1e-5


@torch.no_grad()
def test_first_frame_branch_reads_frame_zero_only(tiny_cfg, base_and_adapted):
    """Changing frame 0 moves every frame's branch; changing frame 3 leaves the others' branch alone."""
    _, adapted = base_and_adapted
    attn = next(iter(spatial_self_attentions(adapted).values()))
    proc = attn.processor
    x = torch.randn(4, 6, attn.to_q.in_features)  # (B*F, N, C) with B=1, F=4
    _, branch = first_frame_fused(attn, proc.to_q_ff, x, 4)
    y = x.clone()
    y[3] += 1.0
    _, branch_y = first_frame_fused(attn, proc.to_q_ff, y, 4)
    assert torch.equal(branch[:3], branch_y[:3])
    z = x.clone()
    z[0] += 1.0
    _, branch_z = first_frame_fused(attn, proc.to_q_ff, z, 4)
    assert (branch_z[1:] - branch[1:]).abs().max() > 1e-4


def test_layers_and_initialisation(tiny_cfg, base_and_adapted):
    _, adapted = base_and_adapted
    procs = adapter_processors(adapted)
    # tiny: 2 down + 1 mid + 4 up spatial transformer blocks, none in motion modules
    assert len(procs) == 7
    assert all("motion_modules" not in n and n.endswith("attn1") for n in procs)
    for name, proc in procs.items():
        attn = adapted.get_submodule(name)
        assert torch.equal(proc.to_q_ff.weight, attn.to_q.weight)
        assert proc.to_q_ff.bias is None
        assert proc.to_out_ff.weight.abs().max() == 0 and proc.to_out_ff.bias.abs().max() == 0
    assert set(i2v_adapter_state_dict(adapted)) == {
        f"{n}.{k}" for n in procs for k in ("to_q_ff.weight", "to_out_ff.weight", "to_out_ff.bias")
    }


def test_only_adapter_trains(base_and_adapted):
    _, adapted = base_and_adapted
    n = freeze_all_but_adapter(adapted)
    trainable = [p for p in adapted.parameters() if p.requires_grad]
    assert n == sum(p.numel() for p in trainable) == sum(p.numel() for p in adapter_parameters(adapted))


@torch.no_grad()
def test_remove_restores_base_and_reinstall_is_refused(tiny_cfg, base_and_adapted):
    base, adapted = base_and_adapted
    with pytest.raises(ValueError, match="already installed"):
        install_i2v_adapter(adapted)
    remove_i2v_adapter(adapted)
    assert not any(isinstance(a.processor, FirstFrameAttnProcessor) for a in spatial_self_attentions(adapted).values())
    assert not any("to_q_ff" in k for k in adapted.state_dict())
    x = _inputs(tiny_cfg)
    assert torch.equal(adapted(*x).sample, base(*x).sample)
    with pytest.raises(ValueError, match="not installed"):
        remove_i2v_adapter(adapted)


def test_sd15_adapter_parameter_count():
    info = model_info("sd15")
    assert info.adapter_layers == 16
    assert info.adapter_params == 24_793_280
    assert 0.015 < info.adapter_fraction < 0.025


def test_info_cli_prints_count(capsys):
    from i2v_adapter.info import main

    assert main(["--preset", "sd15"]) == 0
    out = capsys.readouterr().out
    assert "24,793,280" in out and "16 layers" in out and "vae_decoder" in out
