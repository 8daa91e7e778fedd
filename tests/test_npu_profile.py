"""`--npu mediatek`: the graph profile that keeps ops LiteRT's MediaTek plugin lacks out of the graphs.

The UNet takes the sinusoidal timestep embedding (computed by the runtime in numpy) instead of the
timestep, the text encoder looks tokens up by one-hot matmul under a constant causal mask, repeats
are concatenations and GroupNorm is decomposed. The tiny bundle exported so is NPU-clean, passes the
parity gate against the unmodified PyTorch stages and generates what the default bundle generates."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers.models.embeddings import get_timestep_embedding

from export.build import main
from export.chunking import build_chunks, run_chunks
from export.graph_options import OneHotTextEncoder, repeat_interleave_as_concat
from export.npu_report import ReportOptions, npu_report
from i2v_adapter.model.components import build_components
from i2v_adapter.model.stage_modules import UNetEmbeddingStage, UNetStage, sample_torch_inputs, stage_modules
from i2v_core import parity
from i2v_core.bundle import verify_bundle
from i2v_core.config import get_preset
from i2v_core.media import make_test_card
from i2v_core.stages import SinusoidalEmbedding, StageSpec, stage_specs, timestep_feeds
from quantize.api import quantize_bundle
from quantize.recipes import Recipe
from runtime_py.pipeline import RuntimePipeline

NPU = "mediatek"
NOT_ON_THE_NPU = {"SIN", "COS", "BROADCAST_TO", "EMBEDDING_LOOKUP", "SELECT_V2"}


@pytest.fixture(scope="module")
def components():
    return build_components(get_preset("tiny"))


# --- the contract -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim,shift", [(32, 0.0), (320, 0.0), (33, 1.0)])
def test_numpy_embedding_matches_diffusers(dim, shift):
    t = np.concatenate([np.arange(1000), [0.5, 999.5, 123.25]]).astype(np.float32)
    ours = SinusoidalEmbedding(dim, True, shift)(t)
    ref = get_timestep_embedding(torch.from_numpy(t), dim, flip_sin_to_cos=True, downscale_freq_shift=shift).numpy()
    assert ours.shape == ref.shape == (len(t), dim) and ours.dtype == np.float32
    # torch's float32 exp / sin are not correctly rounded: the frequencies may differ by one float32 step
    assert np.abs(ours - ref).max() <= 1000 * 2.0**-23
    assert np.array_equal(ours[0], ref[0])  # t = 0: cos 0 = 1, sin 0 = 0 exactly
    unflipped = SinusoidalEmbedding(dim, False, shift)(t)
    assert np.array_equal(unflipped[:, : dim // 2], ours[:, dim // 2 : 2 * (dim // 2)])


def test_npu_contract_takes_the_embedding_the_unet_computes():
    cfg = get_preset("tiny")
    default, npu = stage_specs(cfg), stage_specs(cfg, NPU)
    unet = npu["unet"]
    assert unet.input_names == ["sample", "timestep_embedding", "encoder_hidden_states"]
    emb = unet.inputs[1]
    assert emb.shape == (1, cfg.unet.block_out_channels[0]) and emb.embedding == SinusoidalEmbedding(32, True, 0.0)
    assert {k: v for k, v in npu.items() if k != "unet"} == {k: v for k, v in default.items() if k != "unet"}
    assert StageSpec.from_dict("unet", json.loads(json.dumps(unet.to_dict()))) == unet
    assert "embedding" not in json.dumps(default["unet"].to_dict())  # default manifests are unchanged
    # the same seed draws the same timestep, given as its embedding
    plain, given = default["unet"].sample_inputs(5), unet.sample_inputs(5)
    assert np.array_equal(given["timestep_embedding"], emb.embedding(plain["timestep"]))
    assert np.array_equal(timestep_feeds(unet, 801)["timestep_embedding"], emb.embedding([801.0]))
    assert timestep_feeds(default["unet"], 801)["timestep"].tolist() == [801.0]
    with pytest.raises(ValueError, match="unknown NPU profile 'qualcomm': expected one of mediatek"):
        stage_specs(cfg, "qualcomm")
    with pytest.raises(ValueError, match="has no timestep input"):
        timestep_feeds(default["vae_decoder"], 801)


# --- the PyTorch rewrites ---------------------------------------------------------------------------------


def test_unet_embedding_stage_is_the_unet(components):
    cfg = components.config
    plain = stage_modules(components)["unet"]
    feeds = stage_specs(cfg)["unet"].sample_inputs(0)
    with torch.no_grad():
        before = plain(*(torch.from_numpy(v) for v in feeds.values()))
        npu_stage = stage_modules(components, NPU)["unet"]
        assert isinstance(npu_stage, UNetEmbeddingStage) and type(plain) is UNetStage
        npu_spec = stage_specs(cfg, NPU)["unet"]
        given = {**feeds, **timestep_feeds(npu_spec, feeds["timestep"][0])}
        out = npu_stage(*(torch.from_numpy(given[n]) for n in npu_spec.input_names))
        after = plain(*(torch.from_numpy(v) for v in feeds.values()))
    assert torch.equal(before, after)  # the timestep stage over the same UNet is unchanged
    assert parity.psnr_db(out.numpy(), before.numpy()) >= 120.0


def test_chunks_take_the_embedding(components):
    spec = stage_specs(components.config, NPU)["unet"]
    stage = stage_modules(components, NPU)["unet"]
    args = sample_torch_inputs(spec, 0)
    with torch.no_grad():
        ref = stage(*args)
    chunks = build_chunks(stage, spec, 3)
    assert "timestep_embedding" in chunks[0].input_names and "timestep" not in chunks[0].input_names
    io = run_chunks(chunks, dict(zip(spec.input_names, args)))
    assert torch.equal(io[-1][1]["noise_pred"], ref)


def test_one_hot_text_encoder_is_the_lookup(components):
    stage = stage_modules(components)["text_encoder"]
    ids = torch.from_numpy(stage_specs(components.config)["text_encoder"].sample_inputs(0)["input_ids"])
    with torch.no_grad():
        assert torch.equal(OneHotTextEncoder(stage).eval()(ids), stage(ids))


def test_repeat_interleave_as_concat_is_repeat_interleave():
    x = torch.randn(2, 3, 4)
    expected = [x.repeat_interleave(5, dim=1), torch.repeat_interleave(x, 2, dim=0), x.repeat_interleave(3, dim=-1)]
    with repeat_interleave_as_concat():
        found = [x.repeat_interleave(5, dim=1), torch.repeat_interleave(x, 2, dim=0),
                 x.repeat_interleave(3, dim=-1, output_size=12)]
        counts = torch.tensor([1, 2, 3])
        assert torch.equal(x.repeat_interleave(counts, dim=1), x.repeat_interleave(counts, dim=1))  # passed through
    assert all(torch.equal(a, b) for a, b in zip(found, expected))
    assert "repeat_interleave" not in torch.Tensor.__dict__  # restored to the inherited method


# --- the exported bundle ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mediatek_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "mediatek"
    assert main(["--target", "tflite", "--npu", NPU, "--out", str(out), "--quiet"]) == 0
    return out


def test_npu_bundle_is_clean_where_the_default_is_not(mediatek_bundle, tiny_bundle):
    report = npu_report(ReportOptions(mediatek_bundle))
    files = {f["stage"]: f for f in report["files"]}
    assert report["clean"], report["reasons"]
    for name in ("unet", "text_encoder", "vae_encoder", "vae_decoder"):
        assert files[name]["unsupported"] == {} and not NOT_ON_THE_NPU & set(files[name]["histogram"]), name
    default = {f["stage"]: f for f in npu_report(ReportOptions(tiny_bundle))["files"]}
    assert {"SIN", "COS"} <= set(default["unet"]["unsupported"])
    assert files["unet"]["ops"] < default["unet"]["ops"]  # GroupNorm decomposed, no sinusoid


def test_npu_bundle_records_the_contract_and_passes_the_gate(mediatek_bundle):
    m = verify_bundle(mediatek_bundle)
    assert m["graph_options"]["npu"] == NPU and m["graph_options"]["decompose_groupnorm"] is True
    unet = m["stages"]["unet"]
    assert [t["name"] for t in unet["io"]["inputs"]] == ["sample", "timestep_embedding", "encoder_hidden_states"]
    assert unet["io"]["inputs"][1]["embedding"] == SinusoidalEmbedding(32).to_dict()
    for name, record in m["stages"].items():  # against the unmodified PyTorch stages, at the timestep
        assert record["targets"]["tflite"]["parity"]["psnr_db"] >= 100.0, name
    assert unet["targets"]["tflite"]["parity"]["guidance_correlation"] >= 0.999


def test_runtime_generates_with_the_npu_bundle_what_the_default_generates(mediatek_bundle, tiny_bundle):
    outputs = []
    for bundle in (tiny_bundle, mediatek_bundle):
        pipe = RuntimePipeline.from_bundle(bundle, "tflite", threads=2)
        image = make_test_card(*pipe.image_size)
        outputs.append(pipe(image, "moves to the right", num_inference_steps=3, seed=0, progress=False))
    default, npu = outputs
    assert npu.frames.shape == default.frames.shape
    assert np.abs(npu.latents - default.latents).max() < 1e-3
    assert np.abs(npu.frames.astype(int) - default.frames.astype(int)).max() <= 2


@pytest.mark.slow
def test_npu_bundle_quantizes_to_per_tensor_int16(mediatek_bundle, tmp_path):
    """w8a16 with the text encoder left in float: LiteRT 2.3's CPU interpreter aborts on the int16 one-hot
    text encoder. The UNet's calibration is recorded with the timestep and given as its embedding."""
    recipe = Recipe.from_dict({
        "name": "w8a16-text-float", "default": {"weights": "int8", "activations": "int16"},
        "overrides": {"text_encoder": {"weights": "fp32", "activations": "float"}}, "min_psnr_db": 20.0,
    })
    out = tmp_path / "w8a16"
    quantize_bundle(mediatek_bundle, recipe, out, progress=False, evaluate_video=False)
    files = {f["stage"]: f for f in npu_report(ReportOptions(out))["files"]}
    for name in ("vae_encoder", "unet", "vae_decoder"):
        assert files[name]["quantized"] and files[name]["int16_not_per_tensor"] == [], name
        assert files[name]["unsupported"] == {} and files[name]["rejected"] == {}, name
    assert files["vae_decoder"]["clean"] and not files["text_encoder"]["quantized"]


def test_unknown_npu_profile_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--npu", "qualcomm", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "invalid choice: 'qualcomm'" in capsys.readouterr().err
