"""The UNet stage split into chunks: contiguous runs of its blocks, each exported as its own model.

Why: a full-size adapted UNet (1.30 B parameters, 5.2 GB of fp32 weights) does not fit one TFLite
flatbuffer (2 GB), and tracing it whole for ONNX took more than the 24 GB of the build machine. Apple's
ml-stable-diffusion splits its UNet for the same reasons (`--chunk-unet`); phones also load chunks one
at a time. Chunking changes nothing numerically: the chunks run the UNet's own blocks in its order.

The UNet is cut only between *units*, in execution order:

    prelude (time embedding, text/image states per frame, conv_in) | down_blocks.i | mid_block |
    up_blocks.i | postlude (norm, act, conv_out, back to (2B, C, F, h, w))

Tensors that cross a cut are named; a chunk takes the names it reads and returns the names later
chunks read (`hidden` is the running activation; `res_k` the k-th skip connection):

    hidden (2B*F, C, h', w'), emb (2B*F, E), states (2B*F, 77, D), image_states (2B*F, T, D),
    res_0 .. res_K (2B*F, C, h', w')

A runtime executes the chunks in order over one dictionary of named tensors, starting from the
stage inputs and ending with `noise_pred` (`runtime_py.runners` does exactly that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from i2v_adapter.model.adapter import FirstFrameAttnProcessor
from i2v_core.stages import TIMESTEP, TIMESTEP_EMBEDDING, StageSpec, TensorSpec

PRELUDE, MID, POSTLUDE = "prelude", "mid_block", "postlude"
STAGE_OUTPUT = "noise_pred"
# Automatic chunking keeps each chunk under 1.8 GB of weights: below the 2 GB flatbuffer limit with room
# for the graph, and small enough that tracing one chunk fits a 24 GB machine beside the whole model.
CHUNK_LIMIT_BYTES = 1_800_000_000


@dataclass(frozen=True)
class Unit:
    """One cut-free piece of the UNet: what it reads and what it writes, by tensor name."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def _cond_names(block: nn.Module, image: bool) -> tuple[str, ...]:
    if not getattr(block, "has_cross_attention", False):
        return ()
    return ("states", "image_states") if image else ("states",)


def unet_units(unet: nn.Module, *, image: bool = False, timestep: str = TIMESTEP) -> list[Unit]:
    """The units of a diffusers `UNetMotionModel`, in execution order, with their reads and writes.

    The running activation written by unit `i` is `hidden_<i>`: every name is written once, so a chunk's
    inputs and outputs never share a name (ONNX requires unique value names). `timestep` is the stage's
    timestep input: `timestep`, or `timestep_embedding` under an NPU profile."""
    stage_in = ("sample", timestep, "encoder_hidden_states") + (("image_embeds",) if image else ())
    first_writes = ("hidden_0", "emb", "states") + (("image_states",) if image else ()) + ("res_0",)
    units = [Unit(PRELUDE, stage_in, first_writes)]
    n_res = 1

    def add(name: str, block: nn.Module | None, res_in: tuple[str, ...] = (), res_out: tuple[str, ...] = ()) -> None:
        i = len(units)
        cond = _cond_names(block, image) if block is not None else ()
        reads = (f"hidden_{i - 1}", "emb", *cond, *res_in) if block is not None else (f"hidden_{i - 1}",)
        writes = (f"hidden_{i}", *res_out) if block is not None else (STAGE_OUTPUT,)
        units.append(Unit(name, reads, writes))

    for i, block in enumerate(unet.down_blocks):
        k = len(block.resnets) + (1 if block.downsamplers is not None else 0)
        add(f"down_blocks.{i}", block, res_out=tuple(f"res_{j}" for j in range(n_res, n_res + k)))
        n_res += k
    if unet.mid_block is not None:
        add(MID, unet.mid_block)
    for i, block in enumerate(unet.up_blocks):
        k = len(block.resnets)
        add(f"up_blocks.{i}", block, res_in=tuple(f"res_{j}" for j in range(n_res - k, n_res)))
        n_res -= k
    add(POSTLUDE, None)
    return units


def unit_parameter_bytes(unet: nn.Module, units: list[Unit], bytes_per_param: int = 4) -> list[int]:
    """Weight bytes per unit (prelude: time embedding, conv_in, encoder_hid_proj; postlude: the rest)."""
    sizes = {u.name: 0 for u in units}
    for name, p in unet.named_parameters():
        head = name.split(".")[0]
        if head in ("down_blocks", "up_blocks"):
            key = ".".join(name.split(".")[:2])
        elif head == "mid_block":
            key = MID
        elif head in ("conv_norm_out", "conv_out"):
            key = POSTLUDE
        else:
            key = PRELUDE
        sizes[key] += p.numel() * bytes_per_param
    return [sizes[u.name] for u in units]


