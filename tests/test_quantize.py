"""Quantization of the tiny bundle: every recipe on both targets, loaded in its runtime, fidelity
floors against the fp32 PyTorch stages, manifest contents, sizes, the sensitivity report and the
mixed recipe built from it, and bad input (missing file, wrong hash, unknown recipe, a recipe a
target cannot run, existing output), each one clear error with nothing half-written.

One tiny fp32 bundle is exported per module and one `QuantizeSession` shares the PyTorch reference,
the recorded calibration data and the reference video across recipes.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from i2v_core.bundle import BundleError, verify_bundle
from i2v_core.parity import psnr_db
from quantize.api import QuantizationParityError, QuantizeSession, quantize_bundle
from quantize.recipes import (
    DEFAULT_RECIPES,
    RECIPES,
    Activations,
    Recipe,
    StageRecipe,
    UnsupportedRecipeError,
    Weights,
    get_recipe,
    parse_stage_override,
)
from quantize.run import main as run_main
from quantize.sensitivity import keep_float_from_report, read_report, run_sensitivity, write_report
from runtime_py.pipeline import RuntimePipeline
from runtime_py.runners import LiteRTRunner, OnnxRunner

STAGES = ["text_encoder", "vae_encoder", "unet", "vae_decoder"]
TARGETS = ["onnx", "tflite"]
FLOORS = {"fp16": 40.0, "int8-weight-only": 30.0, "w8a16": 30.0}  # per stage, dB vs PyTorch fp32
REPORTED_FLOOR = 20.0  # int8-dynamic, int8-static: reported; this only catches a broken graph
# ...but for the int8-static TFLite UNet: the shipped v-prediction UNet's output at high noise is the
# clean latent, and int8 activations keep 17.1 dB of it (the epsilon UNet before it: above 20).
REPORTED_FLOORS = {("int8-static", "unet", "tflite"): 15.0}
# UNet weight bytes (data + scales + zero points) vs fp32, per target. The 0.27x / 0.51x are
# met by ONNX weight-only / dynamic and fp16; TFLite stores 12 bytes of scale and int64 zero point per
# channel, and static recipes add int32 biases and activation parameters, which weigh more on the tiny
# UNet than they would at full size (README: measured 0.27-0.32 with seeded random weights). On the
# trained default the ONNX int8 UNet measured 0.2701 / 0.2712 (weight-only / dynamic), and TFLite's
# static recipes 0.444 / 0.440: ai-edge-quantizer leaves the GEGLU projections of the FeedForward
# layers float32 there (fidelity is higher: w8a16 UNet 59.9 dB against 36.4 dB on random weights).
INT8_LIMITS = {"onnx": 0.29, "tflite": 0.45}
UNET_WEIGHT_LIMITS = {name: INT8_LIMITS for name in RECIPES} | {
    "fp16": {"onnx": 0.51, "tflite": 0.51},
    "int8-weight-only": {"onnx": 0.275, "tflite": 0.30},
    "int8-dynamic": {"onnx": 0.275, "tflite": 0.30},
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny PyTorch reference runs ~6x faster with one thread on a loaded 2-core machine (two
    spinning OpenMP threads wait on each other: a 10-step video 2.9 s vs 17-39 s, measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fp32_bundle(tiny_bundle):
    """The session's shared fp32 bundle (both targets; see conftest), read only."""
    return tiny_bundle


@pytest.fixture(scope="module")
def session(fp32_bundle):
    return QuantizeSession(fp32_bundle, progress=False)


@pytest.fixture(scope="module")
def quantized(session, tmp_path_factory):
    """`get(recipe) -> (out_dir, manifest)`, each recipe quantized once per module."""
    root = tmp_path_factory.mktemp("quantized")
    done = {}

    def get(name: str):
        if name not in done:
            out = root / name
            done[name] = (out, session.quantize(name, out))
        return done[name]

    return get


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")] == []


# --- recipes as data ---------------------------------------------------------------------------


