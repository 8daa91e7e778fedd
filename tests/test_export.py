"""Export to ONNX and TFLite: bundle layout and hashes, IO specs against the stage contract, parity
figures and the gate, bad input, overwrite refusal, interrupted exports, NPU graph options.

The tiny bundles are built once per module (one per target); each takes seconds to a minute on 2 cores.
"""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from export import exporter
from export.build import main
from export.chunking import chunks_needed, plan_chunks
from export.converters import TFLiteSizeError, weight_bytes
from export.exporter import Checkpoints, ExportOptions, export_bundle, plan_export
from export.graph_options import DecomposedGroupNorm, decompose_groupnorm, sdpa_as_matmul
from i2v_core import parity
from i2v_core.bundle import BundleError, load_manifest, sha256_file, verify_bundle
from i2v_core.config import get_preset
from i2v_core.stages import stage_specs
from i2v_core.tokenizer import CLIPTokenizer

REPO = Path(__file__).resolve().parents[1]
STAGES = ["text_encoder", "vae_encoder", "unet", "vae_decoder"]


@pytest.fixture(scope="module")
def onnx_bundle(tiny_bundle):
    """The session's shared bundle (ONNX and TFLite, exported through the CLI; see conftest)."""
    return tiny_bundle


@pytest.fixture(scope="module")
def npu_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "npu"
    export_bundle(ExportOptions(out=out, targets=("onnx",), decompose_groupnorm=True, matmul_attention=True))
    return out


@pytest.fixture(params=["onnx", "tflite"])
def bundle(request, tiny_bundle):
    return request.param, tiny_bundle


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")] == []


# --- the bundle ------------------------------------------------------------------------------------


def test_manifest_hashes_match_files(bundle):
    target, path = bundle
    manifest = verify_bundle(path)
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert on_disk == sorted([*manifest["files"], "manifest.json"])
    for rel, record in manifest["files"].items():
        assert record["bytes"] == (path / rel).stat().st_size > 0
        assert record["sha256"] == sha256_file(path / rel)
    assert sorted(f for f in on_disk if f.endswith(f".{target}")) == sorted(f"{s}.{target}" for s in STAGES)
    assert sorted(f for f in on_disk if not f.startswith("tokenizer/") and f != "manifest.json") == sorted(
        f"{s}.{t}" for s in STAGES for t in manifest["targets"]
    )


def test_manifest_records_config_and_defaults(onnx_bundle):
    cfg = get_preset("tiny")
    m = load_manifest(onnx_bundle)
    assert m["schema_version"] == 1 and m["precision"] == "fp32" and m["targets"] == ["onnx", "tflite"]
    assert m["preset"] == {"name": "tiny", "config": json.loads(json.dumps(cfg.to_dict()))}
    assert m["scheduler"]["beta_start"] == 0.00085 and m["scheduler"]["class_name"] == "DDIMScheduler"
    assert m["fsp"]["mask_p"] == 0.5 and m["sampling"]["num_inference_steps"] == 10
    from i2v_adapter.checkpoints.shipped import shipped_record

    assert m["weights"] == {"source": "embedded-default", "seed": 0, "trained": shipped_record(get_preset("tiny"))}
    assert m["weights"]["trained"]["folder"] == "i2v_adapter/weights/tiny"  # the trained default, by hash
    assert m["graph_options"]["attention"] == "fused" and m["graph_options"]["decompose_groupnorm"] is False
    for record in m["stages"].values():
        usage = record["targets"]["onnx"]["export"]
        assert usage["seconds"] > 0 and usage["peak_rss_mb"] > 100


def test_tokenizer_files_round_trip(onnx_bundle):
    m = load_manifest(onnx_bundle)
    assert "tokenizer/vocab.json" in m["tokenizer"]["files"] and "tokenizer/merges.txt" in m["tokenizer"]["files"]
    copy = CLIPTokenizer.from_files(onnx_bundle / "tokenizer/vocab.json", onnx_bundle / "tokenizer/merges.txt")
    text = "a red ball rolls to the right"
    assert np.array_equal(copy.encode(text), CLIPTokenizer.from_bpe_file().encode(text))