def plan_chunks(unit_bytes: list[int], num_chunks: int) -> list[tuple[int, int]]:
    """Split units into `num_chunks` contiguous `[start, stop)` runs with the smallest largest run.

    Exact (binary search on the largest run's bytes, greedy fill). Raises `ValueError` if there are
    fewer units than chunks.
    """
    n = len(unit_bytes)
    if not 1 <= num_chunks <= n:
        raise ValueError(f"expected between 1 and {n} UNet chunks (one per block at most), got {num_chunks}")

    def greedy(limit: int) -> list[tuple[int, int]] | None:
        runs, start, total = [], 0, 0
        for i, b in enumerate(unit_bytes):
            if b > limit:
                return None
            if total + b > limit:
                runs.append((start, i))
                start, total = i, 0
            total += b
        runs.append((start, n))
        return runs if len(runs) <= num_chunks else None

    lo, hi = max(unit_bytes), sum(unit_bytes)
    while lo < hi:
        mid = (lo + hi) // 2
        if greedy(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    runs = greedy(lo)
    while len(runs) < num_chunks:  # split the largest multi-unit run so the count is what was asked
        i = max((j for j, (a, b) in enumerate(runs) if b - a > 1), key=lambda j: sum(unit_bytes[slice(*runs[j])]))
        a, b = runs[i]
        runs[i : i + 1] = [(a, b - 1), (b - 1, b)]
    return runs


def chunks_needed(unit_bytes: list[int], limit_bytes: int) -> int:
    """The fewest chunks whose weights each stay under `limit_bytes`; `ValueError` if a unit alone passes it."""
    biggest = max(unit_bytes)
    if biggest >= limit_bytes:
        raise ValueError(
            f"one UNet block has {biggest / 1e9:.2f} GB of weights, more than the {limit_bytes / 1e9:.2f} GB a chunk "
            "may hold: use smaller weights (fp16 or int8) for this target"
        )
    for n in range(max(1, math.ceil(sum(unit_bytes) / limit_bytes)), len(unit_bytes) + 1):
        runs = plan_chunks(unit_bytes, n)
        if all(sum(unit_bytes[a:b]) < limit_bytes for a, b in runs):
            return n
    return len(unit_bytes)


def unit_modules(unet: nn.Module, unit: Unit) -> nn.Module:
    """The modules a unit runs: a block, or for the prelude / postlude a `ModuleDict` of the loose layers."""
    if unit.name == PRELUDE:
        names = ["time_proj", "time_embedding", "conv_in"]
        if "image_embeds" in unit.reads:
            names.append("encoder_hid_proj")
        return nn.ModuleDict({n: getattr(unet, n) for n in names})
    if unit.name == POSTLUDE:
        parts = {"conv_out": unet.conv_out}
        if unet.conv_norm_out is not None:
            parts.update(conv_norm_out=unet.conv_norm_out, conv_act=unet.conv_act)
        return nn.ModuleDict(parts)
    return unet.get_submodule(unit.name)


class UNetChunk(nn.Module):
    """Units `[start, stop)` of an adapted `UNetMotionModel` as one module with named tensor IO.

    Holds only its own units' modules, so `parameters()` are the chunk's weights. `forward(*inputs)`
    takes `input_names` in order (or by keyword) and returns `output_names` in order.
    """

    def __init__(self, unet: nn.Module, units: list[Unit], start: int, stop: int, num_frames: int):
        super().__init__()
        self.units = units[start:stop]
        self.parts = nn.ModuleList(unit_modules(unet, u) for u in self.units)
        self.num_frames = num_frames
        written: set[str] = set()
        inputs: list[str] = []
        for u in self.units:
            inputs += [r for r in u.reads if r not in written and r not in inputs]
            written.update(u.writes)
        later_reads = {r for u in units[stop:] for r in u.reads}
        wanted = later_reads | ({STAGE_OUTPUT} if stop == len(units) else set())
        self.input_names = inputs
        self.output_names = list(dict.fromkeys(w for u in self.units for w in u.writes if w in wanted))

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor):
        env = dict(zip(self.input_names, args))
        env.update(kwargs)
        for module in self.modules():
            if isinstance(module, FirstFrameAttnProcessor):
                module.frames.num_frames = self.num_frames  # the UNet's pre-hook does this on a whole call
        for unit, part in zip(self.units, self.parts):
            run_unit(unit, part, env, self.num_frames)
        return tuple(env[n] for n in self.output_names)


def _conditioning(env: dict, unit: Unit) -> dict:
    """`encoder_hidden_states=` for a block that reads the text (and image) states, else nothing."""
    if "states" not in unit.reads:
        return {}
    if "image_states" in unit.reads:
        return {"encoder_hidden_states": (env["states"], [env["image_states"]])}
    return {"encoder_hidden_states": env["states"]}


def _time_proj(parts: nn.ModuleDict, env: dict, batch: int) -> torch.Tensor:
    """`(2B, C0)`: the sinusoidal timestep embedding, given (`timestep_embedding`) or computed."""
    if TIMESTEP_EMBEDDING in env:
        return torch.cat([env[TIMESTEP_EMBEDDING]] * batch)  # (1, C0) -> (2B, C0), no BROADCAST_TO
    time_proj = parts["time_proj"]
    time_proj = getattr(time_proj, "original", time_proj)  # a GivenTimeProj's own Timesteps
    return time_proj(env[TIMESTEP].expand(batch))


