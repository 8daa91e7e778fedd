"""`quantize_bundle`: an fp32 bundle in, a quantized bundle out (same layout, updated manifest).

Every check that can fail cheaply runs first (existing output, unknown recipe, a bundle with a
missing file or a wrong hash, a recipe the target cannot run); then the PyTorch reference is rebuilt
and checked against the bundle, calibration data is recorded if the recipe is static, each stage is
quantized for each target into a temporary folder, measured in its runtime against PyTorch, the
whole pipeline is run end to end, and the folder is renamed into place. A stage below the recipe's
floor raises `QuantizationParityError` with the figures, and nothing is written.

The output manifest is the input's with, per stage, `precision` and per target the new `parity`
(against the fp32 PyTorch stage), a `quantization` record (method, bytes, ratio to fp32, seconds),
and at top level `precision` (the recipe name) and `quantization` (recipe, calibration, sizes,
end-to-end video PSNR). `i2v_core.bundle.verify_bundle` accepts it and
`runtime_py.pipeline.RuntimePipeline.from_bundle` runs it unchanged.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from i2v_core import PROJECT, __version__
from i2v_core.bundle import (
    BUNDLE_OUTPUT,
    EXTENSIONS,
    MANIFEST_NAME,
    bundle_files,
    check_inside,
    file_record,
    load_manifest,
    sha256_file,
)
from i2v_core.manifest import write_manifest
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import check_separate
from quantize.calibration import CALIBRATION_DIR, CalibrationConfig, CalibrationSet, save_calibration
from quantize.context import BundleContext, check_fp32, get_calibration, load_context
from quantize.fidelity import measure_file, video_fidelity, video_reference
from quantize.onnx_backend import quantize_onnx
from quantize.recipes import TARGETS, Recipe, get_recipe
from quantize.sizes import weight_bytes
from quantize.tflite_backend import quantize_tflite
from runtime_py.pipeline import REQUIRED_STAGES

logger = logging.getLogger(__name__)


class QuantizationParityError(RuntimeError):
    """A quantized stage falls below its recipe's fidelity floor."""


def resolve_recipe(recipe: str | Path | Recipe) -> Recipe:
    return recipe if isinstance(recipe, Recipe) else get_recipe(recipe)


def _check_output(out: Path, bundle: Path, overwrite: bool, calibration=None) -> None:
    """The output apart from its inputs, and replaceable (an existing bundle only with `overwrite`)."""
    check_separate(out, {"--bundle": bundle, "--calibration": calibration})
    check_output_dir(out, overwrite=overwrite, kind=BUNDLE_OUTPUT)


def _resolve_targets(manifest: dict, wanted) -> tuple[str, ...]:
    available = tuple(manifest["targets"])
    if wanted is None:
        return available
    unknown = [t for t in wanted if t not in TARGETS]
    absent = [t for t in wanted if t in TARGETS and t not in available]
    if unknown or absent or not wanted:
        raise ValueError(f"expected targets from the bundle's {list(available)}, got {list(wanted)}")
    return tuple(t for t in available if t in wanted)


def check_request(bundle_dir, recipe: Recipe, out_dir, *, overwrite: bool, targets=None, calibration=None) -> tuple[dict, tuple[str, ...]]:
    """The cheap checks, in the order a user fixes them; returns (manifest, targets)."""
    bundle, out = Path(bundle_dir), Path(out_dir)
    _check_output(out, bundle, overwrite, calibration)
    manifest = load_manifest(bundle)  # the full hash check follows in load_context
    check_fp32(manifest, bundle)
    stages = tuple(manifest["stages"])
    recipe.verify(stages)
    chosen = _resolve_targets(manifest, targets)
    for target in chosen:
        recipe.check_target(target, stages)
    return manifest, chosen


def _quantize_file(ctx: BundleContext, recipe: Recipe, stage: str, target: str, dst: Path, calib, work: Path) -> dict:
    src = ctx.stage_file(stage, target)
    stage_recipe = recipe.for_stage(stage)
    if stage_recipe.is_float and not recipe.float_groups(stage):
        shutil.copyfile(src, dst)
        return {"method": "copied (fp32)"}
    kwargs = dict(
        stage=stage,
        calibration=calib.for_stage(stage) if calib is not None else None,
        keep_float=recipe.float_groups(stage),
    )
    if target == "onnx":
        return quantize_onnx(src, dst, stage_recipe, cache=work / f"{stage}.ranges.json", **kwargs)
    return quantize_tflite(src, dst, stage_recipe, **kwargs)