def test_io_specs_equal_the_stage_contract(bundle):
    target, path = bundle
    specs = stage_specs(get_preset("tiny"))
    m = load_manifest(path)
    assert list(m["stages"]) == STAGES
    for name, record in m["stages"].items():
        assert record["io"] == specs[name].to_dict()
        model = path / record["targets"][target]["file"]
        inputs, outputs = _model_io(target, model)
        assert inputs == {t.name: (list(t.shape), t.dtype) for t in specs[name].inputs}
        assert outputs == {t.name: (list(t.shape), t.dtype) for t in specs[name].outputs}


def _model_io(target: str, model: Path) -> tuple[dict, dict]:
    """Names, shapes and dtypes the exported file itself declares."""
    if target == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        dtype = {"tensor(float)": "float32", "tensor(int32)": "int32"}
        io = [{t.name: (list(t.shape), dtype[t.type]) for t in ts} for ts in (session.get_inputs(), session.get_outputs())]
        return io[0], io[1]
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(model)).get_signature_runner("serving_default")
    io = [
        {name: (d["shape"].tolist(), np.dtype(d["dtype"]).name) for name, d in ds.items()}
        for ds in (details.get_input_details(), details.get_output_details())
    ]
    return io[0], io[1]


def test_parity_figures_pass_the_gate(bundle):
    target, path = bundle
    m = load_manifest(path)
    assert m["parity"]["min_psnr_db"] == 60.0 and m["parity"]["min_guidance_correlation"] == 0.99
    for name, record in m["stages"].items():
        figures = record["targets"][target]["parity"]
        assert figures["psnr_db"] >= 100.0, (name, figures)  # fp32: rounding only
        assert 0 < figures["max_abs"] < 1e-4, (name, figures)
    unet = m["stages"]["unet"]["targets"][target]["parity"]
    assert unet["guidance_correlation"] >= 0.999
    std = unet["guidance_std"]
    assert std["pytorch"] > 0.01 and abs(std["exported"] - std["pytorch"]) < 1e-4 * std["pytorch"]