def _prelude(parts: nn.ModuleDict, env: dict, f: int) -> None:
    sample = env["sample"]  # (2B, C, F, h, w)
    emb = parts["time_embedding"](_time_proj(parts, env, sample.shape[0]).to(dtype=parts["conv_in"].weight.dtype))
    env["emb"] = emb.repeat_interleave(f, dim=0)  # (2B, E) -> (2B*F, E)
    env["states"] = env["encoder_hidden_states"].repeat_interleave(f, dim=0)  # (2B, 77, D) -> (2B*F, 77, D)
    if "image_embeds" in env:
        image = parts["encoder_hid_proj"]([env["image_embeds"].unsqueeze(1)])[0]  # (2B, T', Dv) -> (2B, 1, T, D)
        env["image_states"] = image.repeat_interleave(f, dim=0)  # -> (2B*F, 1, T, D)
    x = sample.permute(0, 2, 1, 3, 4).reshape((sample.shape[0] * f, -1) + sample.shape[3:])  # -> (2B*F, C, h, w)
    env["hidden_0"] = env["res_0"] = parts["conv_in"](x)


def _postlude(parts: nn.ModuleDict, x: torch.Tensor, env: dict, f: int) -> None:
    if "conv_norm_out" in parts:
        x = parts["conv_act"](parts["conv_norm_out"](x))
    x = parts["conv_out"](x)  # (2B*F, C, h, w)
    env[STAGE_OUTPUT] = x[None].reshape((-1, f) + x.shape[1:]).permute(0, 2, 1, 3, 4)  # -> (2B, C, F, h, w)


def run_unit(unit: Unit, module: nn.Module, env: dict, f: int) -> None:
    """Run one unit (its modules from `unit_modules`) on the named tensors in `env`, writing back into it."""
    name = unit.name
    if name == PRELUDE:
        return _prelude(module, env, f)
    x, out = env[unit.reads[0]], unit.writes[0]  # hidden_<i-1> in, hidden_<i> out
    if name == POSTLUDE:
        return _postlude(module, x, env, f)
    cond = _conditioning(env, unit)
    if name == MID:
        frames = {"num_frames": f} if hasattr(module, "motion_modules") else {}
        env[out] = module(x, env["emb"], **cond, **frames)
    elif name.startswith("down_blocks."):
        env[out], res = module(hidden_states=x, temb=env["emb"], num_frames=f, **cond)
        env.update(zip(unit.writes[1:], res))
    elif name.startswith("up_blocks."):
        res = tuple(env[r] for r in unit.reads if r.startswith("res_"))
        env[out] = module(hidden_states=x, temb=env["emb"], res_hidden_states_tuple=res, num_frames=f, **cond)
    else:
        raise ValueError(f"unknown UNet unit {name!r}")


def check_chunkable(unet: nn.Module, latent_hw: tuple[int, int]) -> None:
    """Chunks run the blocks with their default upsampling: latents must divide by 2^(upsamplers)."""
    factor = 2 ** sum(1 for b in unet.up_blocks if getattr(b, "upsamplers", None) is not None)
    if any(s % factor for s in latent_hw):
        raise ValueError(f"UNet chunking needs latent height and width divisible by {factor}, got {latent_hw}")


def build_chunks(unet_stage: nn.Module, spec: StageSpec, num_chunks: int, unit_bytes: list[int] | None = None) -> list[UNetChunk]:
    """`num_chunks` chunk modules over the UNet inside `unet_stage` (an `i2v_adapter.model.stage_modules.UNetStage`)."""
    unet = unet_stage.unet
    sample = spec.inputs[0]
    _, _, f, h, w = sample.shape  # (2B, C, F, h, w)
    check_chunkable(unet, (h, w))
    image = "image_embeds" in spec.input_names
    timestep = TIMESTEP_EMBEDDING if TIMESTEP_EMBEDDING in spec.input_names else TIMESTEP
    units = unet_units(unet, image=image, timestep=timestep)
    runs = plan_chunks(unit_bytes or unit_parameter_bytes(unet, units), num_chunks)
    return [UNetChunk(unet, units, a, b, f).eval() for a, b in runs]


@torch.no_grad()
def run_chunks(chunks: list[UNetChunk], feeds: dict[str, torch.Tensor]) -> list[tuple[dict, dict]]:
    """Run the chunks in order from the stage inputs; each chunk's `(inputs, outputs)` by name."""
    env, io = dict(feeds), []
    for chunk in chunks:
        inputs = {n: env[n] for n in chunk.input_names}
        outputs = dict(zip(chunk.output_names, chunk(*inputs.values())))
        env.update(outputs)
        io.append((inputs, outputs))
    return io


def chunk_spec(stage: str, index: int, inputs: dict, outputs: dict) -> StageSpec:
    """A chunk's IO as a `StageSpec` named `<stage>.chunk<i>`, shapes from a reference run's tensors."""

    def tensors(named: dict) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(n, tuple(v.shape), str(v.dtype).replace("torch.", "")) for n, v in named.items())

    return StageSpec(f"{stage}.chunk{index}", tensors(inputs), tensors(outputs))
