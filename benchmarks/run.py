"""`python -m benchmarks.run`: latency, size and memory per stage x backend x precision, side by side.

    python -m benchmarks.run --out results/tiny                         # tiny, every stage, 3 backends
    python -m benchmarks.run --preset mobile --allow-large --backends torch,onnx --out results/mobile

For each stage x backend x precision: a child process loads the model, warms up, then takes timed
calls in turn with the other rows of its group (median, p10, p90), and reports its peak RSS. Rows:
PyTorch eager, onnxruntime CPU, LiteRT CPU (XNNPACK), on the same shapes and thread count. The
adapter's cost: the base T2V UNet vs the adapted UNet with naive and fused first-frame attention.
Then per denoising step and per video, the issue's targets, a phone estimate, and the outputs:
`results.json`, `report.md`, `plots/*.png`; models go to `work/` inside the output folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from benchmarks import derive
from benchmarks.bundles import ModelSet, export_fp32, export_variants, quantize_all
from benchmarks.estimate import anchor_macs, count_stages, estimate_preset, video_calls
from benchmarks.jobs import ADAPTED, BACKENDS, UNET_VARIANTS, Job, measure_group
from benchmarks.options import LARGE_PRESETS, PRECISIONS, BenchmarkOptions, BenchmarkPlan, plan_benchmark
from benchmarks.report import write_outputs
from benchmarks.results import REPORT_NAME, RESULTS_NAME, RESULTS_OUTPUT, SCHEMA, machine_info, now_utc, versions
from i2v_core import cli
from i2v_core.media import atomic_output_dir
from i2v_core.stages import stage_specs

# A fixed name: under `python -m benchmarks.run` this module is `__main__`.
logger = logging.getLogger("benchmarks.run")
WORK_DIR = "work"


class _Progress:
    """Numbered progress lines through the module logger (quiet with `--quiet`)."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        logger.info("[%6.1f s] %s", time.perf_counter() - self.start, message)


def _job(plan: BenchmarkPlan, models: ModelSet, stage: str, backend: str, precision: str, variant: str = ADAPTED) -> Job:
    bundle = record = files = None
    if backend != "torch":
        source = models.variants[variant] if variant != ADAPTED else models.bundle_for(precision, backend)
        bundle, record, files = str(source.directory), source.stage_record(stage), source.manifest.get("files", {})
    return Job(stage=stage, backend=backend, precision=precision, preset=plan.cfg.name,
               spec=stage_specs(plan.cfg)[stage].to_dict(), warmup=plan.warmup, repeats=plan.repeats,
               threads=plan.threads, variant=variant, bundle=bundle, record=record, files=files, spin=plan.options.spin,
               first_call=plan.cfg.name not in LARGE_PRESETS)


def _unavailable_row(stage: str, backend: str, precision: str, reason: str, variant: str = ADAPTED) -> dict:
    return {"stage": stage, "backend": backend, "precision": precision, "variant": variant, "status": "skipped", "reason": reason}


def _stage_groups(plan: BenchmarkPlan, models: ModelSet) -> tuple[list[list[Job]], list[dict]]:
    """Per stage, the jobs measured side by side; and rows for what cannot be measured, with why."""
    groups, skipped = [], []
    for stage in plan.stages:
        jobs = []
        for precision in plan.precisions:
            for backend in plan.backends:
                if backend == "torch":
                    reason = None if precision == "fp32" else "not measured: PyTorch eager runs fp32 only here"
                else:
                    reason = models.reason(precision, backend, stage)
                if reason is None:
                    jobs.append(_job(plan, models, stage, backend, precision))
                else:
                    skipped.append(_unavailable_row(stage, backend, precision, reason))
        groups.append(jobs)
    return groups, skipped


def _variant_groups(plan: BenchmarkPlan, models: ModelSet) -> tuple[list[list[Job]], list[dict]]:
    """Per backend, the base / naive / fused UNets side by side (fp32); rows for backends without them."""
    if not plan.options.adapter_cost or "unet" not in plan.stages:
        return [], []
    groups, skipped = [], []
    # Full size: the adapted UNet row (fused attention, the preset's own) stands for `fused`, which
    # saves one multi-minute step; `_fused_from_adapted` copies it.
    variants = ("base", "naive") if plan.cfg.name in LARGE_PRESETS else UNET_VARIANTS
    for backend in plan.backends:
        if backend == "torch" or all(v in models.variants for v in UNET_VARIANTS):
            groups.append([_job(plan, models, "unet", backend, "fp32", v) for v in variants])
        else:
            reason = models.variant_reason.get(backend, f"not available: no {backend} model of the UNet")
            skipped += [_unavailable_row("unet", backend, "fp32", reason, v) for v in UNET_VARIANTS]
    return groups, skipped