def test_verify_bundle_names_the_tampered_file(onnx_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(onnx_bundle, copy)
    original = sha256_file(copy / "unet.onnx")
    data = bytearray((copy / "unet.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "unet.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"unet.onnx: sha256 mismatch: manifest has {original}, file has [0-9a-f]{{64}}"):
        verify_bundle(copy)
    shutil.copy(onnx_bundle / "unet.onnx", copy / "unet.onnx")
    (copy / "notes.txt").write_text("stray")
    with pytest.raises(BundleError, match=r"files not in the manifest \['notes.txt'\]"):
        verify_bundle(copy)


def test_bundle_reading_is_torch_free():
    code = (
        "import sys; import i2v_core.bundle, i2v_core.manifest, i2v_core.parity, i2v_core.runners, i2v_core.measure; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- parity definition and gate ------------------------------------------------------------------


def test_psnr_is_relative_to_the_reference_range():
    ref = np.linspace(-2.0, 2.0, 1000)  # peak-to-peak 4
    assert parity.psnr_db(ref + 4e-3, ref) == pytest.approx(60.0)
    assert parity.psnr_db(ref, ref) == parity.PSNR_CAP_DB
    assert parity.correlation(ref, 3 * ref + 1) == pytest.approx(1.0)


def test_parity_failure_fails_the_build_and_writes_nothing(tmp_path, monkeypatch):
    def swapped_cfg(path, feeds, names):  # cond and uncond exchanged: PSNR and guidance both fail
        from i2v_core.runners import run_onnx

        result = run_onnx(path, feeds, names)
        return {k: v[::-1].copy() for k, v in result.items()}

    monkeypatch.setitem(exporter.RUNNERS, "onnx", swapped_cfg)
    out = tmp_path / "b"
    with pytest.raises(parity.ParityError, match=r"unet exported to onnx fails the parity gate: PSNR -?\d+\.\d dB < 60 dB .*correlation -1\.0000 < 0\.99"):
        export_bundle(ExportOptions(out=out, targets=("onnx",), stages=("unet",)))
    _no_leftovers(out)


def test_failed_conversion_leaves_no_bundle(tmp_path, monkeypatch):
    real = exporter.export_stage

    def fail_on_unet(target, module, spec, *args, **kwargs):
        if spec.name == "unet":
            raise RuntimeError("injected converter failure")
        return real(target, module, spec, *args, **kwargs)

    monkeypatch.setattr(exporter, "export_stage", fail_on_unet)  # the name the exporter calls
    out = tmp_path / "b"
    with pytest.raises(RuntimeError, match="injected converter failure"):
        export_bundle(ExportOptions(out=out, targets=("onnx",), stages=("text_encoder", "unet")))
    _no_leftovers(out)


def test_interrupted_cli_leaves_no_bundle(tmp_path):
    out = tmp_path / "b"
    proc = subprocess.Popen(
        [sys.executable, "-m", "export.build", "--target", "onnx", "--out", str(out), "--quiet"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".b.") for p in tmp_path.iterdir()):  # the temporary bundle exists
            assert proc.poll() is None and time.monotonic() < deadline, "export ended before it could be interrupted"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
    _no_leftovers(out)


# Lines the native libraries (absl, TensorFlow, XNNPACK) write to stderr themselves, outside Python.
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} |INFO: Created TensorFlow Lite)")


@pytest.mark.parametrize("when", ["while importing", "during the first TFLite conversion"])
def test_ctrl_c_ends_a_tflite_export_with_one_line(tmp_path, when):
    """SIGINT is honoured wherever it lands: in the imports (which would print a traceback from
    inside a library) and inside litert-torch's conversion (which used to swallow it and export to
    the end): exit 130, the one line `interrupted`, no bundle and no temporary folder."""
    out = tmp_path / "X"
    proc = subprocess.Popen(
        [sys.executable, "-m", "export.build", "--target", "tflite", "--stages", "vae_decoder", "--out", str(out), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if when == "while importing":
            time.sleep(2.0)
        else:
            deadline = time.monotonic() + 120
            while not any(p.name.startswith(".X.") for p in tmp_path.iterdir()):  # conversion starts now
                assert proc.poll() is None and time.monotonic() < deadline, "export ended before it could be interrupted"
                time.sleep(0.05)
            time.sleep(2.0)  # inside litert_torch.convert
        assert proc.poll() is None, "export ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert [line for line in stderr.splitlines() if not NATIVE_LOG.match(line)] == ["interrupted"], stderr
    assert stdout == ""
    _no_leftovers(out)
    assert list(tmp_path.iterdir()) == []


def test_adapter_checkpoint_is_what_gets_exported(onnx_bundle, tmp_path):
    from i2v_adapter.checkpoints.io import save_i2v_adapter
    from i2v_adapter.model.adapter import adapter_parameters
    from i2v_adapter.model.components import build_unet
    from i2v_core.runners import run_onnx

    unet = build_unet(get_preset("tiny"))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in adapter_parameters(unet):
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    weights = save_i2v_adapter(unet, tmp_path / "i2v.safetensors")
    out = tmp_path / "b"
    m = export_bundle(ExportOptions(out=out, targets=("onnx",), stages=("unet",), checkpoints=Checkpoints(adapter=weights)))
    assert m["weights"]["source"] == "checkpoints" and m["weights"]["checkpoints"] == {"adapter": str(weights)}
    assert m["stages"]["unet"]["targets"]["onnx"]["parity"]["psnr_db"] >= 100.0
    spec = stage_specs(get_preset("tiny"))["unet"]
    feeds = spec.sample_inputs(0)
    loaded = run_onnx(out / "unet.onnx", feeds, spec.output_names)["noise_pred"]
    default = run_onnx(onnx_bundle / "unet.onnx", feeds, spec.output_names)["noise_pred"]
    assert np.abs(loaded - default).max() > 1e-2  # the adapter weights changed the exported model


# --- bad input: one clear error before any weight is built ----------------------------------------


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"preset": "huge"}, ValueError, r"unknown preset 'huge': expected one of tiny, sd15, mobile"),
        ({"stages": ("unet", "vea")}, ValueError, r"unknown stage\(s\) \['vea'\] for preset 'tiny': expected some of text_encoder"),
        ({"height": 120}, ValueError, r"height must be a multiple of 16 \(VAE x8, UNet x2\), got 120"),
        ({"width": 100}, ValueError, r"width must be a multiple of 16 .* got 100"),
        ({"frames": 30}, ValueError, r"num_frames must be in \[1, 24\] .* got 30"),
        ({"targets": ("coreml",)}, ValueError, r"unknown target\(s\) \['coreml'\]"),
        ({"preset": "mobile"}, ValueError, r"preset 'mobile' needs checkpoints .* or --random-weights"),
        ({"checkpoints": Checkpoints(adapter=Path("/nonexistent/i2v.safetensors"))}, FileNotFoundError, "adapter checkpoint not found"),
        (
            {"preset": "sd15", "random_weights": True, "targets": ("tflite",), "stages": ("unet",), "unet_chunks": 1},
            TFLiteSizeError,
            r"unet has 5\.\d\d GB of fp32 weights; a TFLite flatbuffer holds at most 2\.15 GB.*fp16.*int8.*--unet-chunks",
        ),
        (
            {"preset": "sd15", "random_weights": True, "targets": ("tflite",), "stages": ("unet",), "unet_chunks": 2},
            TFLiteSizeError,
            r"unet chunk \d of 2 has [23]\.\d\d GB of fp32 weights",
        ),
        ({"attention_chunk_mb": 0.0}, ValueError, r"expected --attention-chunk-mb to be a positive number of MB, got 0\.0"),
        ({"unet_chunks": 9}, ValueError, r"expected between 1 and 7 UNet chunks \(one per block at most\), got 9"),
    ],
)
def test_bad_input_fails_before_heavy_work(tmp_path, monkeypatch, changes, error, match):
    def forbidden(*args, **kwargs):
        raise AssertionError("components were built before the input was checked")

    monkeypatch.setattr(exporter, "_load_components", forbidden)
    with pytest.raises(error, match=match):
        export_bundle(ExportOptions(out=tmp_path / "b", **changes))
    _no_leftovers(tmp_path / "b")


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["--stages", "unet,nope", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown stage(s) ['nope']") and err.count("\n") == 1


def test_existing_output_is_refused_without_overwrite(onnx_bundle, capsys):
    before = sha256_file(onnx_bundle / "manifest.json")
    with pytest.raises(FileExistsError) as err:
        plan_export(ExportOptions(out=onnx_bundle))
    assert str(err.value) == f"output already exists: {onnx_bundle} (pass --overwrite to replace it)"
    assert main(["--target", "onnx", "--out", str(onnx_bundle)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert sha256_file(onnx_bundle / "manifest.json") == before
    plan_export(ExportOptions(out=onnx_bundle, overwrite=True))  # allowed with --overwrite


def test_overwrite_refuses_a_folder_the_project_did_not_write(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert main(["--target", "onnx", "--out", str(user), "--overwrite"]) == 2
    assert capsys.readouterr().err == (
        f"error: refusing to overwrite {user}: --overwrite replaces only a bundle this project wrote (manifest.json "
        "with created_by 'i2v-adapter-mobile ...') or an empty folder, and this folder holds notes.txt (no "
        "manifest.json); nothing was deleted\n"
    )
    assert [p.name for p in user.iterdir()] == ["notes.txt"] and (user / "notes.txt").read_text() == "keep me"


def test_output_may_not_hold_or_be_inside_a_checkpoint(tmp_path):
    sd15 = tmp_path / "ckpt" / "sd15"
    sd15.mkdir(parents=True)
    for out, how in ((tmp_path / "ckpt", "contains"), (sd15 / "bundle", "is inside")):
        with pytest.raises(ValueError, match=rf"^--out .* {how} the input --sd15 {sd15}: expected an output outside it"):
            plan_export(ExportOptions(out=out, preset="sd15", checkpoints=Checkpoints(sd15=sd15), overwrite=True))
    assert [p.name for p in sd15.parent.iterdir()] == ["sd15"] and not any(sd15.iterdir())


# --- NPU-friendly graph options --------------------------------------------------------------------


def test_npu_options_keep_parity_and_remove_groupnorm(npu_bundle, onnx_bundle):
    import onnx

    m = verify_bundle(npu_bundle)
    assert m["graph_options"]["decompose_groupnorm"] is True and m["graph_options"]["matmul_attention"] is True
    for name, record in m["stages"].items():
        assert record["targets"]["onnx"]["parity"]["psnr_db"] >= 100.0, name
    assert m["stages"]["unet"]["targets"]["onnx"]["parity"]["guidance_correlation"] >= 0.999
    for stage in ("unet", "vae_decoder"):
        default_ops = {n.op_type for n in onnx.load(onnx_bundle / f"{stage}.onnx").graph.node}
        npu_ops = {n.op_type for n in onnx.load(npu_bundle / f"{stage}.onnx").graph.node}
        assert "InstanceNormalization" in default_ops  # how the exporter writes GroupNorm at opset 17
        assert "InstanceNormalization" not in npu_ops and "GroupNormalization" not in npu_ops
        assert "ReduceMean" in npu_ops


def test_decomposed_groupnorm_matches_torch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1), torch.nn.GroupNorm(4, 16), torch.nn.GroupNorm(2, 16, affine=False))
    with torch.no_grad():
        model[1].weight.normal_()
        model[1].bias.normal_()
    x = torch.randn(2, 8, 5, 7)
    with torch.no_grad():
        ref = model(x)
        assert decompose_groupnorm(model) == 2
        assert all(isinstance(model[i], DecomposedGroupNorm) for i in (1, 2))
        assert torch.allclose(model(x), ref, atol=1e-5)
        assert torch.allclose(model[2](torch.randn(3, 16, 4, 2, 2)).mean(), torch.tensor(0.0), atol=1e-5)  # 5-D input


@pytest.mark.parametrize("mask", [None, "bool", "additive", "causal"])
def test_matmul_attention_matches_sdpa(mask):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=gen) for _ in range(3))
    kwargs = {}
    if mask == "bool":
        kwargs["attn_mask"] = torch.rand(6, 6, generator=gen) > 0.3
        kwargs["attn_mask"][:, 0] = True  # every query keeps one key
    elif mask == "additive":
        kwargs["attn_mask"] = torch.randn(6, 6, generator=gen)
    elif mask == "causal":
        kwargs["is_causal"] = True
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)
    assert torch.allclose(sdpa_as_matmul(q, k, v, **kwargs), ref, atol=1e-6)