def _stage_entry(ctx: BundleContext, recipe: Recipe, stage: str, target: str, out: Path, calib, work: Path) -> dict:
    entry = copy.deepcopy(ctx.manifest["stages"][stage]["targets"][target])
    rel = f"{stage}{EXTENSIONS[target]}"
    start = time.perf_counter()
    info = _quantize_file(ctx, recipe, stage, target, out / rel, calib, work)
    seconds = time.perf_counter() - start
    figures = measure_file(target, out / rel, ctx.refs[stage], ctx.guided_batch_size)
    fp32_bytes = ctx.manifest["files"][entry["file"]]["bytes"]
    size = (out / rel).stat().st_size
    weights, fp32_weights = weight_bytes(out / rel, target), weight_bytes(ctx.stage_file(stage, target), target)
    entry.update(
        file=rel,
        extra_files=[],
        parity=figures.to_dict(),
        quantization={
            **info,
            "recipe": recipe.for_stage(stage).to_dict(),
            "keep_float": list(recipe.float_groups(stage)),
            "bytes": size,
            "fp32_bytes": fp32_bytes,
            "ratio_to_fp32": round(size / fp32_bytes, 4),
            "weight_bytes": weights,
            "fp32_weight_bytes": fp32_weights,
            "weight_ratio_to_fp32": round(weights / fp32_weights, 4),
            "seconds": round(seconds, 3),
        },
    )
    logger.info(
        "%s -> %s %s: PSNR %.1f dB, max-abs %.3g%s, %.2f MB (%.3fx fp32), %.1f s",
        stage, target, recipe.stage_precision(stage), figures.psnr_db, figures.max_abs,
        f", cfg corr {figures.guidance_correlation:.4f}" if figures.guidance_correlation is not None else "",
        size / 1e6, size / fp32_bytes, seconds,
    )
    return entry


def check_floors(manifest: dict, recipe: Recipe) -> None:
    """`QuantizationParityError` listing every stage below the recipe's floors."""
    problems = []
    for stage, record in manifest["stages"].items():
        for target, entry in record["targets"].items():
            p = entry["parity"]
            if recipe.min_psnr_db is not None and p["psnr_db"] < recipe.min_psnr_db:
                problems.append(f"{stage} {target}: PSNR {p['psnr_db']:.1f} dB < {recipe.min_psnr_db:g} dB (max-abs {p['max_abs']:.3g})")
            corr = p.get("guidance_correlation")
            if corr is not None and recipe.min_guidance_correlation is not None and corr < recipe.min_guidance_correlation:
                problems.append(f"{stage} {target}: guidance delta correlation {corr:.4f} < {recipe.min_guidance_correlation}")
    if problems:
        raise QuantizationParityError(f"recipe {recipe.name!r} fails its fidelity floors: " + "; ".join(problems))


def _sizes(manifest: dict, targets) -> dict:
    sizes = {}
    for target in targets:
        entries = [rec["targets"][target] for rec in manifest["stages"].values()]
        total = {k: sum(e["quantization"][k] for e in entries) for k in ("bytes", "fp32_bytes", "weight_bytes", "fp32_weight_bytes")}
        total["ratio_to_fp32"] = round(total["bytes"] / total["fp32_bytes"], 4)
        total["weight_ratio_to_fp32"] = round(total["weight_bytes"] / total["fp32_weight_bytes"], 4)
        sizes[target] = total
    return sizes


def _new_manifest(ctx: BundleContext, recipe: Recipe, targets, stages: dict, calib: CalibrationSet | None, calib_files) -> dict:
    manifest = copy.deepcopy(ctx.manifest)
    manifest["created_by"] = f"{PROJECT} {__version__} quantize.run"
    manifest["precision"] = recipe.name
    manifest["targets"] = list(targets)
    manifest["stages"] = stages
    # the gate of this bundle is the recipe's (None: reported only), not the fp32 export's 60 dB
    manifest["parity"] = {
        **manifest.get("parity", {}),
        "min_psnr_db": recipe.min_psnr_db,
        "min_guidance_correlation": recipe.min_guidance_correlation,
    }
    manifest["quantization"] = {
        "recipe": recipe.to_dict(),
        "source_bundle": {"path": str(ctx.bundle), "manifest_sha256": sha256_file(ctx.bundle / MANIFEST_NAME)},
        "parity": "per stage vs the fp32 PyTorch stage on StageSpec.sample_inputs(parity.seed); see parity.definition",
        "sizes": _sizes(manifest, targets),
        "calibration": None if calib is None else {**calib.record, "files": calib_files},
    }
    return manifest


def _finish_manifest(directory: Path, manifest: dict) -> dict:
    manifest["files"] = {rel: file_record(directory / rel) for rel in bundle_files(directory)}
    write_manifest(directory, manifest)
    return manifest


