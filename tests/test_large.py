"""Full-size SD1.5 architecture with random weights (RUN_LARGE_TESTS=1; minutes, ~11 GB RAM)."""

import pytest
import torch

from i2v_adapter.model.adapter import adapter_parameters
from i2v_adapter.model.components import build_unet
from i2v_adapter.model.stage_modules import UNetStage, sample_torch_inputs
from i2v_core.config import AttentionVariant, get_preset
from i2v_core.stages import stage_specs

pytestmark = pytest.mark.large


@torch.no_grad()
def test_mobile_unet_one_step_and_variants_agree():
    cfg = get_preset("mobile").with_overrides(adapter_out_init_std=0.02)
    unet = build_unet(cfg)
    assert sum(p.numel() for p in adapter_parameters(unet)) == 24_793_280
    spec = stage_specs(cfg)["unet"]
    inputs = sample_torch_inputs(spec)
    stage = UNetStage(unet)
    fused = stage(*inputs)
    spec.check_outputs({"noise_pred": fused})
    assert torch.isfinite(fused).all()
    for proc in unet.attn_processors.values():
        if hasattr(proc, "variant"):
            proc.variant = AttentionVariant.NAIVE
    naive = stage(*inputs)
    assert (naive - fused).abs().max().item() <= 1e-4