def test_content_adapter_adds_the_image_encoder_stage(tmp_path):
    out = tmp_path / "ca"
    assert main(["--target", "onnx", "--content-adapter", "--stages", "image_encoder,unet", "--out", str(out), "--quiet"]) == 0
    m = verify_bundle(out)
    assert list(m["stages"]) == ["image_encoder", "unet"]
    assert [t["name"] for t in m["stages"]["unet"]["io"]["inputs"]][-1] == "image_embeds"
    for stage in ("image_encoder", "unet"):
        assert m["stages"][stage]["targets"]["onnx"]["parity"]["psnr_db"] >= 60.0
    assert main(["--target", "onnx", "--ip-adapter", str(tmp_path / "ip.safetensors"), "--out", str(tmp_path / "x")]) == 2


# --- UNet chunks -------------------------------------------------------------------------------------


def test_chunk_plan_is_contiguous_balanced_and_exact():
    sizes = [1, 5, 5, 1, 8, 2, 2]
    for n in range(1, len(sizes) + 1):
        runs = plan_chunks(sizes, n)
        assert len(runs) == n and runs[0][0] == 0 and runs[-1][1] == len(sizes)
        assert all(a < b for a, b in runs) and all(runs[i][1] == runs[i + 1][0] for i in range(n - 1))
    assert max(sum(sizes[a:b]) for a, b in plan_chunks(sizes, 2)) == 12  # [1,5,5,1] | [8,2,2]
    assert chunks_needed(sizes, 13) == 2 and chunks_needed(sizes, 9) == 4
    with pytest.raises(ValueError, match="expected between 1 and 7 UNet chunks"):
        plan_chunks(sizes, 8)
    with pytest.raises(ValueError, match="one UNet block has"):
        chunks_needed(sizes, 8)


