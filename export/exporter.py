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
import torch

from export.chunking import (
    CHUNK_LIMIT_BYTES,
    build_chunks,
    chunk_spec,
    chunks_needed,
    plan_chunks,
    run_chunks,
    unet_units,
    unit_parameter_bytes,
)
from export.converters import ONNX_OPSET, check_tflite_size, export_stage
from export.graph_options import (
    OneHotTextEncoder,
    chunked_attention,
    decompose_groupnorm,
    matmul_attention,
    repeat_interleave_as_concat,
)
from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.checkpoints.shipped import default_components, shipped_record
from i2v_adapter.info import model_info
from i2v_adapter.model.components import build_unet
from i2v_adapter.model.stage_modules import UNetEmbeddingStage, stage_modules
from i2v_core import parity as parity_lib
from i2v_core.bundle import BUNDLE_OUTPUT, MANIFEST_NAME
from i2v_core.cli import check_interrupted
from i2v_core.config import AttentionVariant, ImageEncoderConfig, PresetConfig, get_preset, tiny_image_encoder
from i2v_core.manifest import StageRecord, TargetRecord, build_manifest, write_manifest
from i2v_core.measure import release_memory, usage
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import check_separate
from i2v_core.runners import RUNNERS, TFLITE_SIGNATURE
from i2v_core.stages import TIMESTEP, SinusoidalEmbedding, StageSpec, stage_specs, timestep_feeds

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
    """Local checkpoint paths (see `i2v_adapter.checkpoints.load.load_components`); all optional."""

    sd15: Path | None = None
    motion_module: Path | None = None
    adapter: Path | None = None
    loras: tuple[tuple[Path, float], ...] = ()
    ip_adapter: Path | None = None  # IP-Adapter-Plus SD1.5 (content adapter) .safetensors
    image_encoder: Path | None = None  # CLIP vision folder for the content adapter
    ip_projections: Path | None = None  # to_k_ip / to_v_ip split out of an official I2V-Adapter file

    @property
    def any(self) -> bool:
        return bool(self.sd15 or self.motion_module or self.adapter or self.loras or self.ip_adapter or self.image_encoder
                    or self.ip_projections)

    def paths(self) -> dict[str, Path]:
        named = {
            "sd15": self.sd15,
            "motion_module": self.motion_module,
            "adapter": self.adapter,
            "ip_adapter": self.ip_adapter,
            "image_encoder": self.image_encoder,
            "ip_projections": self.ip_projections,
        }
        named.update({f"lora[{i}]": p for i, (p, _) in enumerate(self.loras)})
        return {k: v for k, v in named.items() if v is not None}

    def flags(self) -> dict[str, Path]:
        """The paths by command-line flag (`--sd15`, `--motion-module`, `--lora[0]`, ...)."""
        return {"--" + k.replace("_", "-"): p for k, p in self.paths().items()}


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
    content_adapter: bool = False  # add the IP-Adapter-Plus content adapter and the image_encoder stage
    decompose_groupnorm: bool = False
    matmul_attention: bool = False
    attention_chunk_mb: float | None = None  # attention over this many MB of scores runs in query chunks
    unet_chunks: int | None = None  # None: as few as keep each chunk under CHUNK_LIMIT_BYTES of weights
    # NPU graph profile (`i2v_core.stages.NPU_PROFILES`): the UNet takes the timestep embedding, the text
    # encoder looks tokens up by one-hot matmul, repeats are concatenations, GroupNorm is decomposed.
    npu: str | None = None
    overwrite: bool = False

    @property
    def groupnorm_decomposed(self) -> bool:
        """`--decompose-groupnorm`, or an NPU profile: litert-torch lowers a GroupNorm whose affine is the
        identity (untrained weights) with BROADCAST_TO, and the decomposition has fewer ops either way."""
        return self.decompose_groupnorm or self.npu is not None


@dataclass(frozen=True)
class ExportPlan:
    cfg: PresetConfig
    stages: tuple[str, ...]
    targets: tuple[str, ...]
    unet_chunks: int = 1
    unet_unit_bytes: tuple[int, ...] = ()


