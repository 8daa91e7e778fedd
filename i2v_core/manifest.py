"""The bundle manifest: what `export.build` writes into `manifest.json`, and the summary table read
back from it (torch-free).

Layout (schema 1):

    schema_version, created_by, precision ("fp32"), targets [...]
    preset: {name, config: PresetConfig.to_dict()}
    weights: {source: embedded-default | random | checkpoints, seed, checkpoints: {...}}
    graph_options: {attention, decompose_groupnorm, matmul_attention, onnx_opset, tflite_signature}
    stages: {<stage>: {io: StageSpec.to_dict(), targets: {<target>: {file, extra_files, parity, export[, chunks]}}}}
      (a chunked UNet lists its chunks in run order: {name, units, io, parity, file, extra_files};
      `file` + `extra_files` of the target are then every chunk's files)
    scheduler, fsp, sampling: the preset's defaults, for the runtime
    tokenizer: {directory, files, max_length}
    parity: {definition, seed, thresholds}
    files: {<relative path>: {bytes, sha256}} for every file of the bundle but the manifest
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from i2v_core import PROJECT, __version__
from i2v_core.bundle import MANIFEST_NAME, SCHEMA_VERSION, bundle_files, file_record
from i2v_core.config import PresetConfig
from i2v_core.measure import Usage
from i2v_core.parity import FP32_MIN_PSNR_DB, MIN_GUIDANCE_CORRELATION, Parity
from i2v_core.stages import MAX_TOKENS, StageSpec

PSNR_DEFINITION = "20*log10((max(ref)-min(ref)) / rmse(out-ref)), capped at 200 dB; ref = PyTorch stage module"


@dataclass
class TargetRecord:
    """One stage exported for one target: files (relative to the bundle), parity, time and memory."""

    files: list[str]
    parity: Parity
    usage: Usage
    chunks: list[dict] | None = None  # a chunked UNet: per chunk {name, units, io, parity, file, extra_files}

    def to_dict(self) -> dict:
        d = {
            "file": self.files[0],
            "extra_files": self.files[1:],
            "parity": self.parity.to_dict(),
            "export": self.usage.to_dict(),
        }
        if self.chunks:
            d["chunks"] = self.chunks
        return d


@dataclass
class StageRecord:
    spec: StageSpec
    targets: dict[str, TargetRecord] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"io": self.spec.to_dict(), "targets": {t: r.to_dict() for t, r in self.targets.items()}}


def build_manifest(
    bundle_dir: Path,
    *,
    cfg: PresetConfig,
    targets: list[str],
    stages: dict[str, StageRecord],
    weights: dict,
    graph_options: dict,
    tokenizer_dir: str,
    parity_seed: int,
    precision: str = "fp32",
) -> dict:
    """The manifest of the files now in `bundle_dir` (hashes are computed here, from the files)."""
    files = {rel: file_record(bundle_dir / rel) for rel in bundle_files(bundle_dir)}
    tokenizer_files = sorted(rel for rel in files if rel.startswith(tokenizer_dir + "/"))
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"{PROJECT} {__version__} export.build",
        "precision": precision,
        "targets": list(targets),
        "preset": {"name": cfg.name, "config": cfg.to_dict()},
        "weights": weights,
        "graph_options": graph_options,
        "stages": {name: record.to_dict() for name, record in stages.items()},
        "scheduler": {"class_name": "DDIMScheduler", **cfg.scheduler.to_diffusers()},
        "fsp": dataclasses.asdict(cfg.fsp),
        "sampling": dataclasses.asdict(cfg.sampling),
        "tokenizer": {"directory": tokenizer_dir, "files": tokenizer_files, "max_length": MAX_TOKENS},
        "parity": {
            "definition": PSNR_DEFINITION,
            "inputs": f"StageSpec.sample_inputs(seed={parity_seed})",
            "seed": parity_seed,
            "min_psnr_db": FP32_MIN_PSNR_DB,
            "min_guidance_correlation": MIN_GUIDANCE_CORRELATION,
        },
        "files": files,
    }


def write_manifest(bundle_dir: Path, manifest: dict) -> Path:
    path = bundle_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def summary_rows(manifest: dict) -> list[dict]:
    """One row per stage and target: stage, target, file, MB, PSNR, max-abs, guidance corr, s, peak MB."""
    rows = []
    for stage, record in manifest["stages"].items():
        for target, entry in record["targets"].items():
            parity, usage = entry["parity"], entry["export"]
            size = sum(manifest["files"][f]["bytes"] for f in [entry["file"], *entry["extra_files"]])
            rows.append(
                {
                    "stage": stage,
                    "target": target,
                    "file": entry["file"],
                    "MB": f"{size / 1e6:.2f}",
                    "PSNR dB": f"{parity['psnr_db']:.1f}",
                    "max-abs": f"{parity['max_abs']:.2e}",
                    "cfg corr": f"{parity['guidance_correlation']:.6f}" if "guidance_correlation" in parity else "-",
                    "s": f"{usage['seconds']:.1f}",
                    "peak MB": f"{usage['peak_rss_mb']:.0f}",
                }
            )
    return rows


def format_summary(manifest: dict) -> str:
    """The rows of `summary_rows` as an aligned plain-text table."""
    rows = summary_rows(manifest)
    if not rows:
        return "(no stages)"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)
