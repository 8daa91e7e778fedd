"""Export a preset's stages to a bundle directory: plan (all checks, no heavy work), build the PyTorch
stages, convert each stage for each target, gate parity, copy the tokenizer, write the manifest.

`plan_export` raises on every bad input (unknown preset or stage, shapes the model cannot take, an
existing output, missing checkpoints or export packages, a stage too large for TFLite) before a
single weight is allocated. `export_bundle` then writes through `atomic_output_dir`, so a failed
parity gate or an interrupted run leaves nothing at the output path.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from i2v_adapter.config import AttentionVariant, PresetConfig, get_preset
from i2v_adapter.media import atomic_output_dir
from i2v_adapter.stages import stage_specs

from . import parity as parity_lib
from .bundle import MANIFEST_NAME
from .manifest import StageRecord, TargetRecord, build_manifest, write_manifest
from .measure import usage
from .runners import RUNNERS, TFLITE_SIGNATURE

logger = logging.getLogger(__name__)

TARGETS = ("onnx", "tflite")
PARITY_SEED = 0
TOKENIZER_DIR = "tokenizer"
_WORK_DIR = "_work"
_TARGET_PACKAGES = {"onnx": ("onnx", "onnxruntime", "onnxslim"), "tflite": ("litert_torch", "ai_edge_litert")}


class ExportDependencyError(RuntimeError):
    """A package needed for the requested target is not installed."""


@dataclass(frozen=True)
class Checkpoints:
    """Local checkpoint paths (see `i2v_adapter.checkpoints.load_components`); all optional."""

    sd15: Path | None = None
    motion_module: Path | None = None
    adapter: Path | None = None
    loras: tuple[tuple[Path, float], ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.sd15 or self.motion_module or self.adapter or self.loras)

    def paths(self) -> dict[str, Path]:
        named = {"sd15": self.sd15, "motion_module": self.motion_module, "adapter": self.adapter}
        named.update({f"lora[{i}]": p for i, (p, _) in enumerate(self.loras)})
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class ExportOptions:
    """Everything `export_bundle` needs. `None` shape fields keep the preset's values."""

    out: Path
    preset: str = "tiny"
    targets: tuple[str, ...] = TARGETS
    stages: tuple[str, ...] | None = None  # None: every stage of the preset
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    attention: AttentionVariant = AttentionVariant.FUSED
    random_weights: bool = False
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    decompose_groupnorm: bool = False
    matmul_attention: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class ExportPlan:
    cfg: PresetConfig
    stages: tuple[str, ...]
    targets: tuple[str, ...]


def resolve_config(options: ExportOptions) -> PresetConfig:
    """The preset with the shape and attention overrides, verified (`ValueError` names the field)."""
    cfg = get_preset(options.preset)
    changes = {"num_frames": options.frames, "height": options.height, "width": options.width}
    changes = {k: v for k, v in changes.items() if v is not None}
    return cfg.with_overrides(**changes, attention=AttentionVariant(options.attention))


def _resolve_stages(cfg: PresetConfig, wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    available = list(stage_specs(cfg))
    if wanted is None:
        return tuple(available)
    if not wanted:
        raise ValueError(f"expected at least one stage from {', '.join(available)}, got none")
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown} for preset {cfg.name!r}: expected some of {', '.join(available)}")
    return tuple(s for s in available if s in wanted)  # contract order


def _check_weights(options: ExportOptions, cfg: PresetConfig) -> None:
    ckpt = options.checkpoints
    if not ckpt.any and cfg.name != "tiny" and not options.random_weights:
        raise ValueError(
            f"preset {cfg.name!r} needs checkpoints (--sd15 and --motion-module, optionally --adapter), "
            "or --random-weights to export the architecture with random weights"
        )
    for what, path in ckpt.paths().items():
        if not Path(path).exists():
            raise FileNotFoundError(f"{what} checkpoint not found: {path}")


def _check_packages(targets: tuple[str, ...]) -> None:
    for target in targets:
        missing = [p for p in _TARGET_PACKAGES[target] if importlib.util.find_spec(p) is None]
        if missing:
            raise ExportDependencyError(
                f"--target {target} needs the packages {missing}: pip install -e '.[export]'"
            )


def _check_tflite_sizes(cfg: PresetConfig, stages: tuple[str, ...]) -> None:
    """Refuse a stage whose fp32 weights pass the flatbuffer limit, counted on the meta device."""
    from i2v_adapter.info import model_info

    from .converters import check_tflite_size

    params = model_info(cfg.name, with_image_encoder=cfg.image_encoder is not None).stage_params
    for stage in stages:
        check_tflite_size(stage, params[stage] * 4)


