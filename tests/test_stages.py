"""The stage contract: shapes derived from presets, input checks, and stage modules that honour it."""

import numpy as np
import pytest
import torch

from i2v_adapter.model.components import build_components
from i2v_adapter.model.stage_modules import sample_torch_inputs, stage_modules
from i2v_core.config import get_preset, tiny_image_encoder
from i2v_core.stages import StageSpec, stage_specs


def test_shapes_follow_presets():
    for name, latent, frames, text in (("tiny", 16, 8, 32), ("mobile", 32, 16, 768), ("sd15", 64, 16, 768)):
        specs = stage_specs(get_preset(name))
        assert list(specs) == ["text_encoder", "vae_encoder", "unet", "vae_decoder"]
        unet = {t.name: t.shape for t in specs["unet"].inputs}
        assert unet == {
            "sample": (2, 4, frames, latent, latent),
            "timestep": (1,),
            "encoder_hidden_states": (2, 77, text),
        }
        assert specs["unet"].outputs[0].shape == (2, 4, frames, latent, latent)
        assert specs["vae_decoder"].inputs[0].shape == (1, 4, latent, latent)
        assert specs["vae_encoder"].inputs[0].shape == (1, 3, latent * 8, latent * 8)
        assert specs["text_encoder"].inputs[0].dtype == "int32"


def test_image_encoder_stage_appears_with_content_adapter(tiny_cfg):
    cfg = tiny_cfg.with_overrides(image_encoder=tiny_image_encoder())
    specs = stage_specs(cfg)
    assert list(specs) == ["text_encoder", "image_encoder", "vae_encoder", "unet", "vae_decoder"]
    assert specs["image_encoder"].outputs[0].shape == (1, 17, 32)
    assert specs["unet"].input_names[-1] == "image_embeds"


def test_input_check_messages(tiny_cfg):
    spec = stage_specs(tiny_cfg)["unet"]
    feeds = spec.sample_inputs()
    spec.check_inputs(feeds)
    bad = dict(feeds, sample=np.zeros((2, 4, 16, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"expected unet input 'sample' of shape \(2, 4, 8, 16, 16\), got \(2, 4, 16, 16, 16\)"):
        spec.check_inputs(bad)
    with pytest.raises(ValueError, match="of dtype float32, got float64"):
        spec.check_inputs(dict(feeds, timestep=np.zeros((1,), np.float64)))
    with pytest.raises(ValueError, match=r"missing \['timestep'\]"):
        spec.check_inputs({k: v for k, v in feeds.items() if k != "timestep"})


def test_spec_round_trips_through_dict(tiny_cfg):
    for name, spec in stage_specs(tiny_cfg).items():
        again = StageSpec.from_dict(name, spec.to_dict())
        assert again.input_names == spec.input_names
        assert [t.shape for t in again.outputs] == [t.shape for t in spec.outputs]
        assert again.inputs == spec.inputs  # sample kinds too: a manifest reproduces the sample inputs


def test_sample_inputs_are_deterministic(tiny_cfg):
    spec = stage_specs(tiny_cfg)["text_encoder"]
    a, b = spec.sample_inputs(3), spec.sample_inputs(3)
    assert np.array_equal(a["input_ids"], b["input_ids"]) and a["input_ids"].dtype == np.int32
    assert a["input_ids"].max() < 49408


@pytest.mark.parametrize("content_adapter", [False, True])
@torch.no_grad()
def test_stage_modules_honour_the_contract(tiny_cfg, content_adapter):
    cfg = tiny_cfg.with_overrides(image_encoder=tiny_image_encoder()) if content_adapter else tiny_cfg
    components = build_components(cfg)
    specs = stage_specs(cfg)
    modules = stage_modules(components)
    assert list(modules) == list(specs)
    for name, module in modules.items():
        out = module(*sample_torch_inputs(specs[name]))
        specs[name].check_outputs({specs[name].output_names[0]: out})
        assert torch.isfinite(out).all()


@torch.no_grad()
def test_weights_are_deterministic(tiny_cfg):
    a, b = build_components(tiny_cfg), build_components(tiny_cfg)
    for model in ("unet", "vae", "text_encoder"):
        sa, sb = getattr(a, model).state_dict(), getattr(b, model).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = build_components(tiny_cfg.with_overrides(seed=1))
    assert not torch.equal(other.vae.decoder.conv_out.weight, a.vae.decoder.conv_out.weight)