class QuantizeSession:
    """One fp32 bundle, quantized with any number of recipes: the verified manifest, the PyTorch
    reference, the recorded calibration data and the fp32 reference video are built once, on first use.

    `calibration`: a bundle or `calibration/` folder whose recorded data to reuse instead of recording.
    """

    def __init__(self, bundle_dir, *, calibration=None, calibration_config: CalibrationConfig = CalibrationConfig(), progress: bool = True):
        self.bundle = Path(bundle_dir)
        self.calibration_source = None if calibration is None else Path(calibration)
        self.calibration_config = calibration_config
        self.progress = progress
        self._context: BundleContext | None = None
        self._calibration: CalibrationSet | None = None
        self._video = None
        # onnxruntime's calibration-range caches, one per stage: the same data and fp32 files for every
        # recipe of the session, so w8a16 and int8-static calibrate once (ranges do not depend on the type)
        self._ranges = tempfile.TemporaryDirectory(prefix="quantize-ranges-")

    @property
    def context(self) -> BundleContext:
        if self._context is None:
            self._context = load_context(self.bundle)
        return self._context

    @property
    def calibration(self) -> CalibrationSet:
        if self._calibration is None:
            self._calibration = get_calibration(self.context, self.calibration_source, self.calibration_config, self.progress)
        return self._calibration

    @property
    def video(self):
        if self._video is None:
            self._video = video_reference(self.context.pipe)
        return self._video

    def quantize(self, recipe, out_dir, *, overwrite: bool = False, targets=None, evaluate_video: bool = True, gate: bool = True) -> dict:
        """Quantize into `out_dir` with `recipe` (a name, a recipe .json or a `Recipe`); return the new manifest."""
        recipe = resolve_recipe(recipe)
        out = Path(out_dir)
        _, chosen = check_request(self.bundle, recipe, out, overwrite=overwrite, targets=targets,
                                  calibration=self.calibration_source)
        ctx = self.context
        calib = self.calibration if recipe.needs_calibration else None
        missing = [s for s in REQUIRED_STAGES if s not in ctx.stages]
        if evaluate_video and missing:
            logger.info("no end-to-end video: the bundle has no %s stage", ", ".join(missing))
        video_ref = self.video if evaluate_video and not missing else None
        jobs = [(s, t) for s in ctx.stages for t in chosen]
        with atomic_output_dir(out, overwrite=overwrite, kind=BUNDLE_OUTPUT) as tmp:
            stages = {s: {**copy.deepcopy(ctx.manifest["stages"][s]), "precision": recipe.stage_precision(s), "targets": {}} for s in ctx.stages}
            for stage, target in tqdm(jobs, desc=f"quantize {recipe.name}", disable=not self.progress, leave=False):
                stages[stage]["targets"][target] = _stage_entry(ctx, recipe, stage, target, tmp, calib, Path(self._ranges.name))
            tok = ctx.manifest["tokenizer"]["directory"]
            shutil.copytree(check_inside(self.bundle, tok, "tokenizer directory"), tmp / tok)
            calib_files = save_calibration(tmp, ctx.specs, calib) if calib is not None else []
            manifest = _finish_manifest(tmp, _new_manifest(ctx, recipe, chosen, stages, calib, calib_files))
            if gate:
                check_floors(manifest, recipe)
            if evaluate_video and missing:
                manifest["quantization"]["end_to_end"] = {"skipped": f"a video needs every stage; the bundle has no {', '.join(missing)}"}
                manifest = _finish_manifest(tmp, manifest)
            if video_ref is not None:
                manifest["quantization"]["end_to_end"] = {t: video_fidelity(tmp, t, video_ref) for t in chosen}
                for t, figures in manifest["quantization"]["end_to_end"].items():
                    logger.info("end to end %s: frame PSNR mean %.1f dB, min %.1f dB", t, figures["psnr_db_mean"], figures["psnr_db_min"])
                manifest = _finish_manifest(tmp, manifest)
        logger.info("wrote %s (%s)", out, recipe.name)
        return manifest


def quantize_bundle(
    bundle_dir,
    recipe,
    out_dir,
    *,
    overwrite: bool = False,
    progress: bool = True,
    targets=None,
    calibration=None,
    calibration_config: CalibrationConfig = CalibrationConfig(),
    evaluate_video: bool = True,
    gate: bool = True,
) -> dict:
    """Quantize the fp32 bundle at `bundle_dir` with `recipe` (a name, a recipe .json or a `Recipe`)
    into `out_dir`; return the new manifest.

    `targets`: a subset of the bundle's targets (default all); `calibration`: a bundle or
    `calibration/` folder whose recorded data to reuse instead of recording; `evaluate_video`: run
    the end-to-end comparison; `gate`: raise `QuantizationParityError` below the recipe's floors.
    Cheap checks (output exists, recipe, targets) run before the bundle's hashes are verified.
    """
    recipe = resolve_recipe(recipe)
    check_request(bundle_dir, recipe, out_dir, overwrite=overwrite, targets=targets, calibration=calibration)
    session = QuantizeSession(bundle_dir, calibration=calibration, calibration_config=calibration_config, progress=progress)
    return session.quantize(recipe, out_dir, overwrite=overwrite, targets=targets, evaluate_video=evaluate_video, gate=gate)


__all__ = ["quantize_bundle", "QuantizeSession", "QuantizationParityError", "check_request", "resolve_recipe", "CALIBRATION_DIR"]