def test_recipes_are_frozen_data_with_verify():
    assert list(RECIPES) == ["fp16", "int8-weight-only", "int8-dynamic", "w8a16", "int8-static"]
    w8a16 = RECIPES["w8a16"]
    assert w8a16.default == StageRecipe(Weights.INT8, Activations.INT16) and w8a16.needs_calibration
    assert not RECIPES["int8-dynamic"].needs_calibration
    with pytest.raises(AttributeError):
        w8a16.name = "other"  # frozen
    mixed = RECIPES["int8-static"].with_overrides(vae_decoder=RECIPES["fp16"].default)
    assert mixed.for_stage("vae_decoder").weights == Weights.FP16 and mixed.for_stage("unet").weights == Weights.INT8
    assert mixed.stage_precision("vae_decoder") == "fp16" and mixed.stage_precision("unet") == "int8-static"
    assert Recipe.from_dict(mixed.to_dict()) == mixed
    with pytest.raises(ValueError, match="expected int8 weights with int16 activations, found fp16 weights"):
        StageRecipe(Weights.FP16, Activations.INT16).verify()
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['decoder'\]"):
        Recipe("x", StageRecipe(Weights.INT8), overrides=(("decoder", StageRecipe()),)).verify()
    assert parse_stage_override("vae_decoder=fp16") == ("vae_decoder", RECIPES["fp16"].default)
    with pytest.raises(ValueError, match="expected STAGE=RECIPE"):
        parse_stage_override("vae_decoder")


def test_recipe_json_file(tmp_path):
    path = tmp_path / "mine.json"
    custom = RECIPES["w8a16"].with_overrides(text_encoder=StageRecipe())
    path.write_text(json.dumps(custom.to_dict()))
    assert get_recipe(path) == custom
    with pytest.raises(ValueError, match="unknown recipe 'int3': expected one of fp16, int8-weight-only"):
        get_recipe("int3")


def test_layer_groups_from_both_formats():
    from quantize.groups import for_format, group_members, members

    onnx_names = ["/unet/up_blocks.1/Concat", "/unet/up_blocks.1/resnets.0/conv1/Conv", "/unet/conv_in/Conv", "/unet/Add"]
    assert group_members(onnx_names, "onnx") == {
        "up_blocks.1/.": ["/unet/up_blocks.1/Concat"],
        "up_blocks.1/resnets.0": ["/unet/up_blocks.1/resnets.0/conv1/Conv"],
        "conv_in/.": ["/unet/conv_in/Conv"],
    }
    assert members(onnx_names, "onnx", ["up_blocks.1"], "unet") == onnx_names[:2]  # a prefix takes the whole block
    assert members(onnx_names, "onnx", ["up_blocks.1/."], "unet") == onnx_names[:1]
    tfl = ("export.converters._NamedOutputs/i2v_adapter.model.stage_modules.UNetStage_module/diffusers.x.UNetMotionModel_unet/"
           "diffusers.x.CrossAttnDownBlockMotion_0/diffusers.models.resnet.ResnetBlock2D_0/torch.nn.modules.conv.Conv2d_conv1;1")
    assert group_members([tfl, "serving_default_sample"], "tflite", depth=1) == {"CrossAttnDownBlockMotion_0": [tfl]}
    with pytest.raises(ValueError, match=r"unet \(tflite\): unknown layer group\(s\) \['down_blocks.0'\]"):
        members([tfl], "tflite", ["down_blocks.0"], "unet")
    assert for_format(["onnx:conv_in/.", "tflite:Conv2d_conv_in", "mid"], "onnx") == ["conv_in/.", "mid"]


# --- every recipe on both targets ------------------------------------------------------------


