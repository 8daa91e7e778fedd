"""Checkpoints on the tiny preset: safetensors IO, the converter, SD1.5 folders, motion modules in both
layouts, I2V-Adapter and IP-Adapter-Plus weights, LoRA fusing and `load_components`.

Every test writes the files it reads into `tmp_path` from the tiny twin's own weights.
"""

import dataclasses

import pytest
import torch
from diffusers import MotionAdapter, UNet2DConditionModel

from i2v_adapter.checkpoints.convert import (
    ip_adapter_plus_to_diffusers,
    ip_adapter_plus_to_original,
    motion_diffusers_to_original,
    motion_original_to_diffusers,
)
from i2v_adapter.checkpoints.convert import (
    main as convert_main,
)
from i2v_adapter.checkpoints.io import load_safetensors, save_i2v_adapter, save_safetensors
from i2v_adapter.checkpoints.load import (
    ip_adapter_layer_names,
    load_adapter_weights,
    load_components,
    load_ip_adapter,
    load_lora_file,
    load_motion_adapter,
    load_sd15_folder,
    load_unet,
)
from i2v_adapter.checkpoints.lora import fuse_lora, lora_targets
from i2v_adapter.model.adapter import adapter_processors, i2v_adapter_state_dict
from i2v_adapter.model.components import (
    build_motion_unet,
    build_text_encoder,
    build_unet,
    build_vae,
    motion_adapter_kwargs,
    seeded,
    unet2d_kwargs,
)
from i2v_core.config import get_preset, tiny_image_encoder
from i2v_core.errors import CheckpointError

TO_Q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
PROJ_IN = "down_blocks.0.attentions.0.proj_in"  # a 1x1 convolution in SD1.5's layout


class _NotAWeight:
    """A custom class: pickling it makes a file that `weights_only=True` must refuse."""

    def __init__(self):
        self.payload = "would run arbitrary code on load"


@pytest.fixture(scope="module")
def cfg():
    return get_preset("tiny")


def _inputs(cfg):
    """UNet inputs at small shapes: sample (2, 4, 8, 16, 16), states repeated per frame (2*8, 77, 32)."""
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, cfg.num_frames, 16, 16, generator=g)
    states = torch.randn(2, 77, cfg.unet.cross_attention_dim, generator=g).repeat_interleave(cfg.num_frames, 0)
    return sample, torch.tensor([500.0]), states


@torch.no_grad()
def _run(unet, cfg):
    return unet(*_inputs(cfg)).sample


@torch.no_grad()
def _perturb(module, seed, std=0.05):
    """Move every parameter off its initial value, so loading visibly changes a fresh model."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(torch.randn(p.shape, generator=g) * std)
    return module


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.fixture(scope="module")
def trained_unet(cfg):
    """An adapted UNet whose adapter weights differ from a freshly built one's."""
    unet = build_unet(cfg)
    for proc in adapter_processors(unet).values():
        _perturb(proc, seed=1)
    return unet


# --------------------------------------------------------------------------------------------------
# safetensors files
# --------------------------------------------------------------------------------------------------


