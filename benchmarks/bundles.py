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
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.options import LARGE_PRESETS, BenchmarkPlan
from i2v_core import cli
from i2v_core.bundle import bundle_files, file_record, load_manifest
from i2v_core.config import AttentionVariant, get_preset
from i2v_core.stages import stage_specs

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
    # (precision, backend) -> a bundle holding only that backend (a recipe quantized per target)
    by_target: dict[tuple[str, str], Bundle] = field(default_factory=dict)
    # (precision, backend) -> reason; backend "*" means every backend of that precision
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)
    variants: dict[str, Bundle] = field(default_factory=dict)  # base / naive / fused UNet
    variant_reason: dict[str, str] = field(default_factory=dict)  # backend -> why its variants are missing

    def bundle_for(self, precision: str, backend: str) -> Bundle | None:
        return self.by_target.get((precision, backend)) or self.bundles.get(precision)

    def reason(self, precision: str, backend: str, stage: str) -> str | None:
        """None if the model exists, else why not."""
        for key in ((precision, backend), (precision, "*")):
            if key in self.unavailable:
                return self.unavailable[key]
        bundle = self.bundle_for(precision, backend)
        if bundle is None:
            return f"not available: no {precision} bundle"
        if not bundle.has(stage, backend):
            return f"not available: the {precision} bundle has no {backend} model for {stage}"
        return None


def _export_options(plan: BenchmarkPlan, out: Path, targets: tuple[str, ...], stages: tuple[str, ...], **extra):
    from export.exporter import ExportOptions  # deferred: the exporter imports torch; the parent stays torch-free

    return ExportOptions(out=out, preset=plan.cfg.name, targets=targets, stages=stages,
                         random_weights=plan.cfg.name != "tiny", overwrite=True, **extra)


_EXPORT_ERRORS = (ValueError, RuntimeError, MemoryError, OSError)  # RuntimeError covers a dead child


def _child_export(options, level: int) -> None:
    cli.configure_logging(())  # a spawned child: its own process, its own logging set-up
    logging.getLogger("export").setLevel(level)
    from export.exporter import export_bundle  # deferred: runs in the export child

    export_bundle(options)


def _export_in_child(options) -> None:
    """`export_bundle` in a spawned child, so the parent never holds a PyTorch model (5+ GB at full
    size) while the measurement children build theirs."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(_child_export, options, logger.getEffectiveLevel()).result()


def export_fp32(plan: BenchmarkPlan, work: Path, models: ModelSet) -> None:
    """Export the fp32 bundle, or adopt `--bundle` (verified by `plan_benchmark`) under its own
    precision. If the targets cannot be exported together, each is tried alone; one that still fails
    becomes the reason of its rows."""
    if plan.options.bundle is not None:
        bundle = Bundle(Path(plan.options.bundle), plan.bundle_manifest)
        found = bundle.manifest["preset"]["name"]
        if found != plan.cfg.name:
            raise ValueError(f"--bundle {plan.options.bundle} holds preset {found!r}, expected {plan.cfg.name!r} (--preset)")
        models.bundles[plan.bundle_precision] = bundle
        return
    targets = tuple(b for b in RUNTIME_BACKENDS if b in plan.backends)
    if not targets:
        return
    out = work / "bundle-fp32"
    try:
        _export_in_child(_export_options(plan, out, targets, plan.stages))
        models.bundles["fp32"] = Bundle(out, load_manifest(out))
        return
    except _EXPORT_ERRORS as err:
        if len(targets) == 1:
            models.unavailable[("fp32", targets[0])] = f"not available: export failed: {type(err).__name__}: {err}"
            return
        logger.warning("exporting %s together failed (%s); one target at a time", "+".join(targets), err)
    for target in targets:
        one = work / f"bundle-fp32-{target}"
        try:
            _export_in_child(_export_options(plan, one, (target,), plan.stages))
            models.by_target[("fp32", target)] = Bundle(one, load_manifest(one))
        except _EXPORT_ERRORS as err:
            models.unavailable[("fp32", target)] = f"not available: export failed: {type(err).__name__}: {err}"


def quantize_api():
    """`quantize.api` if it provides `quantize_bundle`, else None."""
    if importlib.util.find_spec("quantize") is None or importlib.util.find_spec("quantize.api") is None:
        return None
    api = importlib.import_module("quantize.api")
    return api if hasattr(api, "quantize_bundle") else None


def _quantize(api, fp32: Bundle, precision: str, out: Path, targets: tuple[str, ...] | None) -> Bundle:
    """One `quantize_bundle` call (no video evaluation, no floor gate: the benchmark reports the PSNR)."""
    import inspect

    wanted = {"overwrite": True, "progress": False, "targets": targets, "evaluate_video": False, "gate": False}
    accepted = inspect.signature(api.quantize_bundle).parameters
    api.quantize_bundle(fp32.directory, precision, out, **{k: v for k, v in wanted.items() if k in accepted})
    return Bundle(out, load_manifest(out))


_QUANTIZE_ERRORS = (ValueError, RuntimeError, NotImplementedError, ImportError, OSError)


def quantize_all(plan: BenchmarkPlan, work: Path, models: ModelSet, progress=None) -> None:
    """One quantized bundle per non-fp32 precision through `quantize.api`, when it exists. A recipe
    that one target cannot run is retried per target, so the other target's rows still come."""
    wanted = [p for p in plan.precisions if p != "fp32" and p not in models.bundles]  # not the --bundle's own
    api = quantize_api() if wanted else None
    fp32 = models.bundles.get("fp32")  # quantize needs one bundle with every target
    for precision in wanted:
        if api is None or fp32 is None:
            models.unavailable[(precision, "*")] = QUANTIZE_MISSING if api is None else "not available: no fp32 bundle to quantize"
            continue
        if progress:
            progress(f"quantizing the fp32 bundle: {precision}")
        try:
            models.bundles[precision] = _quantize(api, fp32, precision, work / f"bundle-{precision}", None)
            continue
        except _QUANTIZE_ERRORS as err:
            logger.warning("quantize %s for all targets failed (%s); trying each target", precision, err)
        for target in fp32.manifest["targets"]:
            try:
                models.by_target[(precision, target)] = _quantize(api, fp32, precision, work / f"bundle-{precision}-{target}", (target,))
            except _QUANTIZE_ERRORS as err:
                models.unavailable[(precision, target)] = f"not available: quantize_bundle({precision!r}, {target}) failed: {err}"


