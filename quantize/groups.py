"""Layer groups: module-path prefixes that name a block of a stage in both model formats.

The sensitivity report quantizes one group at a time and a mixed recipe keeps groups in float, so a
group must be computable from what the files carry:

- ONNX node names from torch's exporter: `/unet/down_blocks.0/attentions.0/transformer_blocks.0/attn1/MatMul`
  -> module path `down_blocks.0/attentions.0/...` (the stage's root module and the op name dropped).
- TFLite tensor names from litert-torch: `export.converters._NamedOutputs/i2v_adapter.stage_modules.UNetStage_module/
  diffusers...UNetMotionModel_unet/diffusers...CrossAttnDownBlockMotion_0/...;1` -> `CrossAttnDownBlockMotion_0/...`
  (each component is `<class>_<attribute>`; the wrapper, stage and root model components dropped).

A group is the first `GROUP_DEPTH` (2) components of the module path: for the UNet
`down_blocks.0/attentions.0` (ONNX) or `CrossAttnDownBlockMotion_0/Transformer2DModel_0` (TFLite),
i.e. one resnet, spatial transformer or motion module of one block; `encoder/layers.0` for the text
encoder; `mid_block/resnets.0` for a VAE. Names that carry no module path (graph inputs, constants)
belong to no group. ONNX and TFLite spell groups differently; a recipe's `keep_float` entry
`onnx:<group>` or `tflite:<group>` applies to that format only, a bare `<group>` to both.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

GROUP_DEPTH = 2  # e.g. one resnet / transformer / motion module of one UNet block, one CLIP layer
_TFLITE_ROOT_COMPONENTS = 3  # _NamedOutputs wrapper / stage module / the diffusers or transformers model


def onnx_group(node_name: str, stage: str) -> str | None:
    """`/unet/down_blocks.0/resnets.0/conv1/Conv` -> `down_blocks.0/resnets.0` (depth 2), None for root ops."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 3:  # root module and op name only: no module path
        return None
    path = parts[1:-1]  # drop the stage's root module (`unet`, `vae`, `text_encoder`) and the op name
    return "/".join(path[: GROUP_DEPTH])


def _tflite_component(component: str) -> str:
    """`diffusers.models.resnet.ResnetBlock2D_0` -> `ResnetBlock2D_0` (class without its module, attribute)."""
    return component.rsplit(".", 1)[-1]


def tflite_group(tensor_name: str, stage: str) -> str | None:
    """A litert-torch tensor name -> its group, None for inputs, constants and root-level ops."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    if len(parts) <= _TFLITE_ROOT_COMPONENTS:
        return None
    path = [_tflite_component(p) for p in parts[_TFLITE_ROOT_COMPONENTS:]]
    return "/".join(path[: GROUP_DEPTH])


def group_members(names: Iterable[str], stage: str, fmt: str) -> dict[str, list[str]]:
    """`{group: [names...]}` in first-seen order, for ONNX node names or TFLite tensor names."""
    key = onnx_group if fmt == "onnx" else tflite_group
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        group = key(name, stage)
        if group is not None:
            groups[group].append(name)
    return dict(groups)


def for_format(entries: Iterable[str], fmt: str) -> list[str]:
    """The `keep_float` entries that apply to `fmt`, without their `onnx:` / `tflite:` prefix."""
    chosen = []
    for entry in entries:
        prefix, sep, rest = entry.partition(":")
        if not sep:
            chosen.append(entry)
        elif prefix == fmt:
            chosen.append(rest)
    return chosen


def check_groups(wanted: Iterable[str], available: Iterable[str], stage: str, fmt: str) -> None:
    """`ValueError` naming unknown groups and a few known ones."""
    from i2v_adapter.errors import preview_names

    known = list(available)
    unknown = [g for g in wanted if g not in known]
    if unknown:
        raise ValueError(f"{stage} ({fmt}): unknown layer group(s) {unknown}; expected some of {preview_names(known)}")


def tflite_scope_regex(tensor_names: Iterable[str]) -> str:
    """A regex for ai-edge-quantizer's op scopes (an op's output tensor names, each followed by `;`,
    matched with `re.search`) that matches the ops writing any of `tensor_names`, exactly."""
    return "(?:^|;)(?:" + "|".join(re.escape(n) for n in tensor_names) + ");"


def tflite_group_regex(group: str, stage: str, tensor_names: Iterable[str]) -> str:
    """The scope regex of the ops whose outputs belong to `group`."""
    return tflite_scope_regex(n for n in tensor_names if tflite_group(n, stage) == group)
