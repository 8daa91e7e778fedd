"""Key layouts of released checkpoints, and `python -m i2v_adapter.checkpoints.convert IN OUT.safetensors`.

Layouts:

- AnimateDiff motion module, original layout <-> diffusers `MotionAdapter` (both directions):

      <block>.motion_modules.<i>.temporal_transformer.proj_in.weight     <-> <block>.motion_modules.<i>.proj_in.weight
      ...transformer_blocks.<j>.attention_blocks.<a>.to_q.weight         <-> ...transformer_blocks.<j>.attn<a+1>.to_q.weight
      ...transformer_blocks.<j>.norms.<a>.weight                         <-> ...transformer_blocks.<j>.norm<a+1>.weight
      ...transformer_blocks.<j>.ff_norm.weight                           <-> ...transformer_blocks.<j>.norm3.weight
      ...transformer_blocks.<j>.attention_blocks.<a>.pos_encoder.pe      <-> ...transformer_blocks.<j>.pos_embed.pe

  AnimateDiff keeps one sinusoid table per attention block, diffusers one per transformer block
  (used by both attentions); the tables are the same fixed sinusoids, which the conversion checks.
- IP-Adapter-Plus resampler (`image_proj.*`), original `Resampler` <-> diffusers
  `IPAdapterPlusImageProjection`; the original's fused `to_kv` is split into `to_k` and `to_v`.

The converter reads a PyTorch pickle with `torch.load(weights_only=True)` only: a file that needs
arbitrary Python objects is refused, never executed. It unwraps `state_dict` / `module` wrappers,
flattens nested dicts (`{"image_proj": {...}}` -> `image_proj.*`), strips `module.` / `unet.`
prefixes, keeps tensors only and writes safetensors atomically.

An official I2V-Adapter file that holds more than the adapter (IP-Adapter projections, motion
modules, a whole UNet: see `i2v_adapter.checkpoints.official`) is split: the adapter goes to the
output path, the IP-Adapter projections and the motion module to files beside it
(`OUT.ip-adapter-projections.safetensors`, `OUT.motion-module.safetensors`), and the converter prints
each part with its count and the flag that loads it.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from i2v_adapter.checkpoints.io import load_safetensors, save_safetensors
from i2v_adapter.checkpoints.official import PARTS, part_file, split_official, strip_wrapper_prefix
from i2v_core import cli
from i2v_core.errors import CheckpointError

logger = logging.getLogger(__name__)

KINDS = ("i2v-adapter", "motion-module", "ip-adapter")


def _put(out: dict[str, torch.Tensor], key: str, value: torch.Tensor, source: str) -> None:
    if key in out:
        raise CheckpointError(f"two keys map to {key!r} (the second is {source!r}): the layout is ambiguous")
    out[key] = value


# --------------------------------------------------------------------------------------------------
# AnimateDiff motion module
# --------------------------------------------------------------------------------------------------

_ORIGINAL_MODULE = re.compile(r"^(?P<head>.*\.motion_modules\.\d+)\.temporal_transformer\.(?P<rest>.+)$")
_DIFFUSERS_MODULE = re.compile(r"^(?P<head>.*\.motion_modules\.\d+)\.(?P<rest>.+)$")
_BLOCK = re.compile(r"^(?P<block>transformer_blocks\.\d+)\.(?P<inner>.+)$")
_ORIGINAL_PE = re.compile(r"^attention_blocks\.\d+\.pos_encoder\.pe$")


def is_original_motion_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for AnimateDiff's own key layout (`...motion_modules.<i>.temporal_transformer...`)."""
    return any(_ORIGINAL_MODULE.match(key) for key in state_dict)


def _inner_to_diffusers(inner: str) -> str:
    """Key inside one temporal transformer block, AnimateDiff -> diffusers."""
    if _ORIGINAL_PE.match(inner):
        return "pos_embed.pe"
    if m := re.match(r"^attention_blocks\.(\d+)\.(.+)$", inner):
        return f"attn{int(m[1]) + 1}.{m[2]}"
    if m := re.match(r"^norms\.(\d+)\.(.+)$", inner):
        return f"norm{int(m[1]) + 1}.{m[2]}"
    if inner.startswith("ff_norm."):
        return "norm3." + inner[len("ff_norm."):]
    return inner  # ff.net.* is named alike


