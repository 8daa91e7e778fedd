"""`python -m quantize.sensitivity`: which layer groups a recipe hurts most, one group at a time.

    python -m quantize.sensitivity --bundle bundles/tiny --recipe int8-static --stage unet --out reports/unet

For each target, the stage is quantized with the recipe restricted to one layer group
(`quantize.groups`: e.g. one resnet, transformer or motion module of a UNet block), the rest left
fp32, and measured against the fp32 PyTorch stage on the export's parity inputs. The PSNR drop of a
group is the fp32 file's PSNR minus that figure; groups are reported sorted, most sensitive first.
Static recipes calibrate once per target (ONNX reuses onnxruntime's range cache, TFLite the
calibration result), so the sweep costs one calibration plus one cheap quantization per group.

Writes `sensitivity.json`, `sensitivity.md` (tables) and `sensitivity.png` (bar chart) into the
report folder. `python -m quantize.run --keep-float K --sensitivity REPORT` keeps the K groups with
the largest drop in float.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from i2v_core import cli
from i2v_core.bundle import BundleError
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import OutputKind, check_separate
from quantize import onnx_backend, tflite_backend
from quantize.api import QuantizeSession, resolve_recipe
from quantize.fidelity import ReferenceMismatchError, measure_file
from quantize.groups import GROUP_DEPTH
from quantize.onnx_backend import quantize_onnx
from quantize.recipes import RECIPES, Recipe, UnsupportedRecipeError
from quantize.tflite_backend import build_quantizer, calibrate, quantize_tflite, static_float_scopes

logger = logging.getLogger(__name__)

REPORT_JSON = "sensitivity.json"
REPORT_OUTPUT = OutputKind("sensitivity report folder", REPORT_JSON)  # what --overwrite may replace


@dataclass
class GroupFigure:
    group: str
    psnr_db: float
    max_abs: float
    drop_db: float
    guidance_correlation: float | None = None


def _groups(src: Path, stage: str, target: str, depth: int) -> list[str]:
    backend = onnx_backend if target == "onnx" else tflite_backend
    return list(backend.stage_groups(src, stage, depth))


def _figure(group: str, parity, baseline: float) -> GroupFigure:
    return GroupFigure(group, round(parity.psnr_db, 3), parity.max_abs, round(baseline - parity.psnr_db, 3), parity.guidance_correlation)


def sweep_target(session, recipe: Recipe, stage: str, target: str, *, depth: int = GROUP_DEPTH, progress: bool = True) -> dict:
    """The per-group figures of one stage in one target, sorted by drop (largest first)."""
    ctx = session.context
    src, ref = ctx.stage_file(stage, target), ctx.refs[stage]
    stage_recipe = recipe.for_stage(stage)
    calib = session.calibration.for_stage(stage) if stage_recipe.needs_calibration else None
    baseline = measure_file(target, src, ref, ctx.guided_batch_size)
    figures = []
    with tempfile.TemporaryDirectory(prefix="sensitivity-") as work:
        dst = Path(work) / src.name
        ranges, scopes, cache = None, [], Path(work) / "ranges.json"
        if target == "tflite" and calib:
            scopes = static_float_scopes(src, calib[0])
            ranges = calibrate(build_quantizer(src, stage_recipe, stage=stage, float_scopes=scopes), calib, src)

        def run(only):
            if target == "onnx":
                quantize_onnx(src, dst, stage_recipe, stage=stage, calibration=calib, only_groups=only, cache=cache)
            else:
                quantize_tflite(src, dst, stage_recipe, stage=stage, calibration=calib, only_groups=only, ranges=ranges, float_scopes=scopes)
            return measure_file(target, dst, ref, ctx.guided_batch_size)

        whole = run(None)
        groups = _groups(src, stage, target, depth)
        for group in tqdm(groups, desc=f"{stage} {target} groups", disable=not progress, leave=False):
            figures.append(_figure(group, run([group]), baseline.psnr_db))
    figures.sort(key=lambda f: f.drop_db, reverse=True)
    return {
        "fp32_psnr_db": round(baseline.psnr_db, 3),
        "whole_stage": asdict(_figure("(all groups)", whole, baseline.psnr_db)),
        "groups": [asdict(f) for f in figures],
    }


def run_sensitivity(
    session, recipe: Recipe, stage: str = "unet", targets=None, *, depth: int = GROUP_DEPTH, progress: bool = True
) -> dict:
    """The sensitivity report (a dict, as `sensitivity.json` holds it)."""
    ctx = session.context
    if stage not in ctx.specs:
        raise ValueError(f"unknown stage {stage!r}: the bundle has {list(ctx.specs)}")
    chosen = tuple(targets or ctx.targets)
    absent = [t for t in chosen if t not in ctx.targets]
    if absent:
        raise ValueError(f"expected targets from the bundle's {list(ctx.targets)}, got {list(chosen)}")
    if recipe.for_stage(stage).is_float:
        raise ValueError(f"recipe {recipe.name!r} leaves {stage} fp32: nothing to measure")
    for target in chosen:
        recipe.check_target(target, [stage])
    return {
        "stage": stage,
        "recipe": recipe.to_dict(),
        "bundle": str(ctx.bundle),
        "definition": "PSNR vs the fp32 PyTorch stage on StageSpec.sample_inputs(parity seed), one group quantized",
        "group_depth": depth,
        "targets": {t: sweep_target(session, recipe, stage, t, depth=depth, progress=progress) for t in chosen},
    }


def markdown(report: dict) -> str:
    """Tables of the report: one per target, groups sorted by PSNR drop."""
    lines = [
        f"# Sensitivity: {report['stage']} with {report['recipe']['name']}",
        "",
        f"Bundle `{report['bundle']}`. PSNR vs the fp32 PyTorch stage on the export's parity inputs, "
        "with only the named group quantized; drop = fp32 file's PSNR minus that.",
    ]
    for target, data in report["targets"].items():
        whole = data["whole_stage"]
        lines += [
            "",
            f"## {target}: fp32 {data['fp32_psnr_db']:.1f} dB, whole stage quantized {whole['psnr_db']:.1f} dB",
            "",
            "| rank | group | PSNR dB | drop dB | max-abs | cfg corr |",
            "|---|---|---|---|---|---|",
        ]
        for rank, g in enumerate(data["groups"], 1):
            corr = "-" if g["guidance_correlation"] is None else f"{g['guidance_correlation']:.4f}"
            lines.append(f"| {rank} | `{g['group']}` | {g['psnr_db']:.1f} | {g['drop_db']:.1f} | {g['max_abs']:.3g} | {corr} |")
    return "\n".join(lines) + "\n"


def bar_chart(report: dict, path: Path) -> None:
    """PNG: one horizontal bar chart per target, PSNR drop per group (most sensitive on top)."""
    import matplotlib  # deferred: plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: plots only

    targets = list(report["targets"].items())
    rows = max(len(d["groups"]) for _, d in targets)
    fig, axes = plt.subplots(1, len(targets), figsize=(7 * len(targets), 0.3 * rows + 1.5), squeeze=False)
    for ax, (target, data) in zip(axes[0], targets):
        groups = data["groups"][::-1]
        ax.barh([g["group"] for g in groups], [g["drop_db"] for g in groups], color="tab:red")
        ax.set_title(f"{report['stage']} {target}: {report['recipe']['name']}")
        ax.set_xlabel("PSNR drop vs fp32 (dB), one group quantized")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict, out_dir, *, overwrite: bool = False) -> Path:
    with atomic_output_dir(out_dir, overwrite=overwrite, kind=REPORT_OUTPUT) as tmp:
        (tmp / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (tmp / "sensitivity.md").write_text(markdown(report), encoding="utf-8")
        bar_chart(report, tmp / "sensitivity.png")
    return Path(out_dir)


def read_report(path) -> dict:
    """A report folder or its `sensitivity.json`."""
    path = Path(path)
    file = path / REPORT_JSON if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"expected a sensitivity report at {file} (from python -m quantize.sensitivity)")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"could not read sensitivity report {file}: {err}") from err


def keep_float_from_report(recipe: Recipe, report_path, k: int, *, name: str | None = None) -> Recipe:
    """`recipe` with the `k` groups of largest drop (per target in the report) kept float."""
    if k < 1:
        raise ValueError(f"expected --keep-float K >= 1, got {k}")
    report = read_report(report_path)
    stage = report["stage"]
    entries = []
    for target, data in report["targets"].items():
        entries += [f"{target}:{g['group']}" for g in data["groups"][:k]]
    return recipe.with_keep_float({stage: tuple(entries)}, name=name or f"{recipe.name}+keep-float-{k}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantize.sensitivity", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True, help="fp32 bundle from python -m export.build")
    p.add_argument("--recipe", required=True, help=f"{', '.join(RECIPES)} or a recipe .json file")
    p.add_argument("--stage", default="unet", help="stage to sweep (default: unet)")
    p.add_argument("--targets", help="comma-separated subset of the bundle's targets")
    p.add_argument("--depth", type=int, default=GROUP_DEPTH,
                   help=f"module-path components per group (default {GROUP_DEPTH}: one resnet / transformer / motion module)")
    p.add_argument("--calibration", type=Path, help="reuse recorded calibration data from this bundle or calibration/ folder")
    p.add_argument("--out", type=Path, required=True, help="report folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> None:
        check_separate(args.out, {"--bundle": args.bundle, "--calibration": args.calibration})
        check_output_dir(args.out, overwrite=args.overwrite, kind=REPORT_OUTPUT)
        recipe = resolve_recipe(args.recipe)
        targets = None if args.targets is None else tuple(t.strip() for t in args.targets.split(",") if t.strip())
        session = QuantizeSession(args.bundle, calibration=args.calibration, progress=not args.quiet)
        report = run_sensitivity(session, recipe, args.stage, targets, depth=args.depth, progress=not args.quiet)
        write_report(report, args.out, overwrite=args.overwrite)
        print(markdown(report))
        print(f"report: {args.out}")

    return cli.run(command, user_errors=(BundleError, UnsupportedRecipeError), failures=(ReferenceMismatchError,))


if __name__ == "__main__":
    cli.entry(main, loggers=("quantize",))