def resolve_config(options: ExportOptions) -> PresetConfig:
    """The preset with the shape and attention overrides, verified (`ValueError` names the field)."""
    cfg = get_preset(options.preset)
    changes = {"num_frames": options.frames, "height": options.height, "width": options.width}
    changes = {k: v for k, v in changes.items() if v is not None}
    ckpt = options.checkpoints
    if (ckpt.ip_adapter or ckpt.image_encoder or ckpt.ip_projections) and not options.content_adapter:
        raise ValueError("--ip-adapter / --image-encoder / --ip-projections are content-adapter weights: pass --content-adapter too")
    if options.content_adapter and cfg.image_encoder is None:
        changes["image_encoder"] = tiny_image_encoder() if cfg.name == "tiny" else ImageEncoderConfig()
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
    """Refuse a stage whose fp32 weights pass the flatbuffer limit, counted on the meta device.

    The UNet is checked per chunk by `_plan_unet_chunks`."""
    params = model_info(cfg.name, with_image_encoder=cfg.image_encoder is not None).stage_params
    for stage in stages:
        if stage != "unet":
            check_tflite_size(stage, params[stage] * 4)


def _plan_unet_chunks(cfg: PresetConfig, wanted: int | None, targets: tuple[str, ...]) -> tuple[int, tuple[int, ...]]:
    """How many chunks the UNet is exported in, and its fp32 weight bytes per unit (meta device)."""

    with torch.device("meta"):
        unet = build_unet(cfg)
    unit_bytes = unit_parameter_bytes(unet, unet_units(unet, image=cfg.image_encoder is not None))
    n = chunks_needed(unit_bytes, CHUNK_LIMIT_BYTES) if wanted is None else wanted
    runs = plan_chunks(unit_bytes, n)  # ValueError for a count the UNet cannot be cut into
    if "tflite" in targets:
        for i, (a, b) in enumerate(runs):
            check_tflite_size("unet" if n == 1 else f"unet chunk {i} of {n}", sum(unit_bytes[a:b]))
    return n, tuple(unit_bytes)


