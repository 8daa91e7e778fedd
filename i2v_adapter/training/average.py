"""`python -m i2v_adapter.training.average`: the mean of a training run's last checkpoints, one weights file.

    python -m i2v_adapter.training.average --run runs/tiny/t2v --last 6 --out runs/tiny/t2v/unet_avg.safetensors

Training here uses a fixed learning rate with no EMA of the weights (the paper's recipe), so the
weights of one step are noisy: on the tiny T2V model the epsilon error of single checkpoints 250
steps apart varies by tens of percent. The uniform mean of the latest checkpoints (latest weight
averaging, a cheap stand-in for an EMA) removes most of that noise. `--run DIR --last K` averages
the weights file (`unet.safetensors`, `adapter.safetensors` or `vae.safetensors`, whichever the
run's stage writes) of the K highest-step `checkpoint-<step>/` folders; explicit files can be given
instead. Every input must hold the same tensor names, shapes and dtypes; the sum is taken in
float64 in ascending step order, the result written in the inputs' dtype, atomically, with the
averaged sources recorded in the file's metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from i2v_adapter.checkpoints.io import load_safetensors, save_safetensors
from i2v_adapter.training.train import find_checkpoints
from i2v_core import cli
from i2v_core.errors import CheckpointError

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("unet.safetensors", "adapter.safetensors", "vae.safetensors")


def last_checkpoint_files(run: Path, last: int) -> list[Path]:
    """The weights files of the `last` highest-step checkpoints of `run`, in ascending step order."""
    checkpoints = find_checkpoints(Path(run))
    if not checkpoints:
        raise CheckpointError(f"expected checkpoint-<step>/ folders in {run}, found none")
    if last < 1 or last > len(checkpoints):
        raise ValueError(f"expected --last in [1, {len(checkpoints)}] (the checkpoints in {run}), got {last}")
    files = []
    for _, folder in checkpoints[-last:]:
        found = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
        if len(found) != 1:
            raise CheckpointError(f"expected one of {', '.join(WEIGHT_FILES)} in {folder}, found {len(found)}")
        files.append(found[0])
    if len({f.name for f in files}) != 1:
        raise CheckpointError(f"expected the checkpoints of one stage, found {sorted({f.name for f in files})}")
    return files


def average_files(files: list[Path]) -> dict:
    """`{name: tensor}`: the element-wise mean of the safetensors `files` (same names, shapes, dtypes)."""
    if not files:
        raise ValueError("expected at least one weights file to average, got none")
    first = load_safetensors(files[0])
    total = {k: v.to(torch.float64) for k, v in first.items()}
    for path in files[1:]:
        state = load_safetensors(path)
        if set(state) != set(first):
            missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
            raise CheckpointError(
                f"{path}: expected the tensors of {files[0]}; missing {missing[:3]}, unexpected {extra[:3]}"
            )
        for key, value in state.items():
            if value.shape != first[key].shape or value.dtype != first[key].dtype:
                raise CheckpointError(
                    f"{path}: tensor {key} expected {tuple(first[key].shape)} {first[key].dtype}, "
                    f"found {tuple(value.shape)} {value.dtype}"
                )
            total[key] += value.to(torch.float64)
    return {k: (v / len(files)).to(first[k].dtype) for k, v in total.items()}


@dataclass(frozen=True)
class AverageOptions:
    """What to average: explicit `files`, or the `last` checkpoints of the training `run` folder."""

    out: Path  # the averaged safetensors file
    files: tuple[Path, ...] = ()
    run: Path | None = None
    last: int = 4
    overwrite: bool = False


def average_checkpoints(options: AverageOptions) -> list[Path]:
    """Write the mean of the options' weights files to `options.out`; returns the files averaged."""
    if (options.run is None) == (not options.files):
        raise ValueError("expected either --run DIR or weights files, not both and not neither")
    files = last_checkpoint_files(options.run, options.last) if options.run is not None else list(options.files)
    state = average_files(files)
    save_safetensors(state, options.out, overwrite=options.overwrite,
                     metadata={"averaged_from": json.dumps([str(f) for f in files])})
    return files


def _report(files: list[Path], out: Path) -> None:
    print(f"averaged {len(files)} files ({files[0].name}, {files[0].parent.name} .. {files[-1].parent.name}) -> {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.training.average", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", type=Path, help="weights files to average (instead of --run)")
    p.add_argument("--run", type=Path, default=None, help="a training run's --out folder")
    p.add_argument("--last", type=int, default=4, help="with --run: how many of the latest checkpoints")
    p.add_argument("--out", type=Path, required=True, help="the averaged safetensors file")
    p.add_argument("--overwrite", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = AverageOptions(out=args.out, files=tuple(args.files), run=args.run, last=args.last, overwrite=args.overwrite)
    return cli.run(lambda: _report(average_checkpoints(options), options.out))


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