def plan_export(options: ExportOptions) -> ExportPlan:
    """Every check that can fail, before any weight is built. Raises `ValueError` and friends."""
    targets = tuple(t for t in TARGETS if t in options.targets)
    unknown = [t for t in options.targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown target(s) {unknown or list(options.targets)}: expected onnx, tflite or both")
    cfg = resolve_config(options)
    stages = _resolve_stages(cfg, options.stages)
    out = Path(options.out)
    if out.exists() and not options.overwrite:
        raise FileExistsError(f"output already exists: {out} (pass --overwrite to replace it)")
    _check_weights(options, cfg)
    _check_packages(targets)
    if "tflite" in targets:
        _check_tflite_sizes(cfg, stages)
    return ExportPlan(cfg, stages, targets)


def _load_components(cfg: PresetConfig, ckpt: Checkpoints):
    if not ckpt.any:
        from i2v_adapter.models import build_components

        return build_components(cfg)
    from i2v_adapter.checkpoints import load_components

    return load_components(
        cfg,
        sd15=ckpt.sd15,
        motion_module=ckpt.motion_module,
        i2v_adapter=ckpt.adapter,
        loras=[p for p, _ in ckpt.loras],
        lora_scales=[s for _, s in ckpt.loras],
    )


def _weights_record(options: ExportOptions, cfg: PresetConfig) -> dict:
    ckpt = options.checkpoints
    if ckpt.any:
        source = "checkpoints"
    else:
        source = "embedded-default" if cfg.name == "tiny" and not options.random_weights else "random"
    record = {"source": source, "seed": cfg.seed}
    if ckpt.any:
        record["checkpoints"] = {k: str(v) for k, v in ckpt.paths().items()}
        record["lora_scales"] = [s for _, s in ckpt.loras]
    return record


@dataclass
class _StageJob:
    """A stage's module, contract, sample inputs and PyTorch reference output."""

    module: object
    spec: object
    feeds: dict[str, np.ndarray]
    reference: np.ndarray


def _prepare_jobs(modules: dict, cfg: PresetConfig, stages: tuple[str, ...]) -> dict[str, _StageJob]:
    """Reference outputs of the unmodified PyTorch stages (before any graph option rewrites them)."""
    import torch

    specs = stage_specs(cfg)
    jobs = {}
    for name in stages:
        spec = specs[name]
        feeds = spec.sample_inputs(PARITY_SEED)
        with torch.no_grad():
            ref = modules[name](*(torch.from_numpy(v) for v in feeds.values()))
        jobs[name] = _StageJob(modules[name], spec, feeds, ref.numpy())
    return jobs


def _apply_graph_options(jobs: dict[str, _StageJob], options: ExportOptions) -> None:
    if options.decompose_groupnorm:
        from .graph_options import decompose_groupnorm

        for name, job in jobs.items():
            logger.info("%s: decomposed %d GroupNorm layers", name, decompose_groupnorm(job.module))


def _export_one(job: _StageJob, target: str, bundle: Path, cfg: PresetConfig) -> TargetRecord:
    import torch

    from .converters import export_stage

    spec = job.spec
    args = tuple(torch.from_numpy(v) for v in job.feeds.values())
    with usage() as used:
        files = export_stage(target, job.module, spec, args, bundle, work_dir=bundle / _WORK_DIR, progress=False)
        converted = time.perf_counter()
        out = RUNNERS[target](files[0], job.feeds, spec.output_names)[spec.output_names[0]]
        guided = cfg.batch_size if spec.name == "unet" else None
        figures = parity_lib.measure(out, job.reference, guided_batch_size=guided)
    used.parity_seconds = time.perf_counter() - converted
    return TargetRecord([f.relative_to(bundle).as_posix() for f in files], figures, used)


def _export_stages(jobs: dict[str, _StageJob], plan: ExportPlan, bundle: Path, options: ExportOptions) -> dict[str, StageRecord]:
    from .graph_options import matmul_attention

    records = {name: StageRecord(job.spec) for name, job in jobs.items()}
    total, done = len(jobs) * len(plan.targets), 0
    with matmul_attention() if options.matmul_attention else nullcontext():
        for name, job in jobs.items():
            for target in plan.targets:
                done += 1
                logger.info("[%d/%d] %s -> %s ...", done, total, name, target)
                record = _export_one(job, target, bundle, plan.cfg)
                p = record.parity
                logger.info(
                    "[%d/%d] %s -> %s: %s, PSNR %.1f dB, max-abs %.2e, %.1f s, peak %.0f MB",
                    done, total, name, target, record.files[0], p.psnr_db, p.max_abs,
                    record.usage.seconds, record.usage.peak_rss_mb,
                )
                parity_lib.check(p, stage=name, target=target)
                records[name].targets[target] = record
    return records


def export_bundle(options: ExportOptions) -> dict:
    """Export, verify and write the bundle at `options.out`; return its manifest.

    Raises `parity.ParityError` (nothing written) if a stage fails the gate.
    """
    plan = plan_export(options)
    cfg = plan.cfg
    from i2v_adapter.stage_modules import stage_modules

    from .converters import ONNX_OPSET

    logger.info("building %s components (%s)", cfg.name, _weights_record(options, cfg)["source"])
    components = _load_components(cfg, options.checkpoints)
    jobs = _prepare_jobs(stage_modules(components), cfg, plan.stages)
    _apply_graph_options(jobs, options)
    with atomic_output_dir(options.out, overwrite=options.overwrite) as bundle:
        records = _export_stages(jobs, plan, bundle, options)
        shutil.rmtree(bundle / _WORK_DIR, ignore_errors=True)
        components.tokenizer.save_pretrained_files(bundle / TOKENIZER_DIR)
        graph = {
            "attention": cfg.attention.value,
            "decompose_groupnorm": options.decompose_groupnorm,
            "matmul_attention": options.matmul_attention,
            "onnx_opset": ONNX_OPSET if "onnx" in plan.targets else None,
            "tflite_signature": TFLITE_SIGNATURE if "tflite" in plan.targets else None,
        }
        manifest = build_manifest(
            bundle,
            cfg=cfg,
            targets=list(plan.targets),
            stages=records,
            weights=_weights_record(options, cfg),
            graph_options=graph,
            tokenizer_dir=TOKENIZER_DIR,
            parity_seed=PARITY_SEED,
        )
        write_manifest(bundle, manifest)
    logger.info("wrote %s/%s", options.out, MANIFEST_NAME)
    return manifest
