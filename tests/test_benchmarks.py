"""Benchmarks: the host run's output structure (never its times), the phone runner against a fake adb,
benchmark_model output parsing, MAC counting on graphs small enough to count by hand, derived ratios."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_bundle

from benchmarks import derive
from benchmarks.bundles import QUANTIZE_MISSING, Bundle, ModelSet, quantize_all
from benchmarks.device import main as device_main
from benchmarks.estimate import count_onnx, count_stages, count_torch, estimate_stage
from benchmarks.litert_output import BenchmarkOutputError, parse_benchmark_output
from benchmarks.options import BenchmarkOptions, plan_benchmark
from benchmarks.results import SCHEMA, load_results
from benchmarks.run import main as run_main
from benchmarks.run import run_benchmark
from benchmarks.stats import LatencyStats
from i2v_core.config import get_preset
from i2v_core.stages import StageSpec, stage_specs

FAKE_ADB = Path(__file__).parent / "fake_adb"
RUN_STAGES = ("vae_decoder",)


# --------------------------------------------------------------------------------------------------
# Host run on tiny: one repetition, two small stages, three backends; structure only
# --------------------------------------------------------------------------------------------------


class _FakeQuantize:
    """Stands in for `quantize.api` (its own tests cover it): the fp32 bundle copied, relabelled, with a
    recorded PSNR, so the benchmark's precision axis runs end to end in seconds."""

    @staticmethod
    def quantize_bundle(bundle_dir, recipe, out_dir, **kwargs):
        shutil.copytree(bundle_dir, out_dir)
        manifest = json.loads((Path(out_dir) / "manifest.json").read_text())
        manifest["precision"] = recipe
        for record in manifest["stages"].values():
            for entry in record["targets"].values():
                entry["parity"] = {"psnr_db": 45.0}
        (Path(out_dir) / "manifest.json").write_text(json.dumps(manifest))
        return manifest


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import benchmarks.bundles as bundles

    out = tmp_path_factory.mktemp("bench") / "tiny"
    options = BenchmarkOptions(out=out, stages=RUN_STAGES, precisions=("fp32", "fp16"), warmup=0, repeats=1,
                               threads=1, adapter_cost=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bundles, "quantize_api", lambda: _FakeQuantize)
        results = run_benchmark(options)
    return out, results


