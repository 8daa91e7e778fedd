"""Fuse LoRA weights (a "style") into the spatial layers of the video UNet.

Two key layouts are read, both naming modules of the 2D SD UNet (`UNet2DConditionModel`):

- diffusers / PEFT: `unet.<module>.lora_A.weight` (down), `unet.<module>.lora_B.weight` (up),
  optional `unet.<module>.alpha`; the `unet.` prefix is optional.
- kohya: `lora_unet_<module with dots as underscores>.lora_down.weight`, `.lora_up.weight`, `.alpha`.

The spatial modules of diffusers' `UNetMotionModel` carry the same names as in the 2D UNet (its
motion modules are extra), so names map one to one; the tests check this. Fusing adds
`scale * (alpha / rank) * up @ down` to each weight (rank = rows of `down`; alpha defaults to rank),
for linear layers and convolutions alike (`down` `(r, in, kh, kw)`, `up` `(out, r, 1, 1)`).
Text-encoder keys are skipped and counted; keys naming no spatial layer are refused by name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from i2v_core.errors import CheckpointError, preview_names

logger = logging.getLogger(__name__)

TEXT_ENCODER_PREFIXES = ("text_encoder.", "text_encoder_2.", "lora_te_", "lora_te1_", "lora_te2_")
_UNET_PREFIXES = ("base_model.model.", "unet.")
KOHYA_PREFIX = "lora_unet_"
# suffix -> role, per layout
_PEFT_SUFFIXES = {".lora_A.weight": "down", ".lora_B.weight": "up", ".alpha": "alpha"}
_KOHYA_SUFFIXES = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha"}
# Module-path parts that are not spatial layers of the 2D UNet.
_NOT_SPATIAL = ("motion_modules", ".processor", "encoder_hid_proj")


@dataclass
class LoRALayer:
    """The low-rank update of one module: `down` `(r, in, ...)`, `up` `(out, r, ...)`, optional alpha."""

    down: torch.Tensor | None = None
    up: torch.Tensor | None = None
    alpha: float | None = None

    def delta(self, weight_shape: torch.Size, scale: float) -> torch.Tensor:
        """`scale * alpha / r * up @ down`, shaped like the weight (float32)."""
        rank = self.down.shape[0]
        alpha = float(rank) if self.alpha is None else self.alpha
        if self.up.ndim < 2 or self.up.shape[1] != rank or math.prod(self.up.shape[2:]) != 1:
            raise ValueError(f"up {tuple(self.up.shape)} does not fit down {tuple(self.down.shape)} (rank {rank})")
        up = self.up.reshape(self.up.shape[0], rank).float()  # (out, r)
        down = self.down.reshape(rank, -1).float()  # (r, in * kh * kw)
        delta = (up @ down) * (scale * alpha / rank)  # (out, in * kh * kw)
        if up.shape[0] != weight_shape[0] or delta.numel() != math.prod(weight_shape):
            raise ValueError(f"update of shape {tuple(delta.shape)} does not fit weight {tuple(weight_shape)}")
        return delta.reshape(weight_shape)


def lora_targets(unet: nn.Module) -> dict[str, nn.Module]:
    """The spatial linear and convolution layers of `unet` that a LoRA may name, by module path."""
    return {
        name: module
        for name, module in unet.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not any(part in name for part in _NOT_SPATIAL)
    }


def _split_key(key: str) -> tuple[str, str, str] | None:
    """`(layout, module, role)` for a UNet LoRA key, or None when the key fits neither layout."""
    if key.startswith(KOHYA_PREFIX):
        layout, suffixes, body = "kohya", _KOHYA_SUFFIXES, key[len(KOHYA_PREFIX):]
    else:
        layout, suffixes, body = "peft", _PEFT_SUFFIXES, key
        for prefix in _UNET_PREFIXES:
            if body.startswith(prefix):
                body = body[len(prefix):]
    for suffix, role in suffixes.items():
        if body.endswith(suffix):
            return layout, body[: -len(suffix)], role
    return None


def group_lora_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[tuple[str, str], LoRALayer], int]:
    """Group a LoRA file's UNet keys by the layer they name: `{(layout, module): LoRALayer}`.

    Returns the groups and the number of skipped text-encoder tensors. Keys that fit neither
    layout raise `CheckpointError` listing them.
    """
    layers: dict[tuple[str, str], LoRALayer] = {}
    skipped, unknown = 0, []
    for key, value in state_dict.items():
        if key.startswith(TEXT_ENCODER_PREFIXES):
            skipped += 1
            continue
        parsed = _split_key(key)
        if parsed is None:
            unknown.append(key)
            continue
        layout, module, role = parsed
        layer = layers.setdefault((layout, module), LoRALayer())
        setattr(layer, role, float(value) if role == "alpha" else value)
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} LoRA keys fit neither the diffusers/PEFT layout (<module>.lora_A.weight, "
            f".lora_B.weight, .alpha) nor the kohya layout (lora_unet_<module>.lora_down.weight, "
            f".lora_up.weight, .alpha): {preview_names(unknown)}"
        )
    return layers, skipped


def _resolve(layers: Mapping[tuple[str, str], LoRALayer], targets: Mapping[str, nn.Module]) -> dict[str, LoRALayer]:
    """Map each group to a UNet module path; refuse groups naming no spatial layer, by name."""
    kohya_names: dict[str, str] = {}
    for name in targets:
        flat = name.replace(".", "_")
        if kohya_names.setdefault(flat, name) != name:
            raise RuntimeError(f"kohya name {flat!r} is ambiguous: {kohya_names[flat]} and {name}")
    resolved: dict[str, LoRALayer] = {}
    unknown, incomplete = [], []
    for (layout, module), layer in layers.items():
        name = kohya_names.get(module) if layout == "kohya" else module
        shown = KOHYA_PREFIX + module if layout == "kohya" else module
        if name not in targets:
            unknown.append(shown)
        elif layer.down is None or layer.up is None:
            found = [role for role in ("down", "up") if getattr(layer, role) is not None]
            incomplete.append(f"{shown} (found {', '.join(found) or 'alpha'} only)")
        else:
            resolved[name] = layer
    if unknown:
        example = next(iter(targets), "?")
        raise CheckpointError(
            f"{len(unknown)} LoRA layers name no spatial layer of the UNet: {preview_names(unknown)} "
            f"(expected 2D UNet module names such as {example!r})"
        )
    if incomplete:
        raise CheckpointError(f"{len(incomplete)} LoRA layers lack their down or up matrix: {preview_names(incomplete)}")
    return resolved


def fuse_lora(unet: nn.Module, state_dict: Mapping[str, torch.Tensor], scale: float = 1.0) -> list[str]:
    """Add `scale * (alpha / rank) * up @ down` to every layer the LoRA names; return their paths.

    All updates are computed and shape-checked before any weight changes, so a bad file leaves the
    UNet as it was. Raises `CheckpointError` for unknown keys, unknown layers or shape mismatches.
    """
    layers, skipped = group_lora_state_dict(state_dict)
    if skipped:
        logger.info("skipped %d text-encoder LoRA tensors (only the UNet is fused)", skipped)
    targets = lora_targets(unet)
    resolved = _resolve(layers, targets)
    deltas: dict[str, torch.Tensor] = {}
    mismatched = []
    for name, layer in resolved.items():
        weight = targets[name].weight
        try:
            deltas[name] = layer.delta(weight.shape, scale)
        except ValueError as err:
            mismatched.append(f"{name}: {err}")
    if mismatched:
        raise CheckpointError(f"{len(mismatched)} LoRA layers do not fit the UNet: {preview_names(mismatched)}")
    with torch.no_grad():
        for name, delta in deltas.items():
            weight = targets[name].weight
            weight.copy_((weight.float() + delta).to(weight.dtype))
    fused = [name for name in targets if name in deltas]
    logger.info("fused %d LoRA layers at scale %g", len(fused), scale)
    return fused