# int8-static is not a default recipe and needs its own calibration run: the slow lane.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "int8-static" else n for n in RECIPES])
def test_recipe_fidelity_sizes_and_manifest(name, quantized, session):
    out, manifest = quantized(name)
    assert verify_bundle(out) == manifest  # sizes and sha256 of every file, as written
    assert manifest["precision"] == name and manifest["targets"] == TARGETS
    assert manifest["quantization"]["recipe"]["name"] == name
    floor = FLOORS.get(name, REPORTED_FLOOR)
    for stage in STAGES:
        record = manifest["stages"][stage]
        assert record["precision"] == name
        for target in TARGETS:
            entry = record["targets"][target]
            assert entry["file"] == f"{stage}.{target}" and (out / entry["file"]).is_file()
            assert entry["quantization"]["recipe"] == RECIPES[name].default.to_dict()
            stage_floor = REPORTED_FLOORS.get((name, stage, target), floor)
            assert entry["parity"]["psnr_db"] >= stage_floor, f"{stage} {target}: {entry['parity']}"
            if stage == "unet" and name in DEFAULT_RECIPES:
                assert entry["parity"]["guidance_correlation"] >= 0.98, entry["parity"]
    for target in TARGETS:
        unet = manifest["stages"]["unet"]["targets"][target]["quantization"]
        assert unet["weight_ratio_to_fp32"] <= UNET_WEIGHT_LIMITS[name][target], unet
        size = manifest["quantization"]["sizes"][target]
        assert size["bytes"] < 0.7 * size["fp32_bytes"] and size["weight_bytes"] < 0.6 * size["fp32_weight_bytes"], size
        video = manifest["quantization"]["end_to_end"][target]
        assert video["frames"] == 8 and video["psnr_db_min"] <= video["psnr_db_mean"]
    calibration = manifest["quantization"]["calibration"]
    if RECIPES[name].needs_calibration:
        assert calibration["files"] == [f"calibration/{s}.npz" for s in STAGES]
        assert calibration["source"] == "i2v_adapter.pipeline.I2VPipeline" and calibration["samples"]["unet"] == 4
        with np.load(out / "calibration" / "unet.npz") as data:
            assert data["sample"].shape == (4, 2, 4, 8, 16, 16) and data["timestep"].shape == (4, 1)
            assert len(set(data["timestep"].ravel().tolist())) > 1  # several timesteps the sampler visits
    else:
        assert calibration is None and not (out / "calibration").exists()


@pytest.mark.parametrize("name", ["fp16", "w8a16"])
def test_quantized_bundle_runs_in_each_runtime(name, quantized, session):
    """Measured again here, independently: each stage file in its runtime vs the PyTorch stage."""
    out, manifest = quantized(name)
    refs = session.context.refs
    for target, runner_cls in (("onnx", OnnxRunner), ("tflite", LiteRTRunner)):
        specs = {s: refs[s].spec for s in STAGES}
        runner = runner_cls(specs, {s: out / manifest["stages"][s]["targets"][target]["file"] for s in STAGES})
        for stage in STAGES:
            got = runner.run(stage, refs[stage].feeds)[refs[stage].spec.output_names[0]]
            measured = psnr_db(got, refs[stage].output)
            assert measured == pytest.approx(manifest["stages"][stage]["targets"][target]["parity"]["psnr_db"], abs=1e-2)
            assert measured >= FLOORS[name]
        pipe = RuntimePipeline.from_bundle(out, target)  # verifies hashes, runs unchanged
        frames = pipe(session.video.image, session.video.prompt, num_inference_steps=2, progress=False).frames
        assert frames.shape == (8, 128, 128, 3) and frames.dtype == np.uint8