def plan_export(options: ExportOptions) -> ExportPlan:
    """Every check that can fail, before any weight is built. Raises `ValueError` and friends."""
    targets = tuple(t for t in TARGETS if t in options.targets)
    unknown = [t for t in options.targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown target(s) {unknown or list(options.targets)}: expected onnx, tflite or both")
    cfg = resolve_config(options)
    stages = _resolve_stages(cfg, options.stages)
    if options.npu is not None:
        stage_specs(cfg, options.npu)  # ValueError naming the known profiles
    if options.attention_chunk_mb is not None and not options.attention_chunk_mb > 0:
        raise ValueError(f"expected --attention-chunk-mb to be a positive number of MB, got {options.attention_chunk_mb!r}")
    check_separate(options.out, options.checkpoints.flags())
    check_output_dir(options.out, overwrite=options.overwrite, kind=BUNDLE_OUTPUT)
    _check_weights(options, cfg)
    _check_packages(targets)
    if "tflite" in targets:
        _check_tflite_sizes(cfg, stages)
    if "unet" in stages:
        chunks, unit_bytes = _plan_unet_chunks(cfg, options.unet_chunks, targets)
        return ExportPlan(cfg, stages, targets, chunks, unit_bytes)
    return ExportPlan(cfg, stages, targets)


def _load_components(cfg: PresetConfig, ckpt: Checkpoints, random_weights: bool):
    if not ckpt.any:
        return default_components(cfg, random_weights=random_weights)

    return load_components(
        cfg,
        sd15=ckpt.sd15,
        motion_module=ckpt.motion_module,
        i2v_adapter=ckpt.adapter,
        loras=[p for p, _ in ckpt.loras],
        lora_scales=[s for _, s in ckpt.loras],
        ip_adapter=ckpt.ip_adapter,
        image_encoder=ckpt.image_encoder,
        ip_projections=ckpt.ip_projections,
    )


def _weights_record(options: ExportOptions, cfg: PresetConfig) -> dict:
    ckpt = options.checkpoints
    if ckpt.any:
        source = "checkpoints"
    else:
        source = "embedded-default" if cfg.name == "tiny" and not options.random_weights else "random"
    record = {"source": source, "seed": cfg.seed}
    if source == "embedded-default":
        trained = shipped_record(cfg)
        if trained is not None:
            record["trained"] = trained  # the preset's shipped trained weights, by hash
    if ckpt.any:
        record["checkpoints"] = {k: str(v) for k, v in ckpt.paths().items()}
        record["lora_scales"] = [s for _, s in ckpt.loras]
    return record


@dataclass
class _StageJob:
    """A stage's module, contract, sample inputs and PyTorch reference output.

    A chunked UNet also has its chunk modules, their specs and every named tensor of a reference run
    through the chunks (`chunk_env`), so each chunk is converted and checked on its real inputs."""

    module: object
    spec: object
    feeds: dict[str, np.ndarray]
    reference: np.ndarray
    chunks: list = field(default_factory=list)
    chunk_specs: list = field(default_factory=list)
    chunk_io: list[tuple[dict, dict]] = field(default_factory=list)  # numpy (inputs, outputs) per chunk


def _prepare_chunks(job: _StageJob, plan: ExportPlan) -> None:
    """Cut the UNet into `plan.unet_chunks` and check the chunks reproduce the whole stage."""

    job.chunks = build_chunks(job.module, job.spec, plan.unet_chunks, list(plan.unet_unit_bytes))
    io = run_chunks(job.chunks, {k: torch.from_numpy(v) for k, v in job.feeds.items()})
    job.chunk_specs = [chunk_spec(job.spec.name, i, *pair) for i, pair in enumerate(io)]
    job.chunk_io = [tuple({k: v.numpy() for k, v in d.items()} for d in pair) for pair in io]
    chained = parity_lib.measure(job.chunk_io[-1][1][job.spec.output_names[0]], job.reference)
    if chained.psnr_db < parity_lib.FP32_MIN_PSNR_DB:  # the chunks must be the UNet, before any conversion
        raise RuntimeError(f"the {len(job.chunks)} UNet chunks do not reproduce the UNet in PyTorch: {chained}")
    logger.info("unet: %d chunks, %s", len(job.chunks), " | ".join(",".join(u.name for u in c.units) for c in job.chunks))


def _prepare_jobs(modules: dict, plan: ExportPlan, npu: str | None = None) -> dict[str, _StageJob]:
    """Reference outputs of the unmodified PyTorch stages (before any graph option rewrites them).

    Under an NPU profile each job then takes that profile's module, contract and inputs, and keeps the
    reference: parity measures the profile's rewrites too (for the UNet: the runtime's numpy timestep
    embedding and the exported graph against the unmodified UNet at that timestep)."""
    specs = stage_specs(plan.cfg)
    npu_specs = stage_specs(plan.cfg, npu) if npu else specs
    jobs = {}
    for name in plan.stages:
        spec = specs[name]
        feeds = spec.sample_inputs(PARITY_SEED)
        with torch.no_grad():
            ref = modules[name](*(torch.from_numpy(v) for v in feeds.values()))
        jobs[name] = _StageJob(modules[name], spec, feeds, ref.numpy())
        if npu:
            _npu_job(jobs[name], npu_specs[name])
        if name == "unet" and plan.unet_chunks > 1:
            _prepare_chunks(jobs[name], plan)
    return jobs


def _check_time_proj(unet, embedding: SinusoidalEmbedding) -> None:
    """The UNet must compute the embedding the contract describes (the runtime computes it instead)."""
    proj = getattr(unet.time_proj, "original", unet.time_proj)  # under a GivenTimeProj, the Timesteps
    found = SinusoidalEmbedding(
        proj.num_channels, bool(proj.flip_sin_to_cos), float(proj.downscale_freq_shift), float(proj.scale)
    )
    if found != embedding:
        raise ValueError(f"the UNet's time_proj computes {found}, the stage contract says {embedding}")


def _npu_job(job: _StageJob, spec: StageSpec) -> None:
    """A job under an NPU profile: the UNet takes the timestep embedding (computed here from the parity
    timestep, as the runtime does); the text encoder looks tokens up by one-hot matmul."""
    if spec.name == "unet":
        embedding = next(t.embedding for t in spec.inputs if t.embedding is not None)
        _check_time_proj(job.module.unet, embedding)
        given = timestep_feeds(spec, job.feeds[TIMESTEP][0])
        job.feeds = {n: given[n] if n in given else job.feeds[n] for n in spec.input_names}
        job.module = UNetEmbeddingStage(job.module.unet).eval()
    elif spec.name == "text_encoder":
        job.module = OneHotTextEncoder(job.module).eval()
    job.spec = spec


def _apply_graph_options(jobs: dict[str, _StageJob], options: ExportOptions) -> None:
    if options.groupnorm_decomposed:
        for name, job in jobs.items():
            logger.info("%s: decomposed %d GroupNorm layers", name, decompose_groupnorm(job.module))


def _export_one(job: _StageJob, target: str, bundle: Path, cfg: PresetConfig) -> TargetRecord:

    spec = job.spec
    work = bundle / _WORK_DIR
    with usage() as used:
        if job.chunks:
            files, chunk_files = [], []
            for chunk, cspec, (inputs, _) in zip(job.chunks, job.chunk_specs, job.chunk_io):
                args = tuple(torch.from_numpy(v) for v in inputs.values())
                written = export_stage(target, chunk, cspec, args, bundle, work_dir=work, progress=False)
                files += written
                chunk_files.append(written)
        else:
            args = tuple(torch.from_numpy(v) for v in job.feeds.values())
            files = export_stage(target, job.module, spec, args, bundle, work_dir=work, progress=False)
        converted = time.perf_counter()
        chunks = _check_chunks(job, target, chunk_files) if job.chunks else None
        out = _run_exported(job, target, files, chunk_files if job.chunks else None)
        guided = cfg.batch_size if spec.name == "unet" else None
        figures = parity_lib.measure(out, job.reference, guided_batch_size=guided)
    used.parity_seconds = time.perf_counter() - converted
    rel = [f.relative_to(bundle).as_posix() for f in files]
    if chunks:
        for record, written in zip(chunks, chunk_files):
            record["file"] = written[0].relative_to(bundle).as_posix()
            record["extra_files"] = [f.relative_to(bundle).as_posix() for f in written[1:]]
    return TargetRecord(rel, figures, used, chunks)


def _check_chunks(job: _StageJob, target: str, chunk_files: list[list[Path]]) -> list[dict]:
    """Each exported chunk on its reference inputs vs the PyTorch chunk's outputs (the worst output)."""
    records = []
    for chunk, cspec, written, (inputs, ref) in zip(job.chunks, job.chunk_specs, chunk_files, job.chunk_io):
        outs = RUNNERS[target](written[0], inputs, cspec.output_names)
        worst = min((parity_lib.measure(outs[n], ref[n]) for n in cspec.output_names), key=lambda p: p.psnr_db)
        parity_lib.check(worst, stage=cspec.name, target=target)
        records.append(
            {"name": cspec.name, "units": [u.name for u in chunk.units], "io": cspec.to_dict(), "parity": worst.to_dict()}
        )
    return records


def _run_exported(job: _StageJob, target: str, files: list[Path], chunk_files: list[list[Path]] | None) -> np.ndarray:
    """The exported stage on the parity inputs; a chunked stage runs its chunks in order, as a runtime does."""
    name = job.spec.output_names[0]
    if chunk_files is None:
        return RUNNERS[target](files[0], job.feeds, job.spec.output_names)[name]
    env = dict(job.feeds)
    for cspec, written in zip(job.chunk_specs, chunk_files):
        env.update(RUNNERS[target](written[0], {n: env[n] for n in cspec.input_names}, cspec.output_names))
    return env[name]


def _export_stages(jobs: dict[str, _StageJob], plan: ExportPlan, bundle: Path, options: ExportOptions) -> dict[str, StageRecord]:
    records = {name: StageRecord(job.spec) for name, job in jobs.items()}
    total, done = len(jobs) * len(plan.targets), 0
    chunk_mb = options.attention_chunk_mb
    with matmul_attention() if options.matmul_attention else nullcontext(), \
            chunked_attention(chunk_mb) if chunk_mb else nullcontext(), \
            repeat_interleave_as_concat() if options.npu else nullcontext():
        for name, job in jobs.items():
            for target in plan.targets:
                check_interrupted()
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
                release_memory()
    return records


def export_bundle(options: ExportOptions) -> dict:
    """Export, verify and write the bundle at `options.out`; return its manifest.

    Raises `parity.ParityError` (nothing written) if a stage fails the gate.
    """
    plan = plan_export(options)
    cfg = plan.cfg

    logger.info("building %s components (%s)", cfg.name, _weights_record(options, cfg)["source"])
    components = _load_components(cfg, options.checkpoints, options.random_weights)
    release_memory()  # building full-size weights leaves gigabytes of freed heap behind
    jobs = _prepare_jobs(stage_modules(components), plan, options.npu)
    release_memory()
    _apply_graph_options(jobs, options)
    with atomic_output_dir(options.out, overwrite=options.overwrite, kind=BUNDLE_OUTPUT) as bundle:
        records = _export_stages(jobs, plan, bundle, options)
        shutil.rmtree(bundle / _WORK_DIR, ignore_errors=True)
        components.tokenizer.save_pretrained_files(bundle / TOKENIZER_DIR)
        graph = {
            "attention": cfg.attention.value,
            "decompose_groupnorm": options.groupnorm_decomposed,
            "matmul_attention": options.matmul_attention,
            "attention_chunk_mb": options.attention_chunk_mb,
            "npu": options.npu,
            "unet_chunks": plan.unet_chunks if "unet" in plan.stages else None,
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