def _child_export_variant(preset: str, variant: str, out: Path, targets: tuple[str, ...]) -> None:
    """In a child: the UNet stage of `variant` converted for `targets` into `out`, plus a minimal
    manifest (`stages.unet.io/targets` and the hashed `files` table, as the runtime reads it)."""
    # deferred on purpose: torch and the converters load in this child only
    import torch

    from export.converters import export_stage
    from i2v_adapter.model.components import build_unet
    from i2v_adapter.model.stage_modules import UNetStage, sample_torch_inputs

    cfg = get_preset(preset)
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
    files = {rel: file_record(out / rel) for rel in bundle_files(out)}
    manifest = {"preset": {"name": cfg.name}, "variant": variant, "stages": {"unet": record}, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def export_variants(plan: BenchmarkPlan, work: Path, models: ModelSet) -> None:
    """base / naive / fused UNets for the runtime backends (the fp32 bundle's UNet serves as `fused`
    when it was exported with the default graph options). On mobile / sd15 only PyTorch compares them:
    three more full-size exports would take longer than the whole rest of the run."""
    targets = tuple(b for b in RUNTIME_BACKENDS if b in plan.backends and models.reason("fp32", b, "unet") is None)
    if plan.cfg.name in LARGE_PRESETS:
        for t in targets:
            models.variant_reason[t] = f"not measured on {plan.cfg.name}: one full-size export per variant (PyTorch rows compare them)"
        return
    fp32 = models.bundles.get("fp32")
    graph = fp32.manifest.get("graph_options", {}) if fp32 is not None else None
    reuse_fused = graph is not None and all(graph.get(k) == v for k, v in _DEFAULT_GRAPH.items())
    context = multiprocessing.get_context("spawn")
    for variant in ("base", "naive", "fused") if targets else ():
        if variant == "fused" and reuse_fused:
            models.variants[variant] = fp32
            continue
        logger.info("exporting the %s UNet for %s", variant, ", ".join(targets))
        out = work / f"unet-{variant}"
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                pool.submit(_child_export_variant, plan.cfg.name, variant, out, targets).result()
        except _EXPORT_ERRORS as err:
            for t in targets:
                models.variant_reason[t] = f"not available: exporting the {variant} UNet failed: {type(err).__name__}: {err}"
            return
        models.variants[variant] = Bundle(out, json.loads((out / "manifest.json").read_text(encoding="utf-8")))
