"""`python -m quantize.run`: quantize an fp32 export bundle with a recipe, into a new bundle.

    python -m quantize.run --bundle bundles/tiny --recipe w8a16 --out bundles/tiny-w8a16
    python -m quantize.run --bundle b/tiny --recipe int8-static --stage-recipe vae_decoder=fp16 --out b/mixed
    python -m quantize.run --bundle b/tiny --recipe int8-static --keep-float 3 --sensitivity reports/unet --out b/k3

Recipes: fp16, int8-weight-only, int8-dynamic, w8a16, int8-static, or a recipe .json file
(`quantize.recipes.Recipe.to_dict` layout). Each stage is measured against the fp32 PyTorch stage;
a stage below the recipe's floor fails the run and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from i2v_core import cli
from i2v_core.bundle import BundleError
from quantize.api import QuantizationParityError, quantize_bundle, resolve_recipe
from quantize.calibration import CalibrationConfig
from quantize.fidelity import ReferenceMismatchError
from quantize.recipes import RECIPES, TARGETS, Recipe, UnsupportedRecipeError, parse_stage_override
from quantize.report import format_quantized_summary
from quantize.sensitivity import keep_float_from_report

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantize.run", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True, help="fp32 bundle from python -m export.build")
    p.add_argument("--recipe", required=True, help=f"{', '.join(RECIPES)} or a recipe .json file")
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--targets", help=f"comma-separated subset of the bundle's targets ({', '.join(TARGETS)})")
    p.add_argument("--stage-recipe", action="append", default=[], metavar="STAGE=RECIPE",
                   help="per-stage override, e.g. vae_decoder=fp16 or text_encoder=fp32; repeatable")
    p.add_argument("--keep-float", type=int, default=0, metavar="K",
                   help="keep the K most sensitive layer groups float (needs --sensitivity)")
    p.add_argument("--sensitivity", type=Path, help="report folder (or sensitivity.json) of python -m quantize.sensitivity")
    p.add_argument("--calibration", type=Path, help="reuse recorded calibration data from this bundle or calibration/ folder")
    p.add_argument("--calibration-images", type=int, default=CalibrationConfig.images, help="videos to record for calibration")
    p.add_argument("--calibration-samples", type=int, default=CalibrationConfig.max_per_stage,
                   help="calls kept per stage (evenly spread over the recording)")
    p.add_argument("--no-video", action="store_true", help="skip the end-to-end video comparison")
    p.add_argument("--no-gate", action="store_true", help="report fidelity below the recipe's floors instead of failing")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.add_argument("--json", action="store_true", help="print the manifest instead of the summary table")
    return p


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    recipe = resolve_recipe(args.recipe)
    if args.stage_recipe:
        recipe = recipe.with_overrides(**dict(parse_stage_override(s) for s in args.stage_recipe))
    if args.keep_float:
        if args.sensitivity is None:
            raise ValueError("--keep-float K needs --sensitivity REPORT (from python -m quantize.sensitivity)")
        recipe = keep_float_from_report(recipe, args.sensitivity, args.keep_float)
    elif args.sensitivity is not None:
        raise ValueError("--sensitivity is read only with --keep-float K (K >= 1)")
    return recipe


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def quantize() -> None:
        recipe = recipe_from_args(args)
        targets = None if args.targets is None else tuple(t.strip() for t in args.targets.split(",") if t.strip())
        manifest = quantize_bundle(
            args.bundle, recipe, args.out, overwrite=args.overwrite, progress=not args.quiet, targets=targets,
            calibration=args.calibration,
            calibration_config=CalibrationConfig(images=args.calibration_images, max_per_stage=args.calibration_samples),
            evaluate_video=not args.no_video, gate=not args.no_gate,
        )
        print(json.dumps(manifest, indent=2) if args.json else format_quantized_summary(manifest))
        print(f"bundle: {args.out}")

    return cli.run(quantize, user_errors=(BundleError, UnsupportedRecipeError),
                   failures=(QuantizationParityError, ReferenceMismatchError))


if __name__ == "__main__":
    cli.entry(main, loggers=("quantize",))
