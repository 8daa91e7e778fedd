"""What every quantization step needs from an fp32 bundle: its verified manifest, stage contract,
the rebuilt PyTorch reference (checked against the bundle's files), and calibration data."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from i2v_adapter.model.stage_modules import stage_modules
from i2v_adapter.pipeline import I2VPipeline
from i2v_core.bundle import BundleError, bundle_path, verify_bundle
from i2v_core.stages import TIMESTEP, TIMESTEP_EMBEDDING, StageSpec, timestep_feeds
from quantize.calibration import CALIBRATION_DIR, CalibrationConfig, CalibrationSet, load_calibration, record_calibration
from quantize.fidelity import StageReference, check_reference, reference_components, stage_references

logger = logging.getLogger(__name__)


@dataclass
class BundleContext:
    bundle: Path
    manifest: dict
    specs: dict[str, StageSpec]
    components: object  # i2v_adapter.model.components.Components
    refs: dict[str, StageReference]
    guided_batch_size: int
    _pipe: object = field(default=None, repr=False)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self.specs)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.manifest["targets"])

    def stage_file(self, stage: str, target: str) -> Path:
        entry = self.manifest["stages"][stage]["targets"].get(target)
        if entry is None:
            raise ValueError(f"bundle {self.bundle}: stage {stage!r} has no {target!r} model")
        if entry.get("extra_files") or entry.get("chunks"):
            raise ValueError(
                f"expected one {target} model file for {stage}, found {[entry['file'], *entry.get('extra_files', [])]} "
                "(external data or UNet chunks): quantize/ reads one model file per stage"
            )
        return bundle_path(self.bundle, self.manifest, entry["file"], f"stage {stage} target {target} file")

    @property
    def pipe(self):
        """The fp32 `I2VPipeline` over the reference components (built on first use)."""
        if self._pipe is None:
            self._pipe = I2VPipeline(self.components)
        return self._pipe


def check_fp32(manifest: dict, bundle: Path) -> None:
    precision = manifest.get("precision", "fp32")
    if precision != "fp32":
        raise BundleError(f"expected an fp32 bundle from export.build to quantize, found precision {precision!r} in {bundle}")


def load_context(bundle_dir: str | Path) -> BundleContext:
    """Verify the bundle (files, sizes, sha256), rebuild its PyTorch reference, check it against the files."""
    bundle = Path(bundle_dir)
    manifest = verify_bundle(bundle)
    check_fp32(manifest, bundle)
    specs = {name: StageSpec.from_dict(name, rec["io"]) for name, rec in manifest["stages"].items()}
    components = reference_components(manifest)
    modules = stage_modules(components, manifest.get("graph_options", {}).get("npu"))  # the bundle's contract
    missing = [s for s in specs if s not in modules]
    if missing:
        raise BundleError(f"bundle stages {missing} have no PyTorch reference for preset {manifest['preset']['name']!r}")
    seed = int(manifest.get("parity", {}).get("seed", 0))
    refs = stage_references(modules, specs, seed)
    guided = components.config.batch_size
    check_reference(bundle, manifest, refs, guided)
    return BundleContext(bundle, manifest, specs, components, refs, guided)


def _as_contract(calib: CalibrationSet, specs: dict[str, StageSpec]) -> CalibrationSet:
    """The recorded calls as the bundle's contract takes them: under an NPU profile the UNet's
    `timestep` becomes the `timestep_embedding` the runtime would compute from it."""
    for name, spec in specs.items():
        if TIMESTEP_EMBEDDING in spec.input_names and calib.count(name):
            calib.feeds[name] = [
                {n: {**f, **timestep_feeds(spec, f[TIMESTEP][0])}[n] for n in spec.input_names} for f in calib.feeds[name]
            ]
    return calib


def get_calibration(ctx: BundleContext, source: Path | None, config: CalibrationConfig, progress: bool) -> CalibrationSet:
    """Calibration from `source` (a bundle or its `calibration/` folder), else recorded from the
    fp32 pipeline. Stages missing from `source` are an error naming them."""
    if source is None:
        logger.info("recording calibration data from the PyTorch pipeline (%d images)", config.images)
        return _as_contract(record_calibration(ctx.pipe, config, progress=progress), ctx.specs)
    folder = Path(source)
    bundle = folder.parent if folder.name == CALIBRATION_DIR else folder
    calib = load_calibration(bundle, ctx.specs, {"source": f"loaded from {bundle / CALIBRATION_DIR}"})
    missing = [s for s in ctx.specs if calib.count(s) == 0]
    if missing:
        raise FileNotFoundError(f"calibration data in {bundle / CALIBRATION_DIR} lacks stages {missing}")
    calib.record["samples"] = {s: calib.count(s) for s in ctx.specs}
    return calib