def test_run_writes_results_report_and_plot(tiny_run):
    out, results = tiny_run
    on_disk = load_results(out)
    assert on_disk["schema"] == SCHEMA and on_disk["kind"] == "host"
    assert on_disk["settings"]["threads"] == 1 and on_disk["settings"]["repeats"] == 1
    assert on_disk["versions"]["onnxruntime"] and on_disk["versions"]["torch"]
    assert on_disk["machine"]["cpu_count"] == os.cpu_count()
    assert on_disk["bundles"] == {"fp32": "work/bundle-fp32", "fp16": "work/bundle-fp16"}
    assert (out / "work" / "bundle-fp32" / "manifest.json").is_file()
    report = (out / "report.md").read_text()
    for heading in ("## Latency per stage", "## Runtime / PyTorch eager", "## Phone estimate", "## Plots"):
        assert heading in report
    assert (out / "plots" / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert on_disk["plots"]["latency per stage and backend"][0] == "plots/latency.png"


def test_run_rows_one_per_stage_backend_precision(tiny_run):
    _, results = tiny_run
    rows = {(r["stage"], r["backend"], r["precision"]): r for r in results["rows"]}
    assert set(rows) == {(s, b, p) for s in RUN_STAGES for b in ("torch", "onnx", "tflite") for p in ("fp32", "fp16")}
    for stage in RUN_STAGES:
        for backend in ("torch", "onnx", "tflite"):
            row = rows[(stage, backend, "fp32")]
            assert row["status"] == "ok", row
            lat = row["latency_ms"]
            assert lat["runs"] == 1 and lat["p10_ms"] <= lat["median_ms"] <= lat["p90_ms"]
            assert row["size_bytes"] > 0
            assert row["peak_rss_mb"] >= row["baseline_rss_mb"] > 0
        assert rows[(stage, "torch", "fp16")]["status"] == "skipped"
    # fp32 PyTorch stage sizes are the parameter bytes of the module
    assert rows[("vae_decoder", "onnx", "fp32")]["psnr_db"] > 60


def test_run_quantized_precision_rows_and_size_psnr_plot(tiny_run):
    out, results = tiny_run
    fp16 = [r for r in results["rows"] if r["precision"] == "fp16" and r["backend"] != "torch"]
    assert len(fp16) == 2 * len(RUN_STAGES) and all(r["status"] == "ok" and r["psnr_db"] == 45.0 and r["size_bytes"] > 0 for r in fp16)
    assert (out / "plots" / "size_psnr.png").read_bytes()[:4] == b"\x89PNG"
    assert "| fp16 | `vae_decoder` | onnx |" in (out / "report.md").read_text()


def test_run_estimate_counts_the_exported_graphs(tiny_run):
    out, results = tiny_run
    stages = results["estimate"]["stages"]
    assert set(stages) == set(RUN_STAGES)
    assert all(s["source"] == "onnx" and s["macs"] > 0 and not s["uncounted"] for s in stages.values())
    # The ONNX graph walk and the meta-device count agree on the same stage.
    meta = count_torch("tiny", "vae_decoder")
    assert stages["vae_decoder"]["macs"] == meta["macs"]
    assert stages["vae_decoder"]["weight_bytes"] == pytest.approx(meta["weight_bytes"], rel=0.02)


def test_plan_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="--allow-large"):
        plan_benchmark(BenchmarkOptions(out=tmp_path / "m", preset="mobile"), 2)
    with pytest.raises(ValueError, match=r"unknown backend\(s\) \['tensorrt'\]"):
        plan_benchmark(BenchmarkOptions(out=tmp_path / "b", backends=("torch", "tensorrt")), 2)
    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['decoder'\]"):
        plan_benchmark(BenchmarkOptions(out=tmp_path / "s", stages=("decoder",)), 2)
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        plan_benchmark(BenchmarkOptions(out=tmp_path / "exists"), 2)
    plan = plan_benchmark(BenchmarkOptions(out=tmp_path / "ok", preset="mobile", allow_large=True), 2)
    assert plan.stages == ("unet",) and plan.repeats == 1 and plan.warmup == 0 and plan.threads == 2
    # --overwrite replaces only a benchmark folder (results.json) or an empty one; never the --bundle.
    (tmp_path / "exists" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=r"replaces only a benchmark folder this project wrote \(results.json\)"):
        plan_benchmark(BenchmarkOptions(out=tmp_path / "exists", overwrite=True), 2)
    assert (tmp_path / "exists" / "mine.txt").read_text() == "keep"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for out, how in ((tmp_path, "contains"), (bundle / "bench", "is inside")):
        with pytest.raises(ValueError, match=f"^--out {out} {how} the input --bundle {bundle}"):
            plan_benchmark(BenchmarkOptions(out=out, bundle=bundle, overwrite=True), 2)