def test_save_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors({"a": torch.zeros(2)}, path, metadata={"format": "test"})
    with pytest.raises(FileExistsError, match="overwrite"):
        save_safetensors({"a": torch.ones(2)}, path)
    assert torch.equal(load_safetensors(path)["a"], torch.zeros(2))
    save_safetensors({"a": torch.ones(2)}, path, overwrite=True)
    assert torch.equal(load_safetensors(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary file left


def test_save_copies_views_and_shared_tensors(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    path = save_safetensors({"t": base.t(), "row": base[1], "same": base, "again": base}, tmp_path / "v.safetensors")
    loaded = load_safetensors(path)
    assert torch.equal(loaded["t"], base.t()) and torch.equal(loaded["row"], base[1])
    assert torch.equal(loaded["again"], base)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!", "corrupt or truncated"),
        (b"PK\x03\x04 a zip, as torch.save writes", "python -m i2v_adapter.checkpoints.convert"),
    ],
)
def test_unreadable_safetensors_names_the_path(tmp_path, content, expected):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="expected a safetensors file") as err:
        load_safetensors(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_truncated_safetensors_is_refused(tmp_path):
    path = save_safetensors({"a": torch.randn(64, 64)}, tmp_path / "a.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=str(path)):
        load_safetensors(path)


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="found nothing there"):
        load_safetensors(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="found a directory"):
        load_safetensors(tmp_path)


# --------------------------------------------------------------------------------------------------
# I2V-Adapter weights and the converter
# --------------------------------------------------------------------------------------------------


def test_adapter_round_trip_is_bit_identical(cfg, trained_unet, tmp_path):
    path = save_i2v_adapter(trained_unet, tmp_path / "adapter.safetensors")
    fresh = build_unet(cfg)
    assert not torch.equal(_run(fresh, cfg), _run(trained_unet, cfg))
    load_adapter_weights(fresh, path)
    assert torch.equal(_run(fresh, cfg), _run(trained_unet, cfg))


def test_official_pth_converts_and_loads_identically(cfg, trained_unet, tmp_path, capsys):
    official = {f"module.{k}": v for k, v in i2v_adapter_state_dict(trained_unet).items()}
    assert any(k.startswith("module.") and k.endswith(".attn1.to_q_ff.weight") for k in official)
    pth = tmp_path / "i2v_module.pth"
    torch.save(official, pth)
    fresh = build_unet(cfg)
    with pytest.raises(CheckpointError, match="python -m i2v_adapter.checkpoints.convert"):
        load_adapter_weights(fresh, pth)
    out = tmp_path / "i2v_module.safetensors"
    assert convert_main([str(pth), str(out)]) == 0
    line = capsys.readouterr().out.strip()
    params = sum(v.numel() for v in official.values())
    assert line == f"converted i2v-adapter: {len(official)} tensors, {params:,} parameters -> {out}"
    load_adapter_weights(fresh, out)
    assert torch.equal(_run(fresh, cfg), _run(trained_unet, cfg))
    # An existing output is refused unless --overwrite.
    assert convert_main([str(pth), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert convert_main([str(pth), str(out), "--overwrite", "--kind", "i2v-adapter"]) == 0
    assert convert_main([str(pth), str(tmp_path / "mm.safetensors"), "--kind", "motion-module"]) == 2
    assert "expected motion-module keys" in capsys.readouterr().err


def test_pickle_needing_arbitrary_globals_is_refused(tmp_path, capsys):
    pth = tmp_path / "unsafe.pth"
    torch.save({"w": torch.zeros(2), "extra": _NotAWeight()}, pth)
    out = tmp_path / "unsafe.safetensors"
    assert convert_main([str(pth), str(out)]) == 2
    err = capsys.readouterr().err
    assert "weights_only=True" in err and "refused" in err and str(pth) in err
    assert "Unsupported global" in err and "_NotAWeight" in err
    assert not out.exists()


def _broken(state, case):
    keys = sorted(state)
    if case == "missing":
        return {k: v for k, v in state.items() if k != keys[0]}, keys[0]
    if case == "unexpected":
        return {**state, "down_blocks.9.attn1.to_q_ff.weight": torch.zeros(2, 2)}, "down_blocks.9.attn1.to_q_ff.weight"
    return {**state, keys[0]: torch.zeros(3, 5)}, f"{keys[0]}: expected"


@pytest.mark.parametrize("case", ["missing", "unexpected", "mismatched"])
def test_bad_adapter_keys_are_reported_by_name(cfg, trained_unet, tmp_path, case):
    state, named = _broken(i2v_adapter_state_dict(trained_unet), case)
    path = save_safetensors(state, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_adapter_weights(build_unet(cfg), path)
    message = str(err.value)
    assert named in message and str(path) in message
    counts = {"missing": "1 missing keys", "unexpected": "1 unexpected keys", "mismatched": "1 shape mismatches"}
    assert counts[case] in message


# --------------------------------------------------------------------------------------------------
# SD1.5 folder
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spatial_unet(cfg):
    with seeded(cfg.seed + 7, "unet"):
        return UNet2DConditionModel(**unet2d_kwargs(cfg)).eval()


@pytest.fixture(scope="module")
def sd15_folder(cfg, spatial_unet, tmp_path_factory):
    root = tmp_path_factory.mktemp("sd15")
    spatial_unet.save_pretrained(root / "unet")
    _perturb(build_vae(cfg), seed=3).save_pretrained(root / "vae")
    _perturb(build_text_encoder(cfg), seed=4).save_pretrained(root / "text_encoder")
    (root / "scheduler").mkdir()
    return root


def test_sd15_folder_round_trip(cfg, spatial_unet, sd15_folder):
    unet, vae, text_encoder = load_sd15_folder(sd15_folder, cfg)
    _assert_same_state(unet, spatial_unet)
    _assert_same_state(vae, _perturb(build_vae(cfg), seed=3))
    _assert_same_state(text_encoder, _perturb(build_text_encoder(cfg), seed=4))


def test_sd15_missing_subfolder(cfg, tmp_path, spatial_unet):
    spatial_unet.save_pretrained(tmp_path / "unet")
    build_text_encoder(cfg).save_pretrained(tmp_path / "text_encoder")
    with pytest.raises(CheckpointError, match=r"has no vae/ subfolder: expected the diffusers layout") as err:
        load_sd15_folder(tmp_path, cfg)
    assert "text_encoder/" in str(err.value) and "unet/" in str(err.value)


def test_sd15_architecture_mismatch_names_field(cfg, sd15_folder):
    other = dataclasses.replace(cfg, unet=dataclasses.replace(cfg.unet, cross_attention_dim=768))
    with pytest.raises(CheckpointError, match=r"cross_attention_dim: expected 768, found 32"):
        load_sd15_folder(sd15_folder, other)
    other = dataclasses.replace(cfg, text_encoder=dataclasses.replace(cfg.text_encoder, hidden_size=64))
    with pytest.raises(CheckpointError, match=r"text_encoder .*hidden_size: expected 64, found 32"):
        load_sd15_folder(sd15_folder, other)


# --------------------------------------------------------------------------------------------------
# Motion module
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion(cfg):
    with seeded(cfg.seed, "motion"):
        return _perturb(MotionAdapter(**motion_adapter_kwargs(cfg)), seed=5).eval()


def test_original_motion_layout_keys_and_bijection(motion):
    original = motion_diffusers_to_original(motion.state_dict())
    block = "down_blocks.0.motion_modules.0.temporal_transformer"
    for key in (
        f"{block}.proj_in.weight",
        f"{block}.norm.weight",
        f"{block}.proj_out.bias",
        f"{block}.transformer_blocks.0.attention_blocks.0.to_q.weight",
        f"{block}.transformer_blocks.0.attention_blocks.1.to_out.0.weight",
        f"{block}.transformer_blocks.0.norms.1.weight",
        f"{block}.transformer_blocks.0.ff.net.0.proj.weight",
        f"{block}.transformer_blocks.0.ff_norm.weight",
    ):
        assert key in original, key
    for a in (0, 1):
        assert original[f"{block}.transformer_blocks.0.attention_blocks.{a}.pos_encoder.pe"].shape == (1, 24, 32)
    back = motion_original_to_diffusers(original)
    assert back.keys() == motion.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in motion.state_dict().items())


def test_motion_module_both_layouts_give_the_same_unet(cfg, motion, spatial_unet, tmp_path, capsys):
    motion.save_pretrained(tmp_path / "folder")
    # The original layout as released: a pickle with a state_dict wrapper, converted once.
    ckpt = tmp_path / "mm_sd_v15.ckpt"
    torch.save({"state_dict": motion_diffusers_to_original(motion.state_dict()), "epoch": 3}, ckpt)
    assert convert_main([str(ckpt), str(tmp_path / "mm.safetensors")]) == 0
    assert capsys.readouterr().out.startswith("converted motion-module: ")
    unets = []
    for source in (tmp_path / "folder", tmp_path / "mm.safetensors"):
        loaded = load_motion_adapter(source, cfg)
        _assert_same_state(loaded, motion)
        unets.append(build_motion_unet(cfg, spatial_unet, loaded).eval())
    reference = build_motion_unet(cfg, spatial_unet, motion).eval()
    motion_weights = {k: v for k, v in reference.state_dict().items() if "motion_modules" in k}
    assert motion_weights.keys() == motion.state_dict().keys()
    assert all(torch.equal(motion.state_dict()[k], v) for k, v in motion_weights.items())
    for unet in unets:
        state = unet.state_dict()
        assert all(torch.equal(state[k], v) for k, v in motion_weights.items())
    assert torch.equal(_run(unets[0], cfg), _run(unets[1], cfg))
    assert torch.equal(_run(unets[0], cfg), _run(reference, cfg))


def test_wrong_pe_length_is_refused(cfg, motion, tmp_path):
    original = motion_diffusers_to_original(motion.state_dict())
    short = {k: (v[:, :16] if k.endswith("pos_encoder.pe") else v) for k, v in original.items()}
    path = save_safetensors(short, tmp_path / "mm_v2_like.safetensors")
    with pytest.raises(CheckpointError, match=r"max_seq_length .*expected 24, found 16"):
        load_motion_adapter(path, cfg)


def test_motion_folder_config_mismatch_names_field(cfg, motion, tmp_path):
    motion.save_pretrained(tmp_path / "folder")
    other = dataclasses.replace(cfg, motion=dataclasses.replace(cfg.motion, num_attention_heads=8))
    with pytest.raises(CheckpointError, match=r"motion_num_attention_heads: expected 8, found 4"):
        load_motion_adapter(tmp_path / "folder", other)


# --------------------------------------------------------------------------------------------------
# LoRA
# --------------------------------------------------------------------------------------------------


def test_spatial_layer_names_coincide_with_the_2d_unet(cfg, spatial_unet):
    video = build_unet(cfg)
    targets = lora_targets(video)
    layers = (torch.nn.Linear, torch.nn.Conv2d)
    flat = {n: m.weight.shape for n, m in spatial_unet.named_modules() if isinstance(m, layers)}
    assert {n: m.weight.shape for n, m in targets.items()} == flat


def _lora_factors(seed):
    g = torch.Generator().manual_seed(seed)
    return {
        TO_Q: (torch.randn(2, 32, generator=g), torch.randn(32, 2, generator=g)),
        PROJ_IN: (torch.randn(2, 32, 1, 1, generator=g), torch.randn(32, 2, 1, 1, generator=g)),
    }


def _lora_state(layout, factors, alpha):
    """A LoRA file's tensors in `layout` (plus one text-encoder tensor, which fusing must skip)."""
    state = {}
    for name, (down, up) in factors.items():
        if layout == "peft":
            keys = (f"unet.{name}.lora_A.weight", f"unet.{name}.lora_B.weight", f"unet.{name}.alpha")
            state["text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = torch.zeros(2, 32)
        else:
            prefix = "lora_unet_" + name.replace(".", "_")
            keys = (f"{prefix}.lora_down.weight", f"{prefix}.lora_up.weight", f"{prefix}.alpha")
            state["lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(2, 32)
        state.update(zip(keys, (down, up, torch.tensor(alpha))))
    return state


@pytest.mark.parametrize("layout", ["peft", "kohya"])
def test_lora_fuse_matches_hand_computation(cfg, layout, tmp_path, caplog):
    unet = build_unet(cfg)
    before = {n: m.weight.detach().clone() for n, m in lora_targets(unet).items()}
    factors, alpha, scale = _lora_factors(seed=11), 1.5, 0.7
    path = save_safetensors(_lora_state(layout, factors, alpha), tmp_path / f"style_{layout}.safetensors")
    with caplog.at_level("INFO", logger="i2v_adapter.checkpoints.lora"):
        fused = load_lora_file(unet, path, scale)
    assert "skipped 1 text-encoder LoRA tensors" in caplog.text
    assert fused == [PROJ_IN, TO_Q]
    after = {n: m.weight.detach() for n, m in lora_targets(unet).items()}
    down, up = factors[TO_Q]
    assert torch.allclose(after[TO_Q], before[TO_Q] + scale * alpha / 2 * up @ down, rtol=0, atol=1e-6)
    down, up = factors[PROJ_IN]
    expected = before[PROJ_IN] + (scale * alpha / 2 * up[:, :, 0, 0] @ down[:, :, 0, 0])[:, :, None, None]
    assert torch.allclose(after[PROJ_IN], expected, rtol=0, atol=1e-6)
    assert all(torch.equal(after[n], w) for n, w in before.items() if n not in fused)


def test_unknown_lora_layers_are_refused_by_name(cfg):
    unet = build_unet(cfg)
    before = unet.get_submodule(TO_Q).weight.detach().clone()
    down, up = torch.zeros(2, 32), torch.zeros(32, 2)
    bad = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_zz"
    state = {
        f"{TO_Q}.lora_A.weight": down + 1,
        f"{TO_Q}.lora_B.weight": up + 1,
        f"{bad}.lora_A.weight": down,
        f"{bad}.lora_B.weight": up,
        "lora_unet_down_blocks_0_motion_modules_0_proj_in.lora_down.weight": down,
        "lora_unet_down_blocks_0_motion_modules_0_proj_in.lora_up.weight": up,
    }
    with pytest.raises(CheckpointError, match="2 LoRA layers name no spatial layer") as err:
        fuse_lora(unet, state)
    assert bad in str(err.value) and "lora_unet_down_blocks_0_motion_modules_0_proj_in" in str(err.value)
    assert torch.equal(unet.get_submodule(TO_Q).weight, before)  # nothing fused
    with pytest.raises(CheckpointError, match="fit neither"):
        fuse_lora(unet, {f"{TO_Q}.hada_w1_a": down})


# --------------------------------------------------------------------------------------------------
# IP-Adapter-Plus
# --------------------------------------------------------------------------------------------------


def test_ip_adapter_plus_original_layout_loads(cfg, tmp_path):
    cfg = cfg.with_overrides(image_encoder=tiny_image_encoder())
    source = build_unet(cfg)
    proj = _perturb(source.encoder_hid_proj.image_projection_layers[0], seed=8)
    original = ip_adapter_plus_to_original(proj.state_dict())
    assert "layers.0.0.to_kv.weight" in original and "layers.0.1.3.weight" in original
    assert ip_adapter_plus_to_diffusers(original).keys() == proj.state_dict().keys()
    state = {f"image_proj.{k}": v for k, v in original.items()}
    for i, name in enumerate(ip_adapter_layer_names(cfg)):
        processor = source.get_submodule(name).processor
        for which in ("to_k_ip", "to_v_ip"):
            weight = getattr(processor, which)[0].weight
            state[f"ip_adapter.{2 * i + 1}.{which}.weight"] = torch.randn(weight.shape)
    path = save_safetensors(state, tmp_path / "ip-adapter-plus_sd15.safetensors")
    target = build_unet(cfg)
    load_ip_adapter(target, path, cfg)
    _assert_same_state(target.encoder_hid_proj.image_projection_layers[0], proj)
    last = ip_adapter_layer_names(cfg)[-1]
    key = f"ip_adapter.{2 * len(ip_adapter_layer_names(cfg)) - 1}.to_v_ip.weight"
    assert torch.equal(target.get_submodule(last).processor.to_v_ip[0].weight, state[key])


# --------------------------------------------------------------------------------------------------
# An official I2V-Adapter file that holds more than the adapter
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ip_cfg(cfg):
    return cfg.with_overrides(image_encoder=tiny_image_encoder())


@pytest.fixture(scope="module")
def mixed_official(ip_cfg, trained_unet, motion, spatial_unet):
    """What the official code saves from its UNet: the adapter, the IP-Adapter projections of every
    cross-attention (`<layer>.attn2.to_k_ip.weight`), the motion modules (AnimateDiff layout) and the
    spatial UNet, all under a training wrapper's `module.` prefix."""
    g = torch.Generator().manual_seed(21)
    projections = {}
    source = build_unet(ip_cfg)
    for name in ip_adapter_layer_names(ip_cfg):
        for which in ("to_k_ip", "to_v_ip"):
            shape = getattr(source.get_submodule(name).processor, which)[0].weight.shape
            projections[f"{name}.{which}.weight"] = torch.randn(shape, generator=g)
    parts = {
        "adapter": i2v_adapter_state_dict(trained_unet),
        "projections": projections,
        "motion": motion_diffusers_to_original(motion.state_dict()),
        "spatial": spatial_unet.state_dict(),
    }
    state = {f"module.{k}": v for part in parts.values() for k, v in part.items()}
    return state, parts


def test_a_mixed_official_file_is_refused_naming_its_parts(mixed_official, cfg, tmp_path):
    state, parts = mixed_official
    path = save_safetensors(state, tmp_path / "i2v_module.safetensors")
    out = tmp_path / "i2v_module.adapter.safetensors"
    with pytest.raises(CheckpointError) as err:
        load_adapter_weights(build_unet(cfg), path)
    assert str(err.value) == (
        f"{path} holds the I2V-Adapter's {len(parts['adapter'])} tensors, and also "
        f"{len(parts['projections'])} IP-Adapter projection tensors (attn2.to_k_ip / to_v_ip) and "
        f"{len(parts['motion'])} motion-module tensors and {len(parts['spatial'])} spatial UNet tensors: split them "
        f"out with python -m i2v_adapter.checkpoints.convert {path} {out}, then pass {out} with --adapter, "
        f"{tmp_path / 'i2v_module.adapter.ip-adapter-projections.safetensors'} with --ip-projections (with "
        "--content-adapter and --ip-adapter, whose projections they replace), "
        f"{tmp_path / 'i2v_module.adapter.motion-module.safetensors'} with --motion-module; the spatial UNet tensors "
        "are not written: the spatial UNet comes from the SD1.5 folder (--sd15)"
    )


def test_a_mixed_official_file_converts_into_parts_that_load(mixed_official, ip_cfg, cfg, trained_unet, motion,
                                                             tmp_path, capsys):
    state, parts = mixed_official
    pth = tmp_path / "i2v_module.pth"
    torch.save({"state_dict": state}, pth)
    out = tmp_path / "i2v.safetensors"
    assert convert_main([str(pth), str(out)]) == 0
    params = sum(v.numel() for v in parts["adapter"].values())
    ip_file, mm_file = tmp_path / "i2v.ip-adapter-projections.safetensors", tmp_path / "i2v.motion-module.safetensors"
    assert capsys.readouterr().out.splitlines() == [
        f"converted i2v-adapter: {len(parts['adapter'])} tensors, {params:,} parameters -> {out}",
        f"  also {len(parts['projections'])} IP-Adapter projection tensors (attn2.to_k_ip / to_v_ip) -> {ip_file}: "
        "load it with --ip-projections (with --content-adapter and --ip-adapter, whose projections they replace)",
        f"  also {len(parts['motion'])} motion-module tensors -> {mm_file}: load it with --motion-module",
        f"  also {len(parts['spatial'])} spatial UNet tensors, not written: the spatial UNet comes from the SD1.5 "
        "folder (--sd15)",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([pth.name, out.name, ip_file.name, mm_file.name])

    # The adapter file loads alone; the motion module through the motion-module loader; the
    # projections over the content adapter, every to_k_ip / to_v_ip as the official file had it.
    fresh = build_unet(cfg)
    load_adapter_weights(fresh, out)
    assert torch.equal(_run(fresh, cfg), _run(trained_unet, cfg))
    _assert_same_state(load_motion_adapter(mm_file, cfg), motion)
    unet = load_unet(ip_cfg, motion_adapter=motion, i2v_adapter=out, ip_projections=ip_file)
    for key, value in parts["projections"].items():
        layer, which = key.rsplit(".", 2)[0], key.split(".")[-2]
        assert torch.equal(getattr(unet.get_submodule(layer).processor, which)[0].weight, value), key
    # Every output is refused before any is written, unless --overwrite.
    assert convert_main([str(pth), str(out)]) == 2
    assert f"output already exists: {out}" in capsys.readouterr().err
    out.unlink()
    assert convert_main([str(pth), str(out)]) == 2
    assert f"output already exists: {ip_file}" in capsys.readouterr().err and not out.exists()
    assert convert_main([str(pth), str(out), "--overwrite"]) == 0


# --------------------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------------------


def test_load_unet_with_motion_only_builds_the_spatial_unet(cfg, motion, caplog):
    with caplog.at_level("WARNING", logger="i2v_adapter.checkpoints.load"):
        unet = load_unet(cfg, motion_adapter=motion)
    assert "spatial UNet gets deterministic random weights" in caplog.text
    with seeded(cfg.seed, "unet"):
        spatial = UNet2DConditionModel(**unet2d_kwargs(cfg))
    state = unet.state_dict()
    assert all(torch.equal(state[k], v) for k, v in spatial.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in motion.state_dict().items())


def test_load_components_from_files(cfg, sd15_folder, spatial_unet, motion, trained_unet, tmp_path):
    pytest.importorskip("i2v_core.tokenizer")
    mm = save_safetensors(motion_diffusers_to_original(motion.state_dict()), tmp_path / "mm.safetensors")
    adapter = save_i2v_adapter(trained_unet, tmp_path / "adapter.safetensors")
    lora = save_safetensors(_lora_state("kohya", _lora_factors(seed=12), 2.0), tmp_path / "style.safetensors")
    comps = load_components(
        cfg, sd15=sd15_folder, motion_module=mm, i2v_adapter=adapter, loras=[lora], lora_scales=[0.5]
    )
    _assert_same_state(comps.vae, _perturb(build_vae(cfg), seed=3))
    expected = build_unet(cfg, spatial_unet, motion)
    load_adapter_weights(expected, adapter)
    load_lora_file(expected, lora, 0.5)
    assert torch.equal(_run(comps.unet, cfg), _run(expected, cfg))
