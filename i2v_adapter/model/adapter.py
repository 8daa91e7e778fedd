"""The I2V-Adapter as a diffusers attention processor that owns its weights.

`install_i2v_adapter(unet)` puts a `FirstFrameAttnProcessor` on every spatial self-attention (`attn1`)
of the down, mid and up transformer blocks (not the motion modules, not cross-attention). Each owns

- `to_q_ff`: W_Q', `(C, C)`, no bias, initialised as a copy of the layer's `to_q`;
- `to_out_ff`: W_O', `(C, C)` weight and `(C,)` bias, initialised to zero,

so an installed, untrained adapter leaves the text-to-video model exactly as it was. The adapter's
state dict uses the official key layout (`<layer>.to_q_ff.weight`, `<layer>.to_out_ff.weight`,
`<layer>.to_out_ff.bias`); installing, removing, saving and loading are one call each.
"""

from __future__ import annotations

import logging

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from i2v_adapter.model.attention import VARIANTS
from i2v_core.config import AttentionVariant
from i2v_core.errors import CheckpointError, preview_names

logger = logging.getLogger(__name__)

ADAPTER_PARAM_NAMES = ("to_q_ff.weight", "to_out_ff.weight", "to_out_ff.bias")
_HOOK_ATTR = "_i2v_frames_hook"


class FrameCount:
    """The number of frames folded into the batch, shared by all processors of one UNet.

    Set from `sample.shape[2]` by a forward pre-hook on the UNet, so it is a plain Python int at trace
    time (static shapes for export) and the processors need no extra call arguments.
    """

    def __init__(self) -> None:
        self.num_frames: int | None = None


