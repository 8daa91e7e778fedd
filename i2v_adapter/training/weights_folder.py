"""`python -m i2v_adapter.training.weights_folder`: the training stages' outputs -> a weights folder
in the layout `i2v_adapter.checkpoints.shipped` loads (float16 files and `preset.json`).

    python -m i2v_adapter.training.weights_folder --train-config configs/tiny_adapter_motion_v.json \
        --vae runs/tiny/vae_decoder/vae.safetensors --unet runs/tiny/t2v_motion_v/unet.safetensors \
        --adapter runs/tiny/adapter_motion_v/adapter_avg.safetensors --out i2v_adapter/weights/tiny --overwrite

(the last step of the chain in MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from i2v_adapter.checkpoints.shipped import PARTS, load_trained, write_weights_folder
from i2v_adapter.model.components import build_components
from i2v_adapter.training.config import TrainConfig


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
    try:
        components = build_components(TrainConfig.from_json(args.train_config).preset_config())
        load_trained(components, vae=args.vae, unet=args.unet, adapter=args.adapter, text_encoder=args.text_encoder)
        write_weights_folder(components, args.out, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(f'{p}.safetensors' for p in PARTS)} to {args.out}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
