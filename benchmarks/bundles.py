"""The models a benchmark runs: one bundle per precision, plus UNet variants for the adapter's cost.

- fp32: `export.exporter.export_bundle` into the output's work folder (or a given `--bundle`).
- other precisions: `quantize.api.quantize_bundle(fp32_bundle, recipe, out_dir)` when the `quantize`
  package provides it; otherwise each is reported as not available, never faked.
- UNet variants: the T2V UNet without the adapter (`base`), and the adapted UNet with `naive` and
  `fused` first-frame attention, converted with the same converters and graph options, so the
  adapter's cost is measured at the same shapes on the same backend.

Where something cannot be built, the reason is kept and becomes the rows' `reason`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from export.bundle import load_manifest

from .options import BenchmarkPlan

logger = logging.getLogger(__name__)

RUNTIME_BACKENDS = ("onnx", "tflite")
QUANTIZE_MISSING = "not available: quantize/ not built (no quantize.api.quantize_bundle)"
_DEFAULT_GRAPH = {"attention": "fused", "decompose_groupnorm": False, "matmul_attention": False}


@dataclass
class Bundle:
    """One bundle folder and its manifest."""

    directory: Path
    manifest: dict

    def stage_record(self, stage: str) -> dict | None:
        return self.manifest["stages"].get(stage)

    def has(self, stage: str, backend: str) -> bool:
        record = self.stage_record(stage)
        return record is not None and backend in record.get("targets", {})

    def size_bytes(self, stage: str, backend: str) -> int | None:
        """Bytes of every file of `stage` for `backend` (chunks and external data included)."""
        if not self.has(stage, backend):
            return None
        entry = self.manifest["stages"][stage]["targets"][backend]
        files = [entry["file"], *entry.get("extra_files", [])]
        return sum((self.directory / f).stat().st_size for f in files)

    def psnr_db(self, stage: str, backend: str) -> float | None:
        """The bundle's recorded PSNR of this stage's model (vs PyTorch fp32), if it has one."""
        if not self.has(stage, backend):
            return None
        return self.manifest["stages"][stage]["targets"][backend].get("parity", {}).get("psnr_db")


@dataclass
class ModelSet:
    """Bundles by precision and why the missing ones are missing."""

    bundles: dict[str, Bundle] = field(default_factory=dict)
    # (precision, backend) -> reason; backend "*" means every backend of that precision
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    variants: dict[str, Bundle] = field(default_factory=dict)  # base / naive / fused UNet

    def reason(self, precision: str, backend: str, stage: str) -> str | None:
        """None if the model exists, else why not."""
        for key in ((precision, backend), (precision, "*")):
            if key in self.unavailable:
                return self.unavailable[key]
        bundle = self.bundles.get(precision)
        if bundle is None:
            return f"not available: no {precision} bundle"
        if not bundle.has(stage, backend):
            return f"not available: the {precision} bundle has no {backend} model for {stage}"
        return None


def _export_options(plan: BenchmarkPlan, out: Path, targets: tuple[str, ...], stages: tuple[str, ...], **extra):
    from export.exporter import ExportOptions

    return ExportOptions(out=out, preset=plan.cfg.name, targets=targets, stages=stages,
                         random_weights=plan.cfg.name != "tiny", overwrite=True, **extra)


def export_fp32(plan: BenchmarkPlan, work: Path, models: ModelSet) -> None:
    """Export (or adopt `--bundle`) the fp32 bundle; a target that cannot be exported is recorded."""
    if plan.options.bundle is not None:
        bundle = Bundle(Path(plan.options.bundle), load_manifest(plan.options.bundle))
        found = bundle.manifest["preset"]["name"]
        if found != plan.cfg.name:
            raise ValueError(f"--bundle {plan.options.bundle} holds preset {found!r}, expected {plan.cfg.name!r} (--preset)")
        models.bundles["fp32"] = bundle
        return
    targets = tuple(b for b in RUNTIME_BACKENDS if b in plan.backends)
    if not targets:
        return
    from export.exporter import export_bundle

    out = work / "bundle-fp32"
    try:
        export_bundle(_export_options(plan, out, targets, plan.stages))
    except ValueError as err:  # e.g. a stage too large for one TFLite flatbuffer: keep the other target
        if "tflite" not in targets or len(targets) == 1:
            for t in targets:
                models.unavailable[("fp32", t)] = f"not available: export failed: {err}"
            return
        logger.warning("tflite export refused (%s); exporting onnx only", err)
        models.unavailable[("fp32", "tflite")] = f"not available: {err}"
        export_bundle(_export_options(plan, out, ("onnx",), plan.stages))
    models.bundles["fp32"] = Bundle(out, load_manifest(out))


def quantize_api():
    """`quantize.api` if it provides `quantize_bundle`, else None."""
    if importlib.util.find_spec("quantize") is None or importlib.util.find_spec("quantize.api") is None:
        return None
    api = importlib.import_module("quantize.api")
    return api if hasattr(api, "quantize_bundle") else None


def quantize_all(plan: BenchmarkPlan, work: Path, models: ModelSet) -> None:
    """One quantized bundle per non-fp32 precision, through `quantize.api` when it exists."""
    wanted = [p for p in plan.precisions if p != "fp32"]
    if not wanted:
        return
    api = quantize_api()
    fp32 = models.bundles.get("fp32")
    for precision in wanted:
        if api is None:
            models.unavailable[(precision, "*")] = QUANTIZE_MISSING
        elif fp32 is None:
            models.unavailable[(precision, "*")] = "not available: no fp32 bundle to quantize"
        else:
            out = work / f"bundle-{precision}"
            try:
                api.quantize_bundle(fp32.directory, precision, out)
                models.bundles[precision] = Bundle(out, load_manifest(out))
            except (ValueError, RuntimeError, NotImplementedError, ImportError, OSError) as err:
                models.unavailable[(precision, "*")] = f"not available: quantize_bundle({precision!r}) failed: {err}"


def _export_variant(plan: BenchmarkPlan, variant: str, out: Path, targets: tuple[str, ...]) -> Bundle:
    """The UNet stage of `variant` converted for `targets` into `out`, with a minimal manifest."""
    import torch

    from export.converters import export_stage
    from i2v_adapter.config import AttentionVariant
    from i2v_adapter.models import build_unet
    from i2v_adapter.stage_modules import UNetStage, sample_torch_inputs
    from i2v_adapter.stages import stage_specs

    cfg = plan.cfg
    if variant != "base":
        cfg = cfg.with_overrides(attention=AttentionVariant(variant))
    module = UNetStage(build_unet(cfg, with_adapter=variant != "base")).eval()
    spec = stage_specs(cfg)["unet"]
    args = sample_torch_inputs(spec)
    out.mkdir(parents=True, exist_ok=True)
    record = {"io": spec.to_dict(), "targets": {}}
    for target in targets:
        with torch.no_grad():
            files = export_stage(target, module, spec, args, out, work_dir=out / "_work", progress=False)
        record["targets"][target] = {"file": files[0].name, "extra_files": [f.name for f in files[1:]]}
    shutil.rmtree(out / "_work", ignore_errors=True)
    manifest = {"preset": {"name": cfg.name}, "variant": variant, "stages": {"unet": record}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return Bundle(out, manifest)


def export_variants(plan: BenchmarkPlan, work: Path, models: ModelSet) -> None:
    """base / naive / fused UNets for the runtime backends (the fp32 bundle's UNet serves as `fused`
    when it was exported with the default graph options)."""
    targets = tuple(b for b in RUNTIME_BACKENDS if b in plan.backends and models.reason("fp32", b, "unet") is None)
    if not targets:
        return
    fp32 = models.bundles["fp32"]
    reuse_fused = all(fp32.manifest.get("graph_options", {}).get(k) == v for k, v in _DEFAULT_GRAPH.items())
    for variant in ("base", "naive", "fused"):
        if variant == "fused" and reuse_fused:
            models.variants[variant] = fp32
            continue
        logger.info("exporting the %s UNet for %s", variant, ", ".join(targets))
        models.variants[variant] = _export_variant(plan, variant, work / f"unet-{variant}", targets)