@pytest.mark.parametrize("image", [False, True], ids=["text", "text+image"])
def test_chunks_reproduce_the_unet_exactly(image):
    from export.chunking import build_chunks, run_chunks
    from i2v_adapter.info import tiny_image_encoder
    from i2v_adapter.model.components import build_components
    from i2v_adapter.model.stage_modules import sample_torch_inputs, stage_modules

    cfg = get_preset("tiny")
    if image:
        cfg = cfg.with_overrides(image_encoder=tiny_image_encoder())
    stage = stage_modules(build_components(cfg))["unet"]
    spec = stage_specs(cfg)["unet"]
    args = sample_torch_inputs(spec, 0)
    with torch.no_grad():
        ref = stage(*args)
    n_units = len(build_chunks(stage, spec, 1)[0].units)
    for n in (2, 3, n_units):
        chunks = build_chunks(stage, spec, n)
        names = [u.name for c in chunks for u in c.units]
        assert len(chunks) == n and names[0] == "prelude" and names[-1] == "postlude" and len(names) == n_units
        io = run_chunks(chunks, dict(zip(spec.input_names, args)))
        assert torch.equal(io[-1][1]["noise_pred"], ref)
        # every chunk input is a stage input or an earlier chunk's output
        available = set(spec.input_names)
        for chunk in chunks:
            assert set(chunk.input_names) <= available
            available |= set(chunk.output_names)
    # a chunk holds only its own weights
    chunks = build_chunks(stage, spec, 3)
    assert sum(weight_bytes(c) for c in chunks) == weight_bytes(stage.unet)


