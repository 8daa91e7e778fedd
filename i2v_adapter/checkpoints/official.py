"""The parts of an official I2V-Adapter file, which may hold more than the adapter.

The official code saves what it trained from its own UNet (`UNet3DConditionModel`): besides the
adapter (`...attn1.to_q_ff.weight`, `...attn1.to_out_ff.weight` / `.bias`) a file may carry the
IP-Adapter projections of its cross-attentions (`<layer>.attn2.to_k_ip.weight`, `.to_v_ip.weight`),
the AnimateDiff motion modules (`...motion_modules.<i>.temporal_transformer...`) or a whole UNet.
`split_official` sorts the (prefix-stripped) keys into those parts:

- `i2v-adapter`: this project's adapter layout (`normalize_adapter_key`), what `--adapter` loads;
- `ip-projections`: diffusers' layout of an IP-Adapter processor inside the UNet,
  `<layer>.attn2.processor.to_k_ip.0.weight` (`IPAdapterAttnProcessor2_0.to_k_ip` is a list of
  linears, one per image adapter), what `--ip-projections` loads over the content adapter;
- `motion-module`: the keys as found (AnimateDiff's or diffusers' layout), what `--motion-module` loads;
- `unet`: everything else, the spatial UNet, which comes from the SD1.5 folder (`--sd15`) instead.

Torch only: the converter, the safetensors reader and the loaders share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from i2v_adapter.model.adapter import normalize_adapter_key
from i2v_core.errors import CheckpointError

_WRAPPER_PREFIXES = ("module.", "unet.")
_IP_PROJECTION = re.compile(r"^(?P<layer>.+\.attn2)(?:\.processor)?\.(?P<which>to_[kv]_ip)(?:\.0)?\.weight$")


@dataclass(frozen=True)
class Part:
    """One part of an official file: what it is called in messages, the suffix of the file it is
    written to beside the adapter (None: not written), the flag that loads that file, and a note."""

    name: str
    what: str
    suffix: str | None
    flag: str | None
    note: str = ""

    def how(self) -> str:
        """`with --flag (note)`, or the note alone for a part that is not written."""
        if self.flag is None:
            return self.note
        return f"with {self.flag}" + (f" ({self.note})" if self.note else "")


PARTS = {
    "i2v-adapter": Part("i2v-adapter", "I2V-Adapter tensors", ".safetensors", "--adapter"),
    "ip-projections": Part(
        "ip-projections", "IP-Adapter projection tensors (attn2.to_k_ip / to_v_ip)",
        ".ip-adapter-projections.safetensors", "--ip-projections",
        "with --content-adapter and --ip-adapter, whose projections they replace",
    ),
    "motion-module": Part("motion-module", "motion-module tensors", ".motion-module.safetensors", "--motion-module"),
    "unet": Part("unet", "spatial UNet tensors", None, None, "not written: the spatial UNet comes from the SD1.5 folder (--sd15)"),
}


def strip_wrapper_prefix(key: str) -> str:
    """Drop a training wrapper's `module.` and a pipeline's `unet.` prefix."""
    for prefix in _WRAPPER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def ip_projection_key(layer: str, which: str) -> str:
    """diffusers' key of an IP-Adapter projection inside the UNet: `<layer>.processor.<which>.0.weight`."""
    return f"{layer}.processor.{which}.0.weight"


def _part_of(key: str) -> tuple[str, str]:
    """`(part, key in that part's layout)` of one key of an official file."""
    stripped = strip_wrapper_prefix(key)
    if ".to_q_ff." in stripped or ".to_out_ff." in stripped:
        return "i2v-adapter", normalize_adapter_key(key)
    if m := _IP_PROJECTION.match(stripped):
        return "ip-projections", ip_projection_key(m["layer"], m["which"])
    if ".motion_modules." in stripped:
        return "motion-module", stripped
    return "unet", stripped


def split_official(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The tensors of an official file by part (`PARTS` order; empty parts left out), each keyed in
    its part's layout. Raises `CheckpointError` if two keys map to one."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PARTS}
    for key, value in state.items():
        part, new_key = _part_of(key)
        if new_key in parts[part]:
            raise CheckpointError(f"two keys map to {new_key!r} (the second is {key!r}): the layout is ambiguous")
        parts[part][new_key] = value
    return {name: tensors for name, tensors in parts.items() if tensors}


def part_file(adapter_file: Path, part: str) -> Path | None:
    """Where the converter writes `part` beside the adapter file `adapter_file` (None: not written)."""
    suffix = PARTS[part].suffix
    if suffix is None:
        return None
    return adapter_file if part == "i2v-adapter" else adapter_file.with_name(adapter_file.stem + suffix)


def check_adapter_only(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Raise `CheckpointError` if an adapter file also holds other known parts, naming them with their
    counts and how to split and use them (else the loader would list them as unexpected keys)."""
    parts = split_official(state)
    extra = [name for name in parts if name != "i2v-adapter"]
    if not extra or "i2v-adapter" not in parts:
        return
    counts = " and ".join(f"{len(parts[name])} {PARTS[name].what}" for name in extra)
    out = path.with_name(f"{path.stem}.adapter.safetensors")
    uses = [f"{part_file(out, name)} {PARTS[name].how()}" for name in parts if PARTS[name].suffix]
    left = "".join(f"; the {PARTS[name].what} are {PARTS[name].note}" for name in extra if not PARTS[name].suffix)
    raise CheckpointError(
        f"{path} holds the I2V-Adapter's {len(parts['i2v-adapter'])} tensors, and also {counts}: split them out with "
        f"python -m i2v_adapter.checkpoints.convert {path} {out}, then pass {', '.join(uses)}{left}"
    )
