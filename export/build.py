"""`python -m export.build`: export the I2V-Adapter stages to ONNX and / or TFLite, as a bundle.

    python -m export.build --target all --out bundles/tiny            # the embedded tiny default
    python -m export.build --target tflite --preset mobile --random-weights --stages unet --out b/m

Every stage is run in its runtime (onnxruntime, LiteRT interpreter) and compared with PyTorch; a
stage below 60 dB PSNR (or a UNet whose cond - uncond delta correlates below 0.99) fails the build
and nothing is written. See `export.exporter` for the library API.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path

from export.exporter import TARGETS, Checkpoints, ExportDependencyError, ExportOptions, export_bundle, plan_export
from i2v_core import cli
from i2v_core.cli import parse_lora
from i2v_core.config import PRESETS, AttentionVariant
from i2v_core.manifest import format_summary
from i2v_core.parity import ParityError
from i2v_core.stages import NPU_PROFILES
from quantize.api import QuantizationParityError, quantize_bundle, resolve_recipe
from quantize.fidelity import ReferenceMismatchError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.build", description=__doc__.splitlines()[0])
    p.add_argument("--target", choices=[*TARGETS, "all"], default="all", help="runtime format(s) (default: all)")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model size (default: tiny)")
    p.add_argument("--stages", help="comma-separated stages (default: all of the preset), e.g. unet,vae_decoder")
    p.add_argument("--frames", type=int, help="frames per video (preset default)")
    p.add_argument("--height", type=int, help="pixel height (preset default)")
    p.add_argument("--width", type=int, help="pixel width (preset default)")
    p.add_argument("--attention", choices=[v.value for v in AttentionVariant], default="fused",
                   help="first-frame attention variant (default: fused)")
    p.add_argument("--decompose-groupnorm", action="store_true",
                   help="GroupNorm as plain mean/variance reductions (for delegates without GroupNorm)")
    p.add_argument("--matmul-attention", action="store_true",
                   help="attention as explicit batched matmul + softmax instead of scaled_dot_product_attention")
    p.add_argument("--attention-chunk-mb", type=float, metavar="MB",
                   help="compute an attention whose score matrix exceeds MB megabytes over query chunks "
                   "(the exported graph never holds more than MB of scores at once; e.g. 1024 for sd15)")
    p.add_argument("--unet-chunks", type=int, metavar="N",
                   help="export the UNet as N chunks run in sequence (default: as few as keep each under 1.8 GB "
                   "of weights: 1 for tiny, more for full size, where one flatbuffer cannot hold it)")
    p.add_argument("--npu", choices=NPU_PROFILES,
                   help="NPU graph profile: keep ops the vendor's NPU compiler lacks out of the graphs (mediatek: the "
                   "UNet takes the timestep embedding, computed by the runtime, instead of the timestep; one-hot token "
                   "lookup and a constant causal mask in the text encoder; repeats as concatenations; implies "
                   "--decompose-groupnorm); check the result with python -m export.npu_report")
    p.add_argument("--random-weights", action="store_true",
                   help="seeded random weights: instead of checkpoints (full-size presets) or the shipped trained weights (tiny)")
    p.add_argument("--sd15", type=Path, help="SD1.5 folder in diffusers layout (unet/, vae/, text_encoder/)")
    p.add_argument("--motion-module", type=Path, help="AnimateDiff motion module: MotionAdapter folder or .safetensors")
    p.add_argument("--adapter", type=Path, help="I2V-Adapter weights (.safetensors)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH[:SCALE]", help="LoRA to fuse; repeatable")
    p.add_argument("--content-adapter", action="store_true",
                   help="add the IP-Adapter-Plus content adapter: an image_encoder stage, and image_embeds into the UNet")
    p.add_argument("--ip-adapter", type=Path, help="IP-Adapter-Plus SD1.5 weights (.safetensors; with --content-adapter)")
    p.add_argument("--image-encoder", type=Path, help="CLIP vision encoder folder (with --content-adapter)")
    p.add_argument("--ip-projections", type=Path,
                   help="IP-Adapter to_k_ip / to_v_ip split out of an official I2V-Adapter file by "
                   "`python -m i2v_adapter.checkpoints.convert` (.ip-adapter-projections.safetensors; with --content-adapter)")
    p.add_argument("--precision", default="fp32",
                   help="fp32 (default) or a quantize recipe (fp16, int8-weight-only, int8-dynamic, w8a16, int8-static, "
                   "or a recipe .json): export fp32, then `quantize.run` it into --out (see quantize/)")
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle directory")
    p.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.add_argument("--json", action="store_true", help="print the manifest instead of the summary table")
    return p


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    stages = None
    if args.stages is not None:
        stages = tuple(dict.fromkeys(s.strip() for s in args.stages.split(",") if s.strip()))
    return ExportOptions(
        out=args.out,
        preset=args.preset,
        targets=TARGETS if args.target == "all" else (args.target,),
        stages=stages,
        frames=args.frames,
        height=args.height,
        width=args.width,
        attention=AttentionVariant(args.attention),
        random_weights=args.random_weights,
        checkpoints=Checkpoints(
            sd15=args.sd15,
            motion_module=args.motion_module,
            adapter=args.adapter,
            loras=tuple(parse_lora(s) for s in args.lora),
            ip_adapter=args.ip_adapter,
            image_encoder=args.image_encoder,
            ip_projections=args.ip_projections,
        ),
        content_adapter=args.content_adapter,
        decompose_groupnorm=args.decompose_groupnorm,
        matmul_attention=args.matmul_attention,
        attention_chunk_mb=args.attention_chunk_mb,
        unet_chunks=args.unet_chunks,
        npu=args.npu,
        overwrite=args.overwrite,
    )


def export_with_precision(options: ExportOptions, precision: str = "fp32", *, progress: bool = True) -> dict:
    """`export_bundle`, then for any precision but fp32 `quantize.api.quantize_bundle` of the fp32
    bundle (written to a temporary folder beside `options.out`, removed afterwards) into `options.out`."""
    if precision == "fp32":
        return export_bundle(options)

    recipe = resolve_recipe(precision)  # ValueError for an unknown recipe, before any work
    plan = plan_export(options)
    if plan.unet_chunks > 1:
        raise ValueError(
            f"--precision {precision} with a UNet in {plan.unet_chunks} chunks is not supported yet: quantize/ "
            "reads one model file per stage; export fp32 (--precision fp32) or a preset whose UNet fits one file"
        )
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.fp32-", dir=out.parent))
    try:
        fp32 = work / "bundle"
        export_bundle(dataclasses.replace(options, out=fp32, overwrite=False))
        logger.info("quantizing with %s", recipe.name)
        return quantize_bundle(fp32, recipe, out, overwrite=options.overwrite, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def build() -> None:
        manifest = export_with_precision(options_from_args(args), args.precision, progress=not args.quiet)
        print(json.dumps(manifest, indent=2) if args.json else format_summary(manifest))
        print(f"bundle: {args.out}")

    return cli.run(build, user_errors=(ExportDependencyError,),
                   failures=(ParityError, QuantizationParityError, ReferenceMismatchError))


if __name__ == "__main__":
    cli.entry(main, loggers=("export", "i2v_adapter", "quantize"))
