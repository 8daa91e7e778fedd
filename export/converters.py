"""Convert one stage module to one model file: ONNX (torch's TorchScript exporter + onnxslim) or TFLite
(litert-torch). Input and output names are the stage contract's.

ONNX uses `torch.onnx.export(..., dynamo=False)`: the TorchScript exporter traces diffusers'
`UNetMotionModel` at static shapes reliably (Python-side shape checks become constants) and matches
PyTorch to ~1e-6. A model whose weights pass protobuf's 2 GB limit is written with all weights in one
external-data file beside it (`unet.onnx` + `unet.onnx.data`).

TFLite is a flatbuffer with the same 2 GB limit and no external weights in litert-torch's fp32 path:
a stage that cannot fit is refused before conversion (`TFLiteSizeError`).
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from i2v_core.bundle import EXTENSIONS
from i2v_core.cli import check_interrupted
from i2v_core.runners import TFLITE_SIGNATURE
from i2v_core.stages import StageSpec

logger = logging.getLogger(__name__)

ONNX_OPSET = 17
SIZE_LIMIT_BYTES = 2 * 1024**3  # protobuf (ONNX) and flatbuffer (TFLite) 2 GB limits
SLIM_MAX_BYTES = 1_000_000_000  # larger graphs skip onnxslim: it needs several copies of the weights


class TFLiteSizeError(ValueError):
    """A stage's weights cannot fit a TFLite flatbuffer at the requested precision."""


def weight_bytes(module: nn.Module) -> int:
    """Bytes of parameters and buffers (shared tensors counted once)."""
    seen, total = set(), 0
    for t in [*module.parameters(), *module.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def check_tflite_size(stage: str, nbytes: int, precision: str = "fp32") -> None:
    """Raise `TFLiteSizeError` if `nbytes` of weights cannot fit one flatbuffer."""
    if nbytes >= SIZE_LIMIT_BYTES:
        raise TFLiteSizeError(
            f"{stage} has {nbytes / 1e9:.2f} GB of {precision} weights; a TFLite flatbuffer holds at most "
            f"{SIZE_LIMIT_BYTES / 1e9:.2f} GB. Export it with smaller weights (fp16 halves them, int8 quarters "
            "them: see quantize/), split the UNet into chunks (--unet-chunks N), or use --target onnx (external data) for this preset"
        )


def check_forward_names(module: nn.Module, spec: StageSpec) -> None:
    """The stage module's positional parameters (or its `input_names`, for a UNet chunk) must carry
    the contract's input names, in order."""
    params = getattr(module, "input_names", None) or list(inspect.signature(module.forward).parameters)[: len(spec.inputs)]
    if params != spec.input_names:
        raise ValueError(f"{spec.name} module takes {params}, expected the contract's inputs {spec.input_names}")


@contextmanager
def _quiet_tracing() -> Iterator[None]:
    # TracerWarnings flag Python control flow on shapes, which is what static-shape export wants.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        yield


def export_onnx(
    module: nn.Module,
    spec: StageSpec,
    args: tuple[torch.Tensor, ...],
    path: Path,
    *,
    work_dir: Path,
    opset: int = ONNX_OPSET,
    external_data: bool | None = None,
) -> list[Path]:
    """Trace `module` on `args`, simplify with onnxslim, write `path`; return the files written.

    `external_data`: None decides by size (weights over 2 GB go to `<path>.data`); True / False force it.
    `work_dir` holds the unsimplified graph (and its per-tensor files for a large model).
    """
    import onnx  # deferred: onnx is heavy and only this path reads graphs
    import onnxslim

    check_forward_names(module, spec)
    work_dir.mkdir(parents=True, exist_ok=True)
    raw = work_dir / f"{spec.name}.raw.onnx"
    with _quiet_tracing():
        torch.onnx.export(
            module,
            args,
            str(raw),
            input_names=spec.input_names,
            output_names=spec.output_names,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    check_interrupted()
    nbytes = weight_bytes(module)
    large = nbytes >= SIZE_LIMIT_BYTES if external_data is None else external_data
    if nbytes >= SLIM_MAX_BYTES and not large:
        # onnxslim holds several copies of the weights while it folds; the exporter has folded constants
        logger.info("%s: %.2f GB of weights, kept as exported (no onnxslim: memory)", spec.name, nbytes / 1e9)
        raw.replace(path)
        return [path]
    model = onnxslim.slim(str(raw))
    check_interrupted()
    if model is None:
        raise RuntimeError(f"onnxslim could not simplify {spec.name}'s graph")
    raw.unlink()
    files = [path]
    if large:
        data = path.with_name(path.name + ".data")
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
        files.append(data)
    else:
        onnx.save_model(model, str(path))
    return files


class _NamedOutputs(nn.Module):
    """Keyword inputs and a dict of outputs, so the TFLite signature carries the contract's names."""

    def __init__(self, module: nn.Module, output_names: list[str]):
        super().__init__()
        self.module = module
        self.output_names = output_names

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(**inputs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return dict(zip(self.output_names, outs))


@contextmanager
def _litert_progress(show: bool) -> Iterator[None]:
    import litert_torch  # deferred: TFLite conversion only (slow to import)

    before = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    litert_torch.config.show_progress = show
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = before


def export_tflite(
    module: nn.Module, spec: StageSpec, args: tuple[torch.Tensor, ...], path: Path, *, progress: bool = False
) -> list[Path]:
    """Convert `module` with litert-torch (signature `serving_default`, contract names); return `[path]`."""
    import litert_torch  # deferred: TFLite conversion only (slow to import)

    check_forward_names(module, spec)
    check_tflite_size(spec.name, weight_bytes(module))
    wrapped = _NamedOutputs(module, spec.output_names).eval()
    with _quiet_tracing(), _litert_progress(progress):
        edge = litert_torch.convert(wrapped, sample_kwargs=dict(zip(spec.input_names, args)))
        check_interrupted()  # litert-torch can swallow Ctrl-C (raised in a gc callback): honour it here
        edge.export(str(path))
    check_interrupted()
    logger.debug("%s: TFLite signature %r", spec.name, TFLITE_SIGNATURE)
    return [path]


def export_stage(target: str, module: nn.Module, spec: StageSpec, args, out_dir: Path, *, work_dir: Path, progress: bool) -> list[Path]:
    """Write `<out_dir>/<stage><ext>` for `target` (`onnx` or `tflite`); return the files written."""
    path = out_dir / f"{spec.name}{EXTENSIONS[target]}"
    if target == "onnx":
        return export_onnx(module, spec, args, path, work_dir=work_dir)
    if target == "tflite":
        return export_tflite(module, spec, args, path, progress=progress)
    raise ValueError(f"unknown target {target!r}: expected one of {', '.join(EXTENSIONS)}")