def _inner_to_original(inner: str) -> str:
    """Key inside one temporal transformer block, diffusers -> AnimateDiff (not `pos_embed.pe`)."""
    if inner.startswith("norm3."):
        return "ff_norm." + inner[len("norm3."):]
    if m := re.match(r"^attn(\d+)\.(.+)$", inner):
        return f"attention_blocks.{int(m[1]) - 1}.{m[2]}"
    if m := re.match(r"^norm(\d+)\.(.+)$", inner):
        return f"norms.{int(m[1]) - 1}.{m[2]}"
    return inner


def motion_original_to_diffusers(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AnimateDiff motion-module keys -> diffusers `MotionAdapter` keys.

    Keys outside `...motion_modules.<i>.temporal_transformer.` are kept as they are (and reported as
    unexpected by the loader). Raises `CheckpointError` if the attention blocks of one transformer
    block carry different position encodings, which diffusers cannot represent.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _ORIGINAL_MODULE.match(key)
        if m is None:
            _put(out, key, value, key)
            continue
        rest = m["rest"]
        if b := _BLOCK.match(rest):
            rest = f"{b['block']}.{_inner_to_diffusers(b['inner'])}"
        new_key = f"{m['head']}.{rest}"
        if rest.endswith("pos_embed.pe") and new_key in out:
            if not torch.equal(out[new_key], value):
                raise CheckpointError(
                    f"{key}: the attention blocks of one temporal transformer block have different "
                    "position encodings; diffusers' MotionAdapter shares one table per block"
                )
            continue
        _put(out, new_key, value, key)
    return out


def motion_diffusers_to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers `MotionAdapter` keys -> AnimateDiff's layout; `pos_embed.pe` goes to every attention
    block of its transformer block, as AnimateDiff stores it."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _DIFFUSERS_MODULE.match(key)
        if m is None:
            _put(out, key, value, key)
            continue
        head, rest = m["head"], m["rest"]
        b = _BLOCK.match(rest)
        if b is None:
            _put(out, f"{head}.temporal_transformer.{rest}", value, key)
            continue
        prefix = f"{head}.temporal_transformer.{b['block']}"
        if b["inner"] != "pos_embed.pe":
            _put(out, f"{prefix}.{_inner_to_original(b['inner'])}", value, key)
            continue
        attn = re.compile(re.escape(f"{head}.{b['block']}.") + r"attn(\d+)\.")
        indices = sorted({int(a[1]) for k in state_dict if (a := attn.match(k))})
        for index in indices:
            _put(out, f"{prefix}.attention_blocks.{index - 1}.pos_encoder.pe", value.clone(), key)
    return out


# --------------------------------------------------------------------------------------------------
# IP-Adapter-Plus resampler
# --------------------------------------------------------------------------------------------------

# Module names inside `layers.<i>.`: original `Resampler` -> diffusers `IPAdapterPlusImageProjection`.
_RESAMPLER_MODULES = {
    "0.norm1": "ln0",
    "0.norm2": "ln1",
    "0.to_q": "attn.to_q",
    "0.to_out": "attn.to_out.0",
    "1.0": "ff.0",
    "1.1": "ff.1.net.0.proj",
    "1.3": "ff.1.net.2",
}
_RESAMPLER_KEY = re.compile(r"^layers\.(?P<i>\d+)\.(?P<module>.+)\.(?P<param>weight|bias)$")


def _rename_resampler(state_dict: Mapping[str, torch.Tensor], names: Mapping[str, str]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        m = _RESAMPLER_KEY.match(key)
        module = names.get(m["module"]) if m else None
        new_key = f"layers.{m['i']}.{module}.{m['param']}" if module else key
        _put(out, new_key, value, key)
    return out


def ip_adapter_plus_to_diffusers(image_proj: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original IP-Adapter-Plus resampler keys -> diffusers keys (diffusers keys pass unchanged)."""
    split: dict[str, torch.Tensor] = {}
    for key, value in image_proj.items():
        if m := re.match(r"^layers\.(\d+)\.0\.to_kv\.weight$", key):
            k, v = value.chunk(2, dim=0)  # (2 * inner, C) -> to_k (inner, C), to_v (inner, C)
            _put(split, f"layers.{m[1]}.attn.to_k.weight", k, key)
            _put(split, f"layers.{m[1]}.attn.to_v.weight", v, key)
        else:
            _put(split, key, value, key)
    return _rename_resampler(split, _RESAMPLER_MODULES)


def ip_adapter_plus_to_original(image_proj: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers `IPAdapterPlusImageProjection` keys -> the original `Resampler` keys."""
    out = _rename_resampler(image_proj, {v: k for k, v in _RESAMPLER_MODULES.items()})
    for key in [k for k in out if re.match(r"^layers\.\d+\.attn\.to_k\.weight$", k)]:
        value_key = key.replace(".to_k.", ".to_v.")
        fused = torch.cat([out.pop(key), out.pop(value_key)], dim=0)  # (inner, C) x 2 -> (2 * inner, C)
        _put(out, key.replace(".attn.to_k.", ".0.to_kv."), fused, key)
    return out


# --------------------------------------------------------------------------------------------------
# Reading released files
# --------------------------------------------------------------------------------------------------


def _unwrap(obj: object, path: Path) -> Mapping:
    while isinstance(obj, Mapping):
        inner = next((obj[w] for w in ("state_dict", "module") if isinstance(obj.get(w), Mapping)), None)
        if inner is None:
            return obj
        obj = inner
    raise CheckpointError(f"expected {path} to hold a dict of tensors (a state dict), found {type(obj).__name__}")


def _flatten(obj: Mapping, prefix: str, out: dict[str, torch.Tensor], dropped: list[str]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, Mapping):
            _flatten(value, name + ".", out, dropped)
        else:
            dropped.append(name)


def _pickle_reason(err: Exception) -> str:
    """The line of torch's weights-only message that names the refused global, if there is one."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if "Unsupported global" in line or "WeightsUnpickler error" in line]
    reason = (named or lines or [type(err).__name__])[0]
    return reason.split(" Please use")[0]  # torch's advice to allow-list the global is not ours


def read_torch_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.pth` / `.ckpt` / `.bin` file, read with `torch.load(weights_only=True)`.

    Unwraps `state_dict` / `module` wrappers and flattens nested dicts with dotted keys; other
    values (step counters, hyper-parameters) are dropped and logged.
    """
    path = Path(path)
    if not path.is_file():
        found = "a directory" if path.is_dir() else "nothing"
        raise CheckpointError(f"expected a PyTorch checkpoint file at {path}, found {found}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"torch.load(weights_only=True) refused {path}: it needs Python objects other than tensors "
            "and plain containers, and unpickling those could run arbitrary code. Re-save the weights "
            f"as a plain state dict (torch.save(model.state_dict(), ...)) from code you trust. ({_pickle_reason(err)})"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint written by torch.save: {err}") from err
    tensors: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    _flatten(_unwrap(obj, path), "", tensors, dropped)
    if dropped:
        logger.info("dropped %d non-tensor entries from %s: %s", len(dropped), path, dropped[:6])
    if not tensors:
        raise CheckpointError(f"expected tensors in {path}, found none")
    return tensors


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------

_SIGNATURES = {
    "i2v-adapter": lambda k: ".to_q_ff." in k or ".to_out_ff." in k,
    "motion-module": lambda k: ".motion_modules." in k,
    "ip-adapter": lambda k: k.startswith(("image_proj.", "ip_adapter.")),
}


def detect_kind(keys: list[str], kind: str = "auto") -> str:
    """The checkpoint kind from its (prefix-stripped) keys; an explicit `kind` is checked instead."""
    if kind != "auto":
        if kind not in _SIGNATURES:
            raise ValueError(f"unknown kind {kind!r}: expected one of auto, {', '.join(KINDS)}")
        if not any(_SIGNATURES[kind](k) for k in keys):
            raise CheckpointError(f"expected {kind} keys, found keys like {keys[:4]}")
        return kind
    for name in KINDS:
        if any(_SIGNATURES[name](k) for k in keys):
            return name
    raise CheckpointError(f"cannot tell the checkpoint kind from keys like {keys[:4]}; pass --kind")


@dataclass(frozen=True)
class PartSummary:
    """One more part of an official I2V-Adapter file: its `PARTS` name, tensor count, file (None: not written)."""

    part: str
    tensors: int
    path: Path | None

    def line(self) -> str:
        part = PARTS[self.part]
        if self.path is None:
            return f"  also {self.tensors} {part.what}, {part.note}"
        return f"  also {self.tensors} {part.what} -> {self.path}: load it {part.how()}"


@dataclass(frozen=True)
class ConversionSummary:
    kind: str
    tensors: int
    parameters: int
    path: Path
    parts: tuple[PartSummary, ...] = ()  # what an official I2V-Adapter file held besides the adapter

    def line(self) -> str:
        head = f"converted {self.kind}: {self.tensors} tensors, {self.parameters:,} parameters -> {self.path}"
        return "\n".join([head, *(p.line() for p in self.parts)])


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    for path in paths:
        if path.exists() and not overwrite:
            raise FileExistsError(f"output already exists: {path} (pass --overwrite to replace it)")


def _split_adapter(raw: dict[str, torch.Tensor], src: Path, dst: Path, overwrite: bool) -> ConversionSummary:
    """An I2V-Adapter file, split into its parts: the adapter at `dst`, the others beside it."""
    parts = split_official(raw)
    files = {name: part_file(dst, name) for name in parts}
    _refuse_existing([p for p in files.values() if p is not None], overwrite)  # all of them before writing any
    for name, tensors in parts.items():
        if files[name] is not None:
            save_safetensors(tensors, files[name], overwrite=overwrite, metadata={"format": name, "source": src.name})
    adapter = parts["i2v-adapter"]
    extra = tuple(PartSummary(name, len(parts[name]), files[name]) for name in parts if name != "i2v-adapter")
    return ConversionSummary("i2v-adapter", len(adapter), sum(v.numel() for v in adapter.values()), dst, extra)


def convert_checkpoint(
    src: str | Path, dst: str | Path, *, kind: str = "auto", overwrite: bool = False
) -> ConversionSummary:
    """Convert a released checkpoint (`.pth`/`.ckpt`/`.bin`, or safetensors) to this project's safetensors.

    An I2V-Adapter file holding more than the adapter is split (see the module doc)."""
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() != ".safetensors":
        raise CheckpointError(f"expected an output path ending in .safetensors, found {dst.name!r}")
    _refuse_existing([dst], overwrite)
    raw = load_safetensors(src) if src.suffix.lower() == ".safetensors" else read_torch_checkpoint(src)
    stripped = {strip_wrapper_prefix(k): v for k, v in raw.items()}
    kind = detect_kind(list(stripped), kind)
    if kind == "i2v-adapter":
        return _split_adapter(raw, src, dst, overwrite)
    if len(stripped) != len(raw):
        raise CheckpointError(f"{src}: keys collide after removing module./unet. prefixes")
    save_safetensors(stripped, dst, overwrite=overwrite, metadata={"format": kind, "source": src.name})
    return ConversionSummary(kind, len(stripped), sum(v.numel() for v in stripped.values()), dst)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m i2v_adapter.checkpoints.convert",
        description="Convert a released .pth/.ckpt/.bin checkpoint to safetensors (read with weights_only=True).",
    )
    p.add_argument("src", type=Path, help="input checkpoint (e.g. i2v_module.pth, mm_sd_v15.ckpt)")
    p.add_argument("dst", type=Path, help="output .safetensors")
    p.add_argument("--kind", choices=("auto", *KINDS), default="auto", help="checkpoint kind (default: from the keys)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run(lambda: print(convert_checkpoint(args.src, args.dst, kind=args.kind, overwrite=args.overwrite).line()))


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
