"""safetensors files in and out: atomic writes, reads that name the path and what the file
looks like when it is not safetensors, and the I2V-Adapter's own file (the adapter alone)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn

from i2v_adapter.checkpoints.official import check_adapter_only
from i2v_adapter.model.adapter import i2v_adapter_state_dict, load_i2v_adapter_state_dict
from i2v_core.errors import CheckpointError
from i2v_core.media import atomic_output_path

logger = logging.getLogger(__name__)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor],
    path: str | Path,
    *,
    overwrite: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write `state_dict` to a safetensors file atomically; return the path.

    An existing file is refused with `FileExistsError` unless `overwrite`. `metadata` is stored in the
    header (string keys and values). Tensors that share storage or are views are copied, since a
    safetensors file holds each tensor's own bytes.
    """
    tensors = _plain_tensors(state_dict)
    meta = None
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"safetensors metadata must map str to str; found non-string entries for {bad}")
        meta = dict(metadata)
    with atomic_output_path(path, overwrite=overwrite) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=meta)
    logger.info("wrote %d tensors to %s", len(tensors), path)
    return Path(path)


def _plain_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise TypeError(f"expected a dict of str -> torch.Tensor, found {key!r}: {type(value).__name__}")
        value = value.detach().cpu()
        storage = value.untyped_storage()
        shared = storage.data_ptr() in seen_storages or storage.nbytes() != value.nbytes
        if shared or not value.is_contiguous():
            value = value.contiguous().clone()
        seen_storages.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file onto the CPU.

    Raises `CheckpointError` naming the path when it is missing, a directory, or not a readable
    safetensors file (with a hint when it is a PyTorch pickle that needs converting).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"expected a safetensors file at {path}, found nothing there")
    if path.is_dir():
        raise CheckpointError(f"expected a safetensors file at {path}, found a directory")
    try:
        return safetensors.torch.load_file(str(path), device="cpu")
    except SafetensorError as err:
        raise CheckpointError(
            f"expected a safetensors file at {path}, but it cannot be read as one: {_sniff(path)} ({err})"
        ) from err


def _sniff(path: Path) -> str:
    """What a file that is not valid safetensors probably is, for the error message."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return f"it looks like a PyTorch pickle; convert it with `python -m i2v_adapter.checkpoints.convert {path} OUT.safetensors`"
    return "the file is corrupt or truncated, or another format"


def save_i2v_adapter(unet: nn.Module, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the adapter alone to a safetensors file (atomically)."""
    return save_safetensors(i2v_adapter_state_dict(unet), path, overwrite=overwrite, metadata={"format": "i2v-adapter"})


def load_i2v_adapter(unet: nn.Module, path: str | Path) -> None:
    """Load adapter weights from this project's safetensors or the official layout converted to it
    (a file with more parts of the official UNet is refused naming them: `official.check_adapter_only`)."""
    state = load_safetensors(path)
    check_adapter_only(state, Path(path))
    load_i2v_adapter_state_dict(unet, state)
