"""Write a random rank-r LoRA (PEFT layout, safetensors) over every attention projection of a preset's
UNet: a stand-in "style" for trying `export.build --lora` and style switching without a real LoRA.

    .venv/bin/python scripts/make_example_lora.py --out styles/wobble.safetensors [--preset tiny] [--rank 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from i2v_adapter.checkpoints.lora import lora_targets
from i2v_adapter.model.components import build_unet
from i2v_core import cli
from i2v_core.config import PRESETS, get_preset


def example_lora(preset: str, rank: int, seed: int, std: float) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        unet = build_unet(get_preset(preset))
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in lora_targets(unet).items():
        if not isinstance(module, torch.nn.Linear) or not name.endswith(("to_q", "to_k", "to_v")):
            continue
        down = torch.randn(rank, module.in_features, generator=gen) * std
        up = torch.randn(module.out_features, rank, generator=gen) * std
        state[f"unet.{name}.lora_A.weight"], state[f"unet.{name}.lora_B.weight"] = down, up
        state[f"unet.{name}.alpha"] = torch.tensor(float(rank))
    return state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--std", type=float, default=0.2)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        print(f"error: output already exists: {args.out} (pass --overwrite to replace it)", file=sys.stderr)
        return 2
    state = example_lora(args.preset, args.rank, args.seed, args.std)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(args.out)
    print(f"wrote {args.out}: {len(state) // 3} layers, rank {args.rank}")
    return 0


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter", "evaluation"))