def test_a_tampered_bundle_is_refused_with_the_file_named(tiny_bundle, tmp_path, capsys):
    bundle = copy_bundle(tiny_bundle, tmp_path / "bundle")
    data = bytearray((bundle / "vae_decoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "vae_decoder.onnx").write_bytes(bytes(data))
    out = tmp_path / "bench"
    assert run_main(["--bundle", str(bundle), "--stages", "vae_decoder", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"error: {re.escape(str(bundle / 'vae_decoder.onnx'))}: sha256 mismatch: manifest has [0-9a-f]{{64}}, "
        r"file has [0-9a-f]{64}\n", err), err
    assert not out.exists()


def _relabelled(tiny_bundle, dest: Path, precision: str) -> Path:
    bundle = copy_bundle(tiny_bundle, dest)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["precision"] = precision  # the manifest is not in its own hashed table: still verifies
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def test_a_given_bundle_is_reported_under_its_manifests_precision(tiny_bundle, tmp_path):
    """It used to be labelled fp32 whatever it held (an int8 bundle benchmarked as fp32)."""
    bundle = _relabelled(tiny_bundle, tmp_path / "bundle", "int8-weight-only")
    options = BenchmarkOptions(out=tmp_path / "bench", bundle=bundle, stages=RUN_STAGES, backends=("onnx", "tflite"),
                               warmup=0, repeats=1, threads=1, adapter_cost=False)
    results = run_benchmark(options)
    rows = {(r["stage"], r["backend"], r["precision"]): r["status"] for r in results["rows"]}
    assert rows == {("vae_decoder", "onnx", "int8-weight-only"): "ok", ("vae_decoder", "tflite", "int8-weight-only"): "ok"}
    assert results["settings"]["precisions"] == ["int8-weight-only"]
    assert results["settings"]["bundle_precision"] == "int8-weight-only"
    assert results["bundles"] == {"int8-weight-only": str(bundle)}
    assert "| int8-weight-only | `vae_decoder` | onnx |" in (tmp_path / "bench" / "report.md").read_text()


def test_a_quantized_bundle_is_not_measured_as_another_precision(tiny_bundle, tmp_path):
    bundle = _relabelled(tiny_bundle, tmp_path / "bundle", "int8-weight-only")
    with pytest.raises(ValueError) as err:
        plan_benchmark(BenchmarkOptions(out=tmp_path / "bench", bundle=bundle, precisions=("fp32", "int8-weight-only")), 2)
    assert str(err.value) == (
        f"--bundle {bundle} has precision int8-weight-only (its manifest's), so it is measured as int8-weight-only "
        "only; --precisions asks for ['fp32'] too: pass --precisions int8-weight-only, or an fp32 bundle to quantize "
        "the others from"
    )
    plan = plan_benchmark(BenchmarkOptions(out=tmp_path / "bench", bundle=tiny_bundle, precisions=("fp32", "fp16")), 2)
    assert (plan.precisions, plan.bundle_precision) == (("fp32", "fp16"), "fp32")  # fp32: the others quantized from it


def test_quantize_all_without_quantize_reports_not_available(tmp_path, monkeypatch):
    import benchmarks.bundles as bundles

    monkeypatch.setattr(bundles, "quantize_api", lambda: None)
    plan = plan_benchmark(BenchmarkOptions(out=tmp_path / "o", precisions=("fp32", "w8a16")), 2)
    models = ModelSet(bundles={"fp32": Bundle(tmp_path, {"stages": {}, "targets": ["onnx"]})})
    quantize_all(plan, tmp_path, models)
    assert models.reason("w8a16", "onnx", "unet") == QUANTIZE_MISSING


# --------------------------------------------------------------------------------------------------
# Derived figures on hand-made rows
# --------------------------------------------------------------------------------------------------


def _row(stage, backend, ms, variant="adapted", precision="fp32", fastest=None):
    return {"stage": stage, "backend": backend, "precision": precision, "variant": variant, "status": "ok",
            "latency_ms": {"median_ms": ms, "min_ms": fastest}}


def test_per_video_counts_every_call():
    rows = [_row("text_encoder", "onnx", 2.0), _row("vae_encoder", "onnx", 10.0), _row("unet", "onnx", 100.0),
            _row("vae_decoder", "onnx", 5.0), _row("unet", "torch", 150.0)]
    entries = {e["backend"]: e for e in derive.per_step_and_video(rows, ["text_encoder", "vae_encoder", "unet", "vae_decoder"], 8, 10)}
    assert entries["onnx"]["step_ms"] == 100.0
    assert entries["onnx"]["video_ms"] == pytest.approx(2 * 2.0 + 10.0 + 10 * 100.0 + 8 * 5.0)
    assert entries["torch"]["video_ms"] is None
    assert entries["torch"]["video_missing"] == ["text_encoder", "vae_encoder", "vae_decoder"]


def test_adapter_cost_and_targets():
    rows = [_row("unet", "onnx", 100.0, "base", fastest=90.0), _row("unet", "onnx", 130.0, "naive", fastest=108.0),
            _row("unet", "onnx", 105.0, "fused", fastest=99.0), _row("unet", "onnx", 60.0, fastest=50.0),
            _row("unet", "torch", 100.0, fastest=80.0)]
    cost = derive.adapter_cost(rows)
    assert cost == [{"backend": "onnx", "base_ms": 100.0, "naive_ms": 130.0, "fused_ms": 105.0,
                     "naive_vs_base": 1.3, "fused_vs_base": 1.05, "naive_vs_base_min": 1.2, "fused_vs_base_min": 1.1}]
    targets = derive.targets(rows, cost)
    assert targets[0]["value"] == pytest.approx(0.6) and targets[0]["met"] is True
    assert targets[0]["value_fastest"] == pytest.approx(0.625)
    assert targets[1]["value"] == pytest.approx(1.05) and targets[1]["met"] is True


def test_latency_stats_percentiles():
    stats = LatencyStats.from_seconds([0.005, 0.001, 0.003, 0.002, 0.004])
    assert (stats.median_ms, stats.p10_ms, stats.p90_ms) == pytest.approx((3.0, 1.4, 4.6))
    assert (stats.min_ms, stats.max_ms, stats.runs) == (pytest.approx(1.0), pytest.approx(5.0), 5)


# --------------------------------------------------------------------------------------------------
# MAC counting and the roofline
# --------------------------------------------------------------------------------------------------


def _hand_graph(path: Path) -> None:
    """Conv 3->4 (3x3, pad 1) on 8x8, MatMul (2, 5, 6) @ (6, 7), Gemm (3, 4) x (5, 4)^T."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (4, 3, 3, 3)), ("b", (6, 7)), ("g", (5, 4)))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
             helper.make_node("MatMul", ["a", "b"], ["m"]),
             helper.make_node("Gemm", ["c", "g"], ["z"], transB=1)]
    graph = helper.make_graph(
        nodes, "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8)),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, (2, 5, 6)),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, (3, 4))],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "m", "z")],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_count_onnx_by_hand(tmp_path):
    _hand_graph(tmp_path / "hand.onnx")
    counts = count_onnx(tmp_path / "hand.onnx")
    conv = 1 * 4 * 8 * 8 * (3 * 3 * 3)  # output elements x (C_in x kh x kw)
    matmul = 2 * 5 * 7 * 6  # output elements x k
    gemm = 3 * 5 * 4
    assert counts["by_op"] == {"Conv": conv, "ConvTranspose": 0, "MatMul": matmul, "Gemm": gemm}
    assert counts["macs"] == 6912 + 420 + 60
    assert counts["weight_bytes"] == (108 + 42 + 20) * 4
    assert counts["uncounted"] == []
    # A stage in chunks (one ONNX file per chunk, as a full-size UNet is exported) sums its files.
    shutil.copy(tmp_path / "hand.onnx", tmp_path / "hand2.onnx")
    manifest = {"schema_version": 1, "preset": {"name": "tiny"}, "targets": ["onnx"], "files": {},
                "stages": {"unet": {"targets": {"onnx": {"file": "hand.onnx", "extra_files": ["hand2.onnx"]}}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    chunked = count_stages(None, tmp_path, None)["unet"]
    assert chunked["macs"] == 2 * counts["macs"] and chunked["weight_bytes"] == 2 * counts["weight_bytes"]


def test_roofline_by_hand():
    est = estimate_stage(macs=10**12, params=10**9, precision="w8a16", anchor_unet_macs=4 * 10**11)
    d9300 = est["dimensity-9300"]
    # 2e12 ops at 40 TOPS x 0.5 (w8a16) = 100 ms; 1e9 int8 weights at 76.8 GB/s = 13.02 ms
    assert d9300["compute_ms"] == pytest.approx(100.0)
    assert d9300["memory_ms"] == pytest.approx(1e9 / 76.8e9 * 1e3)
    assert d9300["roofline_ms"] == pytest.approx(100.0) and d9300["bound"] == "compute"
    assert d9300["anchor_scaled_ms"] == pytest.approx(10**12 / (4 * 10**11 / 76.7))


# --------------------------------------------------------------------------------------------------
# benchmark_model output and the phone runner against a fake adb
# --------------------------------------------------------------------------------------------------


CLASSIC = """count=50 first=74456 curr=74516 min=73909 max=75323 avg=74481.6 std=268
Inference timings in us: Init: 18738, First inference: 140706, Warmup (avg): 85791.2, Inference (avg): 74481.6
Peak memory footprint (MB): init=6.44141 overall=64.8633
"""


def test_parse_classic_output():
    p = parse_benchmark_output(CLASSIC)
    assert p["avg_ms"] == pytest.approx(74.4816) and p["min_ms"] == pytest.approx(73.909)
    assert p["max_ms"] == pytest.approx(75.323) and p["init_ms"] == pytest.approx(18.738)
    assert p["first_inference_ms"] == pytest.approx(140.706) and p["runs"] == 50
    assert p["peak_memory_mb"] == pytest.approx(64.8633) and "median_ms" not in p


def test_parse_litert_output_and_failure():
    text = (FAKE_ADB / "benchmark_ok.txt").read_text()
    p = parse_benchmark_output(text)
    assert p["runs"] == 50 and p["median_ms"] == pytest.approx(57.79) and p["avg_ms"] == pytest.approx(57.8534)
    assert p["init_ms"] == pytest.approx(412.518) and p["peak_memory_mb"] == pytest.approx(96.25)
    with pytest.raises(BenchmarkOutputError, match="Failed to apply the NPU delegate"):
        parse_benchmark_output((FAKE_ADB / "benchmark_delegate_failed.txt").read_text())


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A bundle manifest with TFLite stage files, a benchmark binary, dispatch libs and the fake adb."""
    cfg = get_preset("tiny")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    stages = {}
    for name, spec in stage_specs(cfg).items():
        (bundle / f"{name}.tflite").write_bytes(b"TFL3" + bytes(100))
        stages[name] = {"io": spec.to_dict(), "targets": {"tflite": {"file": f"{name}.tflite", "extra_files": []}}}
    manifest = {"schema_version": 1, "precision": "fp32", "targets": ["tflite"], "stages": stages, "files": {},
                "preset": {"name": "tiny", "config": cfg.to_dict()}, "sampling": {"num_inference_steps": 10}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "benchmark_model").write_bytes(b"\x7fELF")
    (tmp_path / "dispatch").mkdir()
    (tmp_path / "dispatch" / "libLiteRtDispatch_MediaTek.so").write_bytes(b"\x7fELF")
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{FAKE_ADB}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_SERIAL", "PHONE1")
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    args = ["--bundle", str(bundle), "--serial", "PHONE1", "--benchmark-binary", str(tmp_path / "benchmark_model"),
            "--accelerator", "npu", "--dispatch-dir", str(tmp_path / "dispatch"), "--out", str(tmp_path / "out")]
    return tmp_path, args, log


def test_device_run_with_fake_adb(phone, capsys):
    tmp_path, args, log = phone
    assert device_main(args) == 0
    results = load_results(tmp_path / "out")
    assert results["kind"] == "device" and results["machine"]["soc"] == "MT6991"
    assert [r["stage"] for r in results["rows"]] == ["text_encoder", "vae_encoder", "unet", "vae_decoder"]
    for row in results["rows"]:
        assert row["status"] == "ok" and row["backend"] == "litert-npu"
        assert row["latency_ms"]["mean_ms"] == pytest.approx(57.8534)
        assert row["latency_ms"]["median_ms"] == pytest.approx(57.79)
        assert row["init_ms"] == pytest.approx(412.518) and row["peak_rss_mb"] == pytest.approx(96.25)
        assert row["size_bytes"] == 104
    assert results["per_step"][0]["step_ms"] == pytest.approx(57.79)
    calls = log.read_text().splitlines()
    assert "-s\tPHONE1\tpush\t" + str(tmp_path / "benchmark_model") + "\t/data/local/tmp/i2v_bench/benchmark_model" in calls
    assert any(c.endswith("/data/local/tmp/i2v_bench/dispatch/libLiteRtDispatch_MediaTek.so") for c in calls)
    runs = [c for c in calls if "--graph=unet.tflite" in c]
    assert len(runs) == 1 and "--use_npu=true --use_cpu=false --require_full_delegation=true" in runs[0]
    assert "--dispatch_library_path=/data/local/tmp/i2v_bench/dispatch" in runs[0]
    assert "litert-npu" in (tmp_path / "out" / "report.md").read_text()


def test_device_delegate_failure_is_a_clear_error(phone, monkeypatch, capsys):
    tmp_path, args, _ = phone
    monkeypatch.setenv("FAKE_ADB_FAIL_GRAPH", "unet.tflite")
    assert device_main(args) == 1
    err = capsys.readouterr().err
    assert "error: unet: benchmark_model exited with status 1" in err and "Failed to apply the NPU delegate" in err
    rows = {r["stage"]: r for r in load_results(tmp_path / "out")["rows"]}
    assert rows["unet"]["status"] == "error" and rows["vae_decoder"]["status"] == "ok"


def test_device_offline_and_bad_input(phone, capsys):
    tmp_path, args, _ = phone
    offline = [a if a != "PHONE1" else "OTHER" for a in args]
    assert device_main(offline) == 2
    assert "expected device 'OTHER' in state 'device', found: adb: device 'OTHER' not found" in capsys.readouterr().err
    no_dispatch = args[: args.index("--dispatch-dir")] + args[args.index("--dispatch-dir") + 2:]
    assert device_main(no_dispatch) == 2
    assert "--accelerator npu needs --dispatch-dir" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_full_size_adapted_row_stands_for_fused(tmp_path):
    from benchmarks.run import _fused_from_adapted

    plan = plan_benchmark(BenchmarkOptions(out=tmp_path / "m", preset="mobile", allow_large=True, backends=("torch",)), 2)
    rows = [_row("unet", "torch", 120_000.0), _row("unet", "torch", 100_000.0, "base"), _row("unet", "torch", 125_000.0, "naive")]
    cost = derive.adapter_cost(_fused_from_adapted(rows, plan))
    assert cost[0]["fused_ms"] == 120_000.0 and cost[0]["fused_vs_base"] == pytest.approx(1.2)


def test_onnx_chunks_run_in_order_over_named_tensors(tmp_path):
    """A chunked stage: chunk 0 writes `hidden`, chunk 1 reads it with a stage input."""
    import onnx
    from onnx import TensorProto, helper

    from benchmarks.jobs import Job, _onnx_call

    def vi(n):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT, (2, 3))

    def io(ins, outs):
        return {"inputs": [{"name": n, "shape": [2, 3]} for n in ins], "outputs": [{"name": n, "shape": [2, 3]} for n in outs]}

    def save(name, nodes, inputs, outputs):
        graph = helper.make_graph(nodes, name, [vi(n) for n in inputs], [vi(n) for n in outputs],
                                  [helper.make_tensor("two", TensorProto.FLOAT, (), [2.0])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / f"{name}.onnx"))

    save("c0", [helper.make_node("Mul", ["x", "two"], ["hidden"])], ["x"], ["hidden"])
    save("c1", [helper.make_node("Add", ["hidden", "x"], ["y"])], ["hidden", "x"], ["y"])
    record = {"io": io(["x"], ["y"]), "targets": {"onnx": {"file": "c0.onnx", "extra_files": ["c1.onnx"], "chunks": [
        {"name": "s.chunk0", "io": io(["x"], ["hidden"]), "file": "c0.onnx"},
        {"name": "s.chunk1", "io": io(["hidden", "x"], ["y"]), "file": "c1.onnx"}]}}}
    spec = StageSpec.from_dict("s", record["io"])
    job = Job("s", "onnx", "fp32", "tiny", record["io"], 0, 1, threads=1, bundle=str(tmp_path), record=record)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = _onnx_call(job, spec, {"x": x})()
    np.testing.assert_array_equal(y, 3 * x)