def test_fp16_onnx_keeps_fragile_ops_fp32(quantized):
    import onnx

    out, _ = quantized("fp16")
    model = onnx.load(str(out / "unet.onnx"))
    types = {i.name: i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types.values()
    norms = [n for n in model.graph.node if n.op_type in ("InstanceNormalization", "LayerNormalization", "Softmax")]
    casts_to_fp32 = {o for n in model.graph.node if n.op_type == "Cast" and n.attribute[0].i == onnx.TensorProto.FLOAT for o in n.output}
    assert norms and all(n.input[0] in casts_to_fp32 or n.input[0] in ("sample",) for n in norms[:5])


def test_w8a16_onnx_uses_int16_qdq_at_opset_21(quantized):
    import onnx

    out, _ = quantized("w8a16")
    model = onnx.load(str(out / "unet.onnx"))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 21
    zero_points = [i for i in model.graph.initializer if i.name.endswith("_zero_point") and i.data_type == onnx.TensorProto.INT16]
    assert zero_points, "expected int16 activation zero points"


# --- sensitivity and the mixed recipe -------------------------------------------------------------


@pytest.fixture(scope="module")
def unet_report(session, quantized, tmp_path_factory):
    quantized("int8-static")  # records calibration once, shared
    # depth 1 (whole UNet blocks): 11 groups, about a minute on 2 cores; the CLI default is depth 2 (33 groups)
    report = run_sensitivity(session, RECIPES["int8-static"], "unet", ["tflite"], depth=1, progress=False)
    out = tmp_path_factory.mktemp("sensitivity") / "unet"
    write_report(report, out)
    return out, report


@pytest.mark.slow
def test_sensitivity_report(unet_report):
    out, report = unet_report
    assert sorted(p.name for p in out.iterdir()) == ["sensitivity.json", "sensitivity.md", "sensitivity.png"]
    assert read_report(out) == json.loads(json.dumps(report))
    groups = report["targets"]["tflite"]["groups"]
    assert len(groups) >= 10 and {"CrossAttnDownBlockMotion_0", "Conv2d_conv_in"} <= {g["group"] for g in groups}
    drops = [g["drop_db"] for g in groups]
    assert drops == sorted(drops, reverse=True) and drops[0] > 0
    whole = report["targets"]["tflite"]["whole_stage"]["psnr_db"]
    assert all(g["psnr_db"] >= whole - 0.5 for g in groups[:3])  # one group hurts less than all of them
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 | `" in (out / "sensitivity.md").read_text()


@pytest.mark.slow
def test_keep_float_top_k_mixed_recipe(unet_report, session, tmp_path):
    out, report = unet_report
    mixed = keep_float_from_report(RECIPES["int8-static"], out, 3)
    top = [g["group"] for g in report["targets"]["tflite"]["groups"][:3]]
    assert mixed.name == "int8-static+keep-float-3" and mixed.float_groups("unet") == tuple(f"tflite:{g}" for g in top)
    manifest = session.quantize(mixed, tmp_path / "mixed", targets=["tflite"], evaluate_video=False)
    base = RECIPES["int8-static"]
    assert manifest["stages"]["unet"]["precision"] == "int8-static+float:3"
    mixed_psnr = manifest["stages"]["unet"]["targets"]["tflite"]["parity"]["psnr_db"]
    assert mixed_psnr >= 30.0, manifest["stages"]["unet"]["targets"]["tflite"]["parity"]
    assert base.name == "int8-static"


# --- bad input -----------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_file_and_wrong_hash_are_refused(fp32_bundle, tmp_path):
    broken = _copy(fp32_bundle, tmp_path / "missing")
    (broken / "unet.onnx").unlink()
    with pytest.raises(BundleError, match=r"missing files \['unet.onnx'\]"):
        quantize_bundle(broken, "fp16", tmp_path / "out", progress=False)
    _no_leftovers(tmp_path / "out")
    tampered = _copy(fp32_bundle, tmp_path / "tampered")
    data = bytearray((tampered / "vae_decoder.tflite").read_bytes())
    data[-1] ^= 0xFF
    (tampered / "vae_decoder.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="vae_decoder.tflite: sha256 mismatch"):
        quantize_bundle(tampered, "fp16", tmp_path / "out", progress=False)
    _no_leftovers(tmp_path / "out")


def test_unknown_recipe_and_unsupported_recipe(fp32_bundle, tmp_path, capsys):
    assert run_main(["--bundle", str(fp32_bundle), "--recipe", "int4", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "unknown recipe 'int4'" in capsys.readouterr().err
    dyn16 = Recipe("w8-dynamic16", StageRecipe(Weights.INT8, Activations.DYNAMIC_INT16))
    for target, why in (("onnx", "DynamicQuantizeLinear produces 8-bit activations only"), ("tflite", "dynamic-range kernels")):
        with pytest.raises(UnsupportedRecipeError, match=f"recipe 'w8-dynamic16' cannot run on target '{target}'.*{why}"):
            quantize_bundle(fp32_bundle, dyn16, tmp_path / "o", targets=[target], progress=False)
    fp16_weights = Recipe("fp16-weights", StageRecipe(Weights.FP16, Activations.FLOAT))
    with pytest.raises(UnsupportedRecipeError, match="cannot run on target 'onnx'.*float16 conversion casts activations"):
        quantize_bundle(fp32_bundle, fp16_weights, tmp_path / "o", progress=False)
    _no_leftovers(tmp_path / "o")


def test_existing_output_needs_overwrite(fp32_bundle, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        quantize_bundle(fp32_bundle, "fp16", out, progress=False)
    assert run_main(["--bundle", str(fp32_bundle), "--recipe", "fp16", "--out", str(out), "--quiet"]) == 2
    assert "output already exists" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    # --overwrite replaces only a bundle this project wrote (or an empty folder): a user's folder stays.
    assert run_main(["--bundle", str(fp32_bundle), "--recipe", "fp16", "--out", str(out), "--overwrite", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"error: refusing to overwrite {out}: --overwrite replaces only a bundle this project wrote (manifest.json with "
        "created_by 'i2v-adapter-mobile ...') or an empty folder, and this folder holds keep.txt (no manifest.json); "
        "nothing was deleted\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_output_may_not_hold_or_be_inside_the_input(fp32_bundle, tmp_path, capsys):
    """Refused before any work, with or without --overwrite: the input's parent, the input itself, inside it."""
    cases = [
        (fp32_bundle.parent, f"--out {fp32_bundle.parent} contains the input --bundle {fp32_bundle}: expected an output "
                             "outside it (replacing the output would delete the input)"),
        (fp32_bundle, f"--out {fp32_bundle} is the input --bundle {fp32_bundle}: expected an output apart from its input"),
        (fp32_bundle / "fp16", f"--out {fp32_bundle / 'fp16'} is inside the input --bundle {fp32_bundle}: expected an "
                               "output outside it (writing the output would change the input)"),
    ]
    before = sorted(p.name for p in fp32_bundle.parent.iterdir())
    for out, message in cases:
        assert run_main(["--bundle", str(fp32_bundle), "--recipe", "fp16", "--out", str(out), "--overwrite", "--quiet"]) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
        with pytest.raises(ValueError, match="expected an output"):
            quantize_bundle(fp32_bundle, "fp16", out, overwrite=True, progress=False)
    assert sorted(p.name for p in fp32_bundle.parent.iterdir()) == before
    verify_bundle(fp32_bundle)


def test_floor_failure_writes_nothing(session, tmp_path):
    strict = Recipe("fp16-strict", RECIPES["fp16"].default, min_psnr_db=150.0)
    with pytest.raises(QuantizationParityError, match=r"fp16-strict.*unet onnx: PSNR \d+\.\d dB < 150 dB"):
        session.quantize(strict, tmp_path / "strict", targets=["onnx"], evaluate_video=False)
    _no_leftovers(tmp_path / "strict")


def test_cli_writes_a_bundle_with_overrides(fp32_bundle, quantized, tmp_path, capsys):
    calib_source, _ = quantized("w8a16")
    out = tmp_path / "cli"
    argv = ["--bundle", str(fp32_bundle), "--recipe", "w8a16", "--stage-recipe", "vae_decoder=fp16", "--targets", "onnx",
            "--calibration", str(calib_source), "--no-video", "--out", str(out), "--quiet"]
    assert run_main(argv) == 0
    printed = capsys.readouterr().out
    assert "vae_decoder   onnx    fp16" in printed and "onnx total:" in printed
    manifest = verify_bundle(out)
    assert manifest["targets"] == ["onnx"] and manifest["stages"]["vae_decoder"]["precision"] == "fp16"
    assert manifest["quantization"]["calibration"]["source"].startswith("loaded from")
    assert run_main(["--bundle", str(fp32_bundle), "--recipe", "w8a16", "--keep-float", "2", "--out", str(tmp_path / "k")]) == 2
    assert "--keep-float K needs --sensitivity" in capsys.readouterr().err
