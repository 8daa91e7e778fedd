"""The `results.json` format shared by the host benchmark and the phone runner (torch-free).

    schema, kind ("host" | "device"), created (UTC ISO time), machine {...}, versions {...},
    settings {...}, preset {name, frames, height, width, guided_batch},
    rows [{stage, backend, precision, variant, status, reason?, latency_ms {runs, median_ms, p10_ms,
           p90_ms, min_ms, max_ms, mean_ms}, size_bytes, psnr_db, peak_rss_mb, baseline_rss_mb, ...}],
    per_step [...], adapter_cost [...], backend_ratios [...], targets [...], estimate {...}, plots [...]

Package versions come from installed metadata, so writing the file imports no runtime.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import psutil

from i2v_core.media import atomic_write_bytes
from i2v_core.outputs import OutputKind

SCHEMA = "i2v-adapter-benchmark/1"
RESULTS_NAME = "results.json"
REPORT_NAME = "report.md"
RESULTS_OUTPUT = OutputKind("benchmark folder", RESULTS_NAME)  # what --overwrite may replace
PACKAGES = ("torch", "diffusers", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "litert-torch", "numpy")


def versions() -> dict[str, str | None]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    except OSError:
        match = None
    return match.group(1).strip() if match else platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
    }


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path: Path, data: dict, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), overwrite=overwrite)


def load_results(directory: str | os.PathLike) -> dict:
    """`results.json` of a benchmark output folder; `ValueError` naming what is wrong."""
    path = Path(directory) / RESULTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"expected {RESULTS_NAME} in {directory}, not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: expected schema {SCHEMA!r}, found {data.get('schema')!r}")
    return data
