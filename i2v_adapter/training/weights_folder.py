"""`python -m i2v_adapter.training.weights_folder`: the training stages' outputs -> a weights folder
in the layout `i2v_adapter.checkpoints.shipped` loads (float16 files and `preset.json`).

    python -m i2v_adapter.training.weights_folder --train-config configs/tiny_adapter_motion_v.json \
        --vae runs/tiny/vae_decoder/vae.safetensors --unet runs/tiny/t2v_motion_v/unet.safetensors \
        --adapter runs/tiny/adapter_motion_v/adapter_avg.safetensors --out i2v_adapter/weights/tiny --overwrite

(the last step of the chain in MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from i2v_adapter.checkpoints.shipped import PARTS, load_trained, write_weights_folder
from i2v_adapter.model.components import build_components
from i2v_adapter.training.config import TrainConfig
from i2v_core import cli


@dataclass(frozen=True)
class WeightsFolderOptions:
    """The stages' weights files, the training config they share, and the folder to write."""

    train_config: Path  # its preset and architecture overrides build the components
    vae: Path  # stage vae's vae.safetensors
    unet: Path  # stage t2v's unet.safetensors
    adapter: Path  # stage adapter's adapter.safetensors
    out: Path
    text_encoder: Path | None = None  # stage t2v's with model.train_text_encoder (None: the seeded random one)
    overwrite: bool = False


def write_trained_weights_folder(options: WeightsFolderOptions) -> Path:
    """The components of `options.train_config`'s preset with the stages' weights, written to `options.out`."""
    components = build_components(TrainConfig.from_json(options.train_config).preset_config())
    load_trained(components, vae=options.vae, unet=options.unet, adapter=options.adapter,
                 text_encoder=options.text_encoder)
    return write_weights_folder(components, options.out, overwrite=options.overwrite)


def _report(folder: Path) -> None:
    print(f"wrote {', '.join(f'{part}.safetensors' for part in PARTS)} to {folder}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.training.weights_folder", description=__doc__.splitlines()[0])
    p.add_argument("--train-config", type=Path, required=True,
                   help="a training config of the stages (its preset and architecture overrides)")
    p.add_argument("--vae", type=Path, required=True, help="stage vae output (vae.safetensors)")
    p.add_argument("--unet", type=Path, required=True, help="stage t2v output (unet.safetensors)")
    p.add_argument("--adapter", type=Path, required=True, help="stage adapter output (adapter.safetensors)")
    p.add_argument("--text-encoder", type=Path, default=None,
                   help="stage t2v output with train_text_encoder (text_encoder.safetensors; default: the seeded random one)")
    p.add_argument("--out", type=Path, required=True, help="weights folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = WeightsFolderOptions(train_config=args.train_config, vae=args.vae, unet=args.unet, adapter=args.adapter,
                                   out=args.out, text_encoder=args.text_encoder, overwrite=args.overwrite)
    return cli.run(lambda: _report(write_trained_weights_folder(options)))


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