@pytest.fixture(scope="module")
def chunked_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "chunked"
    assert main(["--target", "all", "--stages", "unet", "--unet-chunks", "2", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_chunked_unet_bundle_runs_in_the_runtime(chunked_bundle, target, onnx_bundle):
    from runtime_py.runners import bundle_runner

    m = verify_bundle(chunked_bundle)
    assert m["graph_options"]["unet_chunks"] == 2
    entry = m["stages"]["unet"]["targets"][target]
    chunks = entry["chunks"]
    assert [c["name"] for c in chunks] == ["unet.chunk0", "unet.chunk1"]
    assert [entry["file"], *entry["extra_files"]] == [c["file"] for c in chunks]
    assert chunks[0]["units"][0] == "prelude" and chunks[-1]["units"][-1] == "postlude"
    assert all(c["parity"]["psnr_db"] >= 60.0 for c in chunks)
    assert entry["parity"]["psnr_db"] >= 60.0 and entry["parity"]["guidance_correlation"] >= 0.99
    # the runtime chains the chunks and gets what the one-file UNet gives
    spec_feeds = bundle_runner(chunked_bundle, m, target).specs["unet"].sample_inputs(3)
    chained = bundle_runner(chunked_bundle, m, target).run("unet", spec_feeds)["noise_pred"]
    whole_manifest = load_manifest(onnx_bundle)
    whole = bundle_runner(onnx_bundle, whole_manifest, "onnx").run("unet", spec_feeds)["noise_pred"]
    assert parity.psnr_db(chained, whole) >= 60.0


def test_tflite_unet_too_large_needs_chunks(tmp_path):
    with pytest.raises(TFLiteSizeError, match=r"unet has 5\.\d\d GB of fp32 weights"):
        plan_export(ExportOptions(out=tmp_path / "b", preset="mobile", random_weights=True, targets=("tflite",), stages=("unet",), unet_chunks=1))
    plan = plan_export(ExportOptions(out=tmp_path / "b", preset="mobile", random_weights=True, targets=("tflite",), stages=("unet",)))
    assert plan.unet_chunks == 4  # automatic: each chunk under 1.8 GB of fp32 weights


# --- --precision (export, then quantize) ------------------------------------------------------------


def test_precision_exports_then_quantizes_and_leaves_only_the_bundle(tmp_path):
    # Two small stages keep this the CLI path's test (no UNet, so no end-to-end video); quantizing the
    # UNet and the video fidelity are tests/test_quantize.py's.
    out = tmp_path / "q"
    stages = ["text_encoder", "vae_decoder"]
    argv = ["--target", "tflite", "--stages", ",".join(stages), "--precision", "int8-weight-only", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    m = verify_bundle(out)
    assert m["precision"] == "int8-weight-only" and list(m["stages"]) == stages
    for stage in stages:
        assert m["stages"][stage]["targets"]["tflite"]["parity"]["psnr_db"] >= 30.0
    assert m["quantization"]["end_to_end"] == {"skipped": "a video needs every stage; the bundle has no vae_encoder, unet"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q"]  # the fp32 work folder is gone


@pytest.mark.parametrize(
    "args, match",
    [
        (["--precision", "int3"], r"unknown recipe 'int3'"),
        (["--precision", "fp16", "--stages", "unet", "--unet-chunks", "2"], r"--precision fp16 with a UNet in 2 chunks is not supported"),
    ],
)
def test_precision_bad_input_is_one_error_and_writes_nothing(tmp_path, capsys, args, match):
    out = tmp_path / "q"
    assert main(["--target", "onnx", *args, "--out", str(out), "--quiet"]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# --- full size (RUN_LARGE_TESTS=1) ------------------------------------------------------------------


@pytest.mark.large
def test_mobile_encoders_and_decoder_export_to_onnx(tmp_path):
    out = tmp_path / "mobile-small"
    stages = ("text_encoder", "vae_encoder", "vae_decoder")
    m = export_bundle(ExportOptions(out=out, preset="mobile", random_weights=True, targets=("onnx",), stages=stages))
    for stage in stages:
        assert m["stages"][stage]["targets"]["onnx"]["parity"]["psnr_db"] >= 60.0
    verify_bundle(out)


@pytest.mark.large
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_mobile_unet_exports_in_chunks(tmp_path, target):
    """Measured 2026-11-25 (onnx): 4 chunks, 137.6 dB, guidance correlation 1.000000, 24 min wall and
    22.0 GB peak RSS on the 2-core, 24 GB machine with other work beside it."""
    out = tmp_path / "mobile"
    m = export_bundle(ExportOptions(out=out, preset="mobile", random_weights=True, targets=(target,), stages=("unet",)))
    entry = m["stages"]["unet"]["targets"][target]
    assert [c["name"] for c in entry["chunks"]] == [f"unet.chunk{i}" for i in range(4)]
    assert all(m["files"][c["file"]]["bytes"] < 2 * 1024**3 for c in entry["chunks"])
    assert entry["parity"]["psnr_db"] >= 60.0 and entry["parity"]["guidance_correlation"] >= 0.99
    verify_bundle(out)


@pytest.mark.large
def test_sd15_exports_to_tflite_with_chunked_attention(tmp_path):
    """Measured 2026-12-01: every stage, UNet in 4 chunks, 130.8 dB, guidance correlation 1.000000, 28 min
    wall on the 2-core, 24 GB machine beside a training job. Without --attention-chunk-mb the parity run
    needs one 17 GB score tensor per spatial attention."""
    out = tmp_path / "sd15"
    m = export_bundle(ExportOptions(out=out, preset="sd15", random_weights=True, targets=("tflite",),
                                    attention_chunk_mb=1024))
    assert m["graph_options"]["attention_chunk_mb"] == 1024
    for stage, record in m["stages"].items():
        assert record["targets"]["tflite"]["parity"]["psnr_db"] >= 60.0, stage
    entry = m["stages"]["unet"]["targets"]["tflite"]
    assert len(entry["chunks"]) == 4 and entry["parity"]["guidance_correlation"] >= 0.99
    verify_bundle(out)
