"""The Android core's golden vectors (`android_demo/make_golden.py`) are fresh: regenerated from
`runtime_py` into a temporary directory, they equal the committed ones. Also: the writer refuses to
overwrite without `--overwrite`, `--check` fails on a stale set, and the files stay small."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "android_demo" / "make_golden.py"
COMMITTED = REPO / "android_demo" / "core" / "src" / "test" / "resources" / "golden"


@pytest.fixture(scope="module")
def golden():
    """`make_golden` as a module (android_demo is not a Python package)."""
    spec = importlib.util.spec_from_file_location("make_golden", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(golden, tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "golden"
    assert golden.main(["--out", str(out)]) == 0
    return out


def test_committed_vectors_are_fresh(golden, fresh):
    problems = golden.compare_dirs(fresh, COMMITTED)
    assert problems == [], "stale: run `.venv/bin/python android_demo/make_golden.py --overwrite`\n" + "\n".join(problems)


def test_vector_set_is_complete_and_small(fresh):
    names = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file())
    for expected in ("tokenizer.json", "schedulers.json", "fsp.json", "guidance.json", "colour.json", "pipeline.json",
                     "timestep_embedding.json", "bundle/manifest.json", "bundle/unet.tflite", "bundle/tokenizer/vocab.json"):
        assert expected in names
    sizes = {n: (fresh / n).stat().st_size for n in names}
    assert max(sizes.values()) < 100_000, sizes
    assert sum(sizes.values()) < 250_000, sizes
    tok = json.loads((fresh / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["vocab_size"] == 49408 and len(tok["cases"]) == 14
    assert tok["cases"][1]["ids"][:7] == [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat"
    runs = json.loads((fresh / "pipeline.json").read_text(encoding="utf-8"))["runs"]
    assert [r["scheduler"] for r in runs] == ["ddim", "euler", "ddim", "euler"]
    assert runs[0]["timesteps"] == [751.0, 501.0, 251.0, 1.0]
    assert runs[2]["timesteps"] == [333.0, 167.0, 1.0]  # FSP strength 0.5 skips half of 6 steps


def test_bundle_manifest_verifies_with_the_python_reader(fresh):
    from i2v_core.bundle import verify_bundle

    manifest = verify_bundle(fresh / "bundle")
    assert manifest["preset"]["config"]["num_frames"] == 3
    assert manifest["fsp"]["blur_kernel"] == 5
    assert manifest["stages"]["unet"]["io"]["inputs"][0]["shape"] == [2, 4, 3, 4, 4]


def test_overwrite_refused_and_check_detects_staleness(golden, fresh, tmp_path, capsys):
    assert golden.main(["--out", str(fresh)]) == 1
    assert "already exists" in capsys.readouterr().err
    stale = tmp_path / "stale"
    shutil.copytree(fresh, stale)
    data = json.loads((stale / "guidance.json").read_text(encoding="utf-8"))
    data["cases"][0]["out"]["data"][0] += 1e-3
    (stale / "guidance.json").write_text(json.dumps(data), encoding="utf-8")
    assert golden.main(["--check", "--out", str(stale)]) == 1
    assert "guidance.json.cases[0].out.data[0]" in capsys.readouterr().err
    assert golden.main(["--check", "--out", str(fresh)]) == 0


def test_cli_check_on_the_committed_set():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


FAKE_ADB = r"""#!/usr/bin/env bash
# adb stand-in: a phone whose NPU and CPU run every model and whose GPU refuses full delegation.
[ "$1" = "-s" ] && shift 2
case "$1" in
  get-state) echo device ;;
  push) ;;
  shell)
    shift
    case "$*" in
      "getprop ro.soc.model") echo MT6991 ;;
      getprop*) echo x ;;
      *benchmark_model*--use_gpu*) echo "ERROR: Failed to compile model."; exit 1 ;;
      *benchmark_model*)
        printf 'INFO: Model initialization: 812.50 ms\r\nINFO: Inference (avg):      35.25 ms (50 runs)\r\n'
        printf 'INFO: Inference (min):      33.00 ms\r\nINFO: Inference (max):      41.75 ms\r\nINFO: Peak memory:          420.00 MB\r\n' ;;
    esac ;;
esac
"""


def test_bench_sh_writes_the_documented_rows(fresh, tmp_path):
    adb = tmp_path / "adb"
    adb.write_text(FAKE_ADB)
    adb.chmod(0o755)
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"")
    out = tmp_path / "bench.json"
    cmd = ["bash", str(REPO / "android_demo" / "bench.sh"), str(fresh / "bundle"), "--benchmark-binary", str(binary),
           "--out", str(out), "--stages", "unet,vae_decoder"]
    env = {**os.environ, "ADB": str(adb)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == "i2v-adapter-android-bench/1" and data["device"]["soc_model"] == "MT6991"
    rows = [(r["stage"], r["accelerator"], r["status"]) for r in data["rows"]]
    assert rows == [(s, a, "failed" if a == "gpu" else "ok") for s in ("unet", "vae_decoder") for a in ("npu", "gpu", "cpu")]
    ok = data["rows"][0]
    assert (ok["init_ms"], ok["avg_ms"], ok["min_ms"], ok["max_ms"], ok["peak_mem_mb"]) == (812.5, 35.25, 33.0, 41.75, 420.0)
    assert data["rows"][1]["error"] == "ERROR: Failed to compile model."
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "exists (pass --overwrite" in again.stderr