def _measure(groups: list[list[Job]], plan: BenchmarkPlan, progress) -> list[dict]:
    """Every group side by side; on a large preset one job at a time (the machine holds one model)."""
    large = plan.cfg.name in LARGE_PRESETS
    if large:
        groups = [[job] for group in groups for job in group]
    rows = []
    for i, group in enumerate(groups, 1):
        if not group:
            continue
        progress(f"group {i}/{len(groups)}: {', '.join(j.label() for j in group)}")
        for row in measure_group(group, plan.warmup, plan.repeats, progress):
            if row.get("status") == "ok":
                line = f"median {row['latency_ms']['median_ms']:.2f} ms, peak RSS {row['peak_rss_mb']} MB"
            else:
                line = f"failed: {row['reason']}"
            label = row['stage'] if row['variant'] == ADAPTED else f"{row['stage']} [{row['variant']}]"
            progress(f"  {label} / {row['backend']} / {row['precision']}: {line}")
            rows.append(row)
    return rows


def _fused_from_adapted(rows: list[dict], plan: BenchmarkPlan) -> list[dict]:
    """On full-size presets: each backend's adapted UNet row (fused attention) as its `fused` row."""
    if plan.cfg.name not in LARGE_PRESETS or plan.cfg.attention.value != "fused":
        return rows
    have = {(r["backend"], r["variant"]) for r in rows if r["stage"] == "unet"}
    copies = [{**r, "variant": "fused", "same_as": ADAPTED} for r in rows
              if r["stage"] == "unet" and r["variant"] == ADAPTED and r["precision"] == "fp32"
              and (r["backend"], "base") in have and (r["backend"], "fused") not in have]
    return rows + copies


def _attach_sizes(rows: list[dict], models: ModelSet) -> None:
    for row in rows:
        if row["backend"] == "torch":
            row["size_bytes"] = row.pop("module_bytes", None)
            continue
        row.pop("module_bytes", None)
        source = models.variants.get(row["variant"]) if row["variant"] != ADAPTED else models.bundle_for(row["precision"], row["backend"])
        if source is not None and source.has(row["stage"], row["backend"]):
            row["size_bytes"] = source.size_bytes(row["stage"], row["backend"])
            row["psnr_db"] = source.psnr_db(row["stage"], row["backend"])


def _estimate(plan: BenchmarkPlan, models: ModelSet, progress) -> dict | None:
    """Phone estimate from the fp32 ONNX models when exported, else from the meta-device count."""
    progress("phone estimate: counting MACs")
    fp32 = models.bundles.get("fp32")
    use_onnx = fp32 is not None and all(fp32.has(s, "onnx") for s in plan.stages)
    counts = count_stages(plan.cfg.name, fp32.directory if use_onnx else None, list(plan.stages))
    return estimate_preset(counts, "w8a16", anchor_macs(), video_calls(plan.cfg.name, plan.steps))


def _where(directory: Path, out: Path) -> str:
    """A bundle's path as the finished output folder will have it (`work/...`), or as given."""
    try:
        return Path(directory).relative_to(out).as_posix()
    except ValueError:
        return str(directory)


def _results(plan: BenchmarkPlan, rows: list[dict], models: ModelSet, estimate: dict | None, started: dict, out: Path) -> dict:
    cfg = plan.cfg
    measured = [r for r in rows if r.get("status") == "ok"]
    cost = derive.adapter_cost(measured)
    notes = sorted({f"{r['stage']} / {r['backend']} / {r['precision']}: {r['reason']}" for r in rows if r.get("status") != "ok"})
    return {
        "schema": SCHEMA,
        "kind": "host",
        "created": started["created"],
        "machine": started["machine"],
        "versions": versions(),
        "settings": {
            "preset": cfg.name, "backends": list(plan.backends), "precisions": list(plan.precisions),
            "stages": list(plan.stages), "threads": plan.threads, "warmup": plan.warmup, "repeats": plan.repeats,
            "steps": plan.steps, "spin": plan.options.spin, "bundle": str(plan.options.bundle) if plan.options.bundle else None,
            "bundle_precision": plan.bundle_precision if plan.options.bundle else None,
            "seconds": round(time.perf_counter() - started["t0"], 1),
        },
        "preset": {"name": cfg.name, "frames": cfg.num_frames, "height": cfg.height, "width": cfg.width,
                   "guided_batch": cfg.guided_batch, "steps": plan.steps},
        "rows": rows,
        "per_step": derive.per_step_and_video(measured, list(stage_specs(cfg)), cfg.num_frames, plan.steps),
        "adapter_cost": cost,
        "backend_ratios": derive.backend_ratios(measured, list(plan.stages)),
        "targets": derive.targets(measured, cost),
        "estimate": estimate,
        "notes": notes,
        "bundles": {**{p: _where(b.directory, out) for p, b in models.bundles.items()},
                    **{f"{p}/{t}": _where(b.directory, out) for (p, t), b in models.by_target.items()}},
    }