class FirstFrameAttnProcessor(nn.Module):
    """Spatial self-attention plus the I2V-Adapter's first-frame branch.

    Args:
        hidden_size: `C`, the attention's channel count.
        frames: the UNet's shared `FrameCount`.
        variant: `naive` (as the paper writes it) or `fused` (one Q matmul, sliced K/V; export).
    """

    def __init__(self, hidden_size: int, frames: FrameCount, variant: AttentionVariant = AttentionVariant.FUSED):
        super().__init__()
        self.to_q_ff = nn.Linear(hidden_size, hidden_size, bias=False)
        self.to_out_ff = nn.Linear(hidden_size, hidden_size, bias=True)
        nn.init.zeros_(self.to_out_ff.weight)
        nn.init.zeros_(self.to_out_ff.bias)
        self.frames = frames
        self.variant = AttentionVariant(variant)

    def forward(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("FirstFrameAttnProcessor is for self-attention without a mask (attn1)")
        num_frames = self.frames.num_frames
        if num_frames is None or hidden_states.shape[0] % num_frames != 0:
            raise ValueError(
                f"first-frame attention needs the batch folded as (B*F, N, C) with F={num_frames} frames, "
                f"got hidden states of shape {tuple(hidden_states.shape)}"
            )
        main, branch = VARIANTS[self.variant](attn, self.to_q_ff, hidden_states, num_frames)
        out = attn.to_out[1](attn.to_out[0](main))
        if attn.residual_connection:
            out = out + hidden_states
        out = out / attn.rescale_output_factor
        return out + self.to_out_ff(branch)


def spatial_self_attentions(unet: nn.Module) -> dict[str, Attention]:
    """The `attn1` layers of the spatial transformer blocks, by module path, in model order."""
    layers = {}
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and name.endswith(".attn1") and ".attentions." in name:
            if "motion_modules" not in name:
                layers[name] = module
    return layers


def _check_supported(name: str, attn: Attention) -> None:
    unsupported = [
        flag
        for flag, present in (
            ("group_norm", attn.group_norm is not None),
            ("spatial_norm", attn.spatial_norm is not None),
            ("norm_q", getattr(attn, "norm_q", None) is not None),
            ("cross-attention", attn.is_cross_attention),
        )
        if present
    ]
    if unsupported:
        raise ValueError(f"cannot install the I2V-Adapter on {name}: unsupported attention features {unsupported}")


def _frames_pre_hook(frames: FrameCount):
    def hook(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        frames.num_frames = int(sample.shape[2])  # (B, C, F, H, W)

    return hook


def is_installed(unet: nn.Module) -> bool:
    return hasattr(unet, _HOOK_ATTR)


def install_i2v_adapter(
    unet: nn.Module,
    variant: AttentionVariant = AttentionVariant.FUSED,
    *,
    out_init_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Install the adapter on every spatial `attn1` of `unet` (a diffusers `UNetMotionModel`).

    W_Q' copies each layer's `to_q`; W_O' is zero (the paper's initialisation) unless `out_init_std`
    is set, which draws it from `N(0, out_init_std^2)` with `generator` (deterministic tiny weights).
    Returns the layer names. Raises `ValueError` if already installed.
    """
    if is_installed(unet):
        raise ValueError("the I2V-Adapter is already installed on this UNet; use set_attention_variant()")
    layers = spatial_self_attentions(unet)
    if not layers:
        raise ValueError(f"no spatial self-attention (attn1) found in {type(unet).__name__}")
    frames = FrameCount()
    param = next(unet.parameters())
    for name, attn in layers.items():
        _check_supported(name, attn)
        proc = FirstFrameAttnProcessor(attn.to_q.in_features, frames, variant)
        proc.to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            proc.to_q_ff.weight.copy_(attn.to_q.weight)
            if out_init_std > 0:
                shape = proc.to_out_ff.weight.shape
                noise = torch.randn(shape, generator=generator, dtype=torch.float32) * out_init_std
                proc.to_out_ff.weight.copy_(noise.to(proc.to_out_ff.weight))
        attn.set_processor(proc)
    handle = unet.register_forward_pre_hook(_frames_pre_hook(frames), with_kwargs=True)
    setattr(unet, _HOOK_ATTR, handle)
    return list(layers)


def remove_i2v_adapter(unet: nn.Module) -> None:
    """Put back diffusers' default processor on every adapted layer: the base T2V model again."""
    if not is_installed(unet):
        raise ValueError("the I2V-Adapter is not installed on this UNet")
    for attn in spatial_self_attentions(unet).values():
        if isinstance(attn.processor, FirstFrameAttnProcessor):
            attn.set_processor(AttnProcessor2_0())
    getattr(unet, _HOOK_ATTR).remove()
    delattr(unet, _HOOK_ATTR)


def adapter_processors(unet: nn.Module) -> dict[str, FirstFrameAttnProcessor]:
    procs = {
        name: attn.processor
        for name, attn in spatial_self_attentions(unet).items()
        if isinstance(attn.processor, FirstFrameAttnProcessor)
    }
    if not procs:
        raise ValueError("the I2V-Adapter is not installed on this UNet")
    return procs


def set_attention_variant(unet: nn.Module, variant: AttentionVariant) -> None:
    for proc in adapter_processors(unet).values():
        proc.variant = AttentionVariant(variant)


def adapter_parameters(unet: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters: W_Q' and W_O' of every adapted layer."""
    return [p for proc in adapter_processors(unet).values() for p in proc.parameters()]


def freeze_all_but_adapter(unet: nn.Module) -> int:
    """Freeze the base UNet and motion modules; returns the number of trainable parameters."""
    unet.requires_grad_(False)
    params = adapter_parameters(unet)
    for p in params:
        p.requires_grad_(True)
    return sum(p.numel() for p in params)


def i2v_adapter_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter alone, in the official key layout (`<layer>.to_q_ff.weight`, ...)."""
    return {
        f"{name}.{key}": value.detach().clone()
        for name, proc in adapter_processors(unet).items()
        for key, value in proc.state_dict().items()
    }


def normalize_adapter_key(key: str) -> str:
    """Map the key layouts met in the wild onto ours.

    Strips a training wrapper's `module.` and a pipeline's `unet.` prefix, and diffusers'
    `.processor.` infix (the key a processor's parameter has inside a full UNet state dict).
    """
    for prefix in ("module.", "unet."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key.replace(".processor.", ".")


def load_i2v_adapter_state_dict(unet: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load adapter weights; missing keys, unexpected keys and shape mismatches raise by name."""
    procs = adapter_processors(unet)
    expected = {f"{name}.{k}": v for name, proc in procs.items() for k, v in proc.state_dict().items()}
    given = {normalize_adapter_key(k): v for k, v in state_dict.items()}
    check_state_dict(given, {k: tuple(v.shape) for k, v in expected.items()}, what="I2V-Adapter")
    with torch.no_grad():
        for key, value in given.items():
            expected[key].copy_(value.to(expected[key]))


def check_state_dict(given: dict[str, torch.Tensor], expected_shapes: dict[str, tuple], *, what: str) -> None:
    """Raise `CheckpointError` listing missing and unexpected keys and shape mismatches by name."""
    missing = sorted(set(expected_shapes) - set(given))
    unexpected = sorted(set(given) - set(expected_shapes))
    mismatched = [
        f"{k}: expected {expected_shapes[k]}, found {tuple(given[k].shape)}"
        for k in sorted(set(given) & set(expected_shapes))
        if tuple(given[k].shape) != tuple(expected_shapes[k])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {preview_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {preview_names(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {preview_names(mismatched)}")
    if problems:
        raise CheckpointError(f"{what} checkpoint does not match the model: " + "; ".join(problems))
