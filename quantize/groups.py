"""Layer groups: module-path prefixes that name a block of a stage in both model formats.

The sensitivity report quantizes one group at a time and a mixed recipe keeps groups in float, so a
group must be computable from what the files carry:

- ONNX node names from torch's exporter: `/unet/down_blocks.0/attentions.0/transformer_blocks.0/attn1/MatMul`
  -> module path `down_blocks.0/attentions.0/...` (the stage's root module and the op name dropped).
- TFLite tensor names from litert-torch: `export.converters._NamedOutputs/i2v_adapter.model.stage_modules.UNetStage_module/
  diffusers...UNetMotionModel_unet/diffusers...CrossAttnDownBlockMotion_0/...;1` -> `CrossAttnDownBlockMotion_0/...`
  (each component is `<class>_<attribute>`; the wrapper, stage and root model components dropped).

A group is a module-path prefix. The sensitivity sweep groups by the first `GROUP_DEPTH` (2)
components (or another depth): for the UNet
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

from i2v_core.errors import preview_names

GROUP_DEPTH = 2  # e.g. one resnet / transformer / motion module of one UNet block, one CLIP layer
_TFLITE_ROOT_COMPONENTS = 3  # _NamedOutputs wrapper / stage module / the diffusers or transformers model


def onnx_path(node_name: str) -> tuple[str, ...] | None:
    """`/unet/down_blocks.0/resnets.0/conv1/Conv` -> `(down_blocks.0, resnets.0, conv1)`; None for root ops."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 3:  # root module and op name only: no module path
        return None
    return tuple(parts[1:-1])  # without the stage's root module (`unet`, `vae`, ...) and the op name


def tflite_path(tensor_name: str) -> tuple[str, ...] | None:
    """A litert-torch tensor name -> `(CrossAttnDownBlockMotion_0, ResnetBlock2D_0, ...)`; None for
    inputs, constants and root-level ops. Each component keeps its class and attribute, not its module."""
    parts = tensor_name.split(";")[0].split("/")
    if len(parts) <= _TFLITE_ROOT_COMPONENTS:
        return None
    return tuple(p.rsplit(".", 1)[-1] for p in parts[_TFLITE_ROOT_COMPONENTS:])


def module_path(name: str, fmt: str) -> tuple[str, ...] | None:
    return onnx_path(name) if fmt == "onnx" else tflite_path(name)


def group_members(names: Iterable[str], fmt: str, depth: int = GROUP_DEPTH) -> dict[str, list[str]]:
    """`{group: [names...]}` in first-seen order, groups the first `depth` module-path components."""
    if depth < 1:
        raise ValueError(f"expected a group depth >= 1, got {depth}")
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        path = module_path(name, fmt)
        if path is not None:
            # ops directly in a module shallower than `depth` (a block's skip concat) are `<module>/.`,
            # so they do not overlap the groups of its children
            groups["/".join(path[:depth]) + ("/." if len(path) < depth else "")].append(name)
    return dict(groups)


def _matches(path: tuple[str, ...] | None, group: tuple[str, ...]) -> bool:
    if path is None:
        return False
    if group[-1] == ".":
        return path == group[:-1]
    return path[: len(group)] == group


def members(names: Iterable[str], fmt: str, groups: Iterable[str], stage: str) -> list[str]:
    """The names inside any of `groups` (a group is a module-path prefix, at any depth; `<module>/.`
    is the ops directly in that module). `ValueError` names the groups that match nothing."""
    wanted = {g: tuple(g.split("/")) for g in groups}
    paths = [(n, module_path(n, fmt)) for n in names]
    found, chosen = set(), []
    for name, path in paths:
        hits = [g for g, prefix in wanted.items() if _matches(path, prefix)]
        found.update(hits)
        if hits:
            chosen.append(name)
    unknown = [g for g in wanted if g not in found]
    if unknown:
        known = list(group_members((n for n, _ in paths), fmt))
        raise ValueError(f"{stage} ({fmt}): unknown layer group(s) {unknown}; expected some of {preview_names(known)}")
    return chosen


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


def tflite_scope_regex(tensor_names: Iterable[str]) -> str:
    """A regex for ai-edge-quantizer's op scopes (an op's output tensor names, each followed by `;`,
    matched with `re.search`) that matches the ops writing any of `tensor_names`, exactly."""
    return "(?:^|;)(?:" + "|".join(re.escape(n) for n in tensor_names) + ");"