def run_benchmark(options: BenchmarkOptions) -> dict:
    """Plan, export, measure, derive, write; return the results dict (also at `out/results.json`)."""
    plan = plan_benchmark(options, os.cpu_count() or 1)
    progress = _Progress()
    started = {"created": now_utc(), "machine": machine_info(), "t0": time.perf_counter()}
    with atomic_output_dir(options.out, overwrite=options.overwrite, kind=RESULTS_OUTPUT) as out:
        work = out / WORK_DIR
        models = ModelSet()
        source = f"bundle {options.bundle}" if options.bundle else "exporting the fp32 bundle"
        progress(f"preset {plan.cfg.name}: {source} ({', '.join(plan.stages)})")
        export_fp32(plan, work, models)
        quantize_all(plan, work, models, progress)
        if options.adapter_cost and "unet" in plan.stages:
            progress("the base / naive / fused UNets" + ("" if plan.cfg.name in LARGE_PRESETS else ": exporting"))
            export_variants(plan, work, models)
        groups, skipped = _stage_groups(plan, models)
        variant_groups, variant_skipped = _variant_groups(plan, models)
        rows = _fused_from_adapted(_measure(groups + variant_groups, plan, progress), plan) + skipped + variant_skipped
        _attach_sizes(rows, models)
        results = _results(plan, rows, models, _estimate(plan, models, progress), started, out)
        write_outputs(results, out)
    progress(f"wrote {options.out}/{RESULTS_NAME}, {REPORT_NAME}, plots/")
    return results


def _csv(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--preset", default="tiny", help="tiny (default), mobile or sd15 (these need --allow-large)")
    p.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, from {', '.join(BACKENDS)} (default: all)")
    p.add_argument("--precisions", help=f"comma-separated, from {', '.join(PRECISIONS)} (default: fp32, or the --bundle's own precision)")
    p.add_argument("--stages", help="comma-separated stages (default: all of tiny; unet for mobile / sd15)")
    p.add_argument("--threads", type=int, help="threads for every backend (default: all cores)")
    p.add_argument("--warmup", type=int, help="untimed calls before timing (default: 2 tiny, 0 large)")
    p.add_argument("--repeats", type=int, help="timed calls per row (default: 10 tiny, 1 large)")
    p.add_argument("--steps", type=int, help="denoising steps of the per-video figure (default: the preset's)")
    p.add_argument("--spin", action="store_true",
                   help="let idle threads busy-wait (OpenMP / onnxruntime defaults); default: passive, for shared machines")
    p.add_argument("--no-adapter-cost", action="store_true", help="skip the base / naive / fused UNet comparison")
    p.add_argument("--bundle", type=Path,
                   help="measure this bundle (verified against its manifest's hashes, reported under its manifest's precision) instead of exporting one")
    p.add_argument("--allow-large", action="store_true", help="allow mobile / sd15 (minutes, 12-20 GB of memory)")
    p.add_argument("--out", type=Path, required=True, help="output folder (results.json, report.md, plots/, work/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def options_from_args(args: argparse.Namespace) -> BenchmarkOptions:
    return BenchmarkOptions(
        out=args.out, preset=args.preset, backends=_csv(args.backends) or (), precisions=_csv(args.precisions),
        stages=_csv(args.stages), threads=args.threads, warmup=args.warmup, repeats=args.repeats, steps=args.steps,
        adapter_cost=not args.no_adapter_cost, bundle=args.bundle, allow_large=args.allow_large, overwrite=args.overwrite, spin=args.spin,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> None:
        results = run_benchmark(options_from_args(args))
        for target in results["targets"]:
            value = "not measured" if target["value"] is None else f"{target['value']:.3f}"
            print(f"{target['name']}: {value} (target <= {target['limit']:.2f})")
        print(f"results: {args.out}")

    return cli.run(command)



if __name__ == "__main__":
    cli.entry(main, loggers=("benchmarks", "export"))
