"""What `python -m benchmarks.run` measures: a frozen options dataclass and its checks (torch-free).

Every bad input is refused before any model is built, with what was expected and what was found. A
given `--bundle` is trusted only once verified (`i2v_core.bundle.verify_bundle`: every file against
the manifest's sha256), and its rows carry the manifest's own `precision`, never an assumed fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.jobs import BACKENDS
from benchmarks.results import RESULTS_OUTPUT
from i2v_core.bundle import verify_bundle
from i2v_core.config import PRESETS, PresetConfig, get_preset
from i2v_core.media import check_output_dir
from i2v_core.outputs import check_separate
from i2v_core.stages import stage_specs

# The precisions a benchmark can name: fp32 is the export bundle, the others are quantize/ recipes.
PRECISIONS = ("fp32", "fp16", "int8-weight-only", "int8-dynamic", "w8a16", "int8-static")
LARGE_PRESETS = ("mobile", "sd15")
# Warm-up and timed calls when not given: a tiny stage takes milliseconds, a full-size UNet step
# takes minutes on 2 cores (one timed call, no warm-up).
DEFAULT_CALLS = {"tiny": (2, 10), "large": (0, 1)}


@dataclass(frozen=True)
class BenchmarkOptions:
    out: Path
    preset: str = "tiny"
    backends: tuple[str, ...] = BACKENDS
    precisions: tuple[str, ...] | None = None  # None: fp32, or the --bundle's own precision
    stages: tuple[str, ...] | None = None  # None: every stage of the preset
    threads: int | None = None  # None: os.cpu_count() for every backend
    warmup: int | None = None
    repeats: int | None = None
    steps: int | None = None  # denoising steps of the per-video figure; None: the preset's default
    adapter_cost: bool = True
    bundle: Path | None = None
    allow_large: bool = False
    overwrite: bool = False
    spin: bool = False  # idle threads busy-wait (see benchmarks.jobs)


@dataclass(frozen=True)
class BenchmarkPlan:
    """`BenchmarkOptions` checked and resolved: no field is None any more (except the bundle's, when
    no `--bundle` is given: then `bundle_manifest` is None and `bundle_precision` fp32)."""

    options: BenchmarkOptions
    cfg: PresetConfig
    stages: tuple[str, ...]
    backends: tuple[str, ...]
    precisions: tuple[str, ...]
    threads: int
    warmup: int
    repeats: int
    steps: int
    bundle_manifest: dict | None = None  # the verified manifest of --bundle
    bundle_precision: str = "fp32"  # the precision --bundle's rows are reported under (its manifest's)


def _subset(what: str, given: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    if not given:
        raise ValueError(f"expected at least one {what} from {', '.join(allowed)}, got none")
    unknown = [g for g in given if g not in allowed]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}: expected some of {', '.join(allowed)}")
    return tuple(a for a in allowed if a in given)  # canonical order


def _positive(name: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {value}")


def plan_benchmark(options: BenchmarkOptions, cpu_count: int) -> BenchmarkPlan:
    """Check `options` and fill the defaults; raises `ValueError` / `FileExistsError`."""
    if options.preset not in PRESETS:
        raise ValueError(f"unknown preset {options.preset!r}: expected one of {', '.join(PRESETS)}")
    large = options.preset in LARGE_PRESETS
    if large and not options.allow_large:
        raise ValueError(
            f"preset {options.preset!r} is the full SD1.5 architecture with random weights: minutes per UNet "
            "step and 12-20 GB of memory on a CPU; pass --allow-large to run it (or use --preset tiny)"
        )
    cfg = get_preset(options.preset)
    available = tuple(stage_specs(cfg))
    default_stages = ("unet",) if large else available
    stages = _subset("stage", options.stages if options.stages is not None else default_stages, available)
    backends = _subset("backend", options.backends, BACKENDS)
    for name, value, minimum in (("threads", options.threads, 1), ("warmup", options.warmup, 0),
                                 ("repeats", options.repeats, 1), ("steps", options.steps, 1)):
        _positive(name, value, minimum)
    check_separate(options.out, {"--bundle": options.bundle})
    check_output_dir(options.out, overwrite=options.overwrite, kind=RESULTS_OUTPUT)
    manifest, precision = None, "fp32"
    if options.bundle is not None:
        manifest, precision = _given_bundle(Path(options.bundle))
    precisions = _precisions(options, precision)
    warmup, repeats = DEFAULT_CALLS["large" if large else "tiny"]
    return BenchmarkPlan(
        options=options,
        cfg=cfg,
        stages=stages,
        backends=backends,
        precisions=precisions,
        threads=options.threads or cpu_count,
        warmup=warmup if options.warmup is None else options.warmup,
        repeats=repeats if options.repeats is None else options.repeats,
        steps=options.steps or cfg.sampling.num_inference_steps,
        bundle_manifest=manifest,
        bundle_precision=precision,
    )


def _given_bundle(bundle: Path) -> tuple[dict, str]:
    """`--bundle` verified (`BundleError` naming the file that does not match), and its precision."""
    if not bundle.is_dir():
        raise FileNotFoundError(f"expected a bundle directory at {bundle}, found {'a file' if bundle.exists() else 'nothing'}")
    manifest = verify_bundle(bundle)
    precision = manifest.get("precision", "fp32")  # manifests before `precision` was recorded are fp32 exports
    if not isinstance(precision, str) or not precision:
        raise ValueError(f"--bundle {bundle}: expected the manifest's precision to be a recipe name, found {precision!r}")
    return manifest, precision


def _precisions(options: BenchmarkOptions, bundle_precision: str) -> tuple[str, ...]:
    """The precisions to measure: as asked (default: fp32, or the bundle's own). A quantized bundle
    is measured as what it is; the other precisions are quantized from an fp32 bundle only."""
    given = options.precisions
    if given is None:
        return (bundle_precision,)
    allowed = PRECISIONS if bundle_precision in PRECISIONS else (*PRECISIONS, bundle_precision)
    precisions = _subset("precision", given, allowed)
    others = [p for p in precisions if p != bundle_precision]
    if bundle_precision != "fp32" and others:
        raise ValueError(
            f"--bundle {options.bundle} has precision {bundle_precision} (its manifest's), so it is measured as "
            f"{bundle_precision} only; --precisions asks for {others} too: pass --precisions {bundle_precision}, "
            "or an fp32 bundle to quantize the others from"
        )
    return precisions
