"""The I2V-Adapter's first-frame attention, as plain functions chosen by `AttentionVariant`.

Beside every spatial self-attention (`attn1`) each frame's tokens also attend to the first frame's
keys and values, through a new query projection W_Q' (`to_q_ff`):

    out = Attn(Q_i, K_i, V_i) W_O + Attn(X_i W_Q', K_1, V_1) W_O'

Both variants return the two attention contexts *before* the output projections, each `(B*F, N, C)`,
so the processor applies W_O and W_O' the same way for both.

Letters: B videos, F frames (folded into the batch as `B*F`), N tokens per frame, C channels,
h heads, D = C / h.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2v_core.config import AttentionVariant


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """`(B', L, C)` -> `(B', h, L, D)`."""
    batch, length, channels = x.shape
    return x.view(batch, length, heads, channels // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """`(B', h, L, D)` -> `(B', L, h*D)`."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head softmax attention on `(B', Lq, C)` queries and `(B', Lk, C)` keys and values.

    The same call as diffusers' `AttnProcessor2_0`, so the adapted model's main path is bit-identical
    to the base model's.
    """
    out = F.scaled_dot_product_attention(
        split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), dropout_p=0.0, is_causal=False
    )
    return merge_heads(out).to(q.dtype)


def first_frame_naive(attn: nn.Module, to_q_ff: nn.Linear, x: torch.Tensor, num_frames: int):
    """The paper's formula as written: frame 0's keys and values from a second projection.

    Right for reading and for training (it mirrors the official code); it projects frame 0 twice and
    attends once per frame. `x`: `(B*F, N, C)`. Returns `(main, branch)`, each `(B*F, N, C)`.
    """
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    main = attend(q, k, v, attn.heads)

    x0 = x.unflatten(0, (-1, num_frames))[:, 0]  # (B*F, N, C) -> (B, N, C)
    k0 = attn.to_k(x0).repeat_interleave(num_frames, dim=0)  # (B, N, C) -> (B*F, N, C)
    v0 = attn.to_v(x0).repeat_interleave(num_frames, dim=0)
    branch = attend(to_q_ff(x), k0, v0, attn.heads)
    return main, branch


def first_frame_fused(attn: nn.Module, to_q_ff: nn.Linear, x: torch.Tensor, num_frames: int):
    """Export variant: Q and Q' in one matmul, frame-0 K/V sliced from the self-attention's own K/V.

    No second K/V projection and no per-frame copy of K_1, V_1: each video's `F*N` branch queries
    attend to its `N` first-frame tokens in one call. Right for deployment (fewer, larger matmuls,
    static shapes). `x`: `(B*F, N, C)`. Returns `(main, branch)`, each `(B*F, N, C)`.
    """
    channels = x.shape[-1]
    weight = torch.cat([attn.to_q.weight, to_q_ff.weight], dim=0)  # (2C, C)
    bias = None
    if attn.to_q.bias is not None:
        bias = torch.cat([attn.to_q.bias, torch.zeros_like(attn.to_q.bias)])
    q, q_ff = F.linear(x, weight, bias).split(channels, dim=-1)  # (B*F, N, 2C) -> 2 x (B*F, N, C)
    k, v = attn.to_k(x), attn.to_v(x)
    main = attend(q, k, v, attn.heads)

    batch_frames, tokens, _ = x.shape
    k0 = k.unflatten(0, (-1, num_frames))[:, 0]  # (B*F, N, C) -> (B, N, C)
    v0 = v.unflatten(0, (-1, num_frames))[:, 0]
    q_ff = q_ff.reshape(-1, num_frames * tokens, channels)  # (B*F, N, C) -> (B, F*N, C)
    branch = attend(q_ff, k0, v0, attn.heads)
    branch = branch.reshape(batch_frames, tokens, channels)  # (B, F*N, C) -> (B*F, N, C)
    return main, branch


VARIANTS = {
    AttentionVariant.NAIVE: first_frame_naive,
    AttentionVariant.FUSED: first_frame_fused,
}
