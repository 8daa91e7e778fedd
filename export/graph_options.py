"""NPU-friendly graph rewrites applied before export, each behind a flag of `export.build`.

- `decompose_groupnorm(module)`: every `torch.nn.GroupNorm` becomes mean / variance reductions over
  reshaped groups. GroupNorm (in ONNX below opset 18: Reshape + InstanceNormalization) is the op that
  keeps Stable Diffusion off many NNAPI / GPU / NPU delegates; plain reductions, subtraction, rsqrt
  and multiplication are supported everywhere.
- `matmul_attention()`: while active, `torch.nn.functional.scaled_dot_product_attention` is an
  explicit `softmax(Q K^T * scale) V` with batched matmuls. That covers every attention of the stages:
  the I2V processor's (`i2v_adapter.model.attention.attend` calls it), diffusers' processors for
  cross-attention, motion modules and the VAE, and transformers' CLIP. Use it where a converter would
  keep a fused attention op the target delegate cannot run.
- `chunked_attention(max_scores_mb)`: while active, an attention whose score matrix
  `(..., Lq, Lk)` would exceed `max_scores_mb` is computed over query chunks whose scores fit, and
  the chunks' outputs are concatenated (queries are independent, so the result is the same). Every
  converter here lowers attention to MatMul + Softmax, so an exported SD1.5 UNet at 512x512 holds one
  `(2B*F*heads, 4096, 4096)` score tensor, 17 GB in fp32, per spatial attention: more than a phone or
  this 24 GB machine has. Chunked, the runtime's planner reuses one chunk's buffers for the next.

- `repeat_interleave_as_concat()`: while active, `repeat_interleave` with an integer count along a
  dimension is a concatenation of the tensor with itself plus a reshape. Converters lower
  `repeat_interleave` to BROADCAST_TO, which the MediaTek NPU does not take; the UNet repeats its text
  states and time embedding per frame that way.
- `OneHotTextEncoder(text_encoder_stage)`: the CLIP text encoder with the token lookup as a one-hot
  matmul and the causal mask a constant, so EMBEDDING_LOOKUP (gather) and SELECT_V2 leave the graph;
  same inputs, outputs and weights.

Each keeps the weights (the decomposed GroupNorm shares the original's parameters); parity against the
unmodified PyTorch model is measured for them like for the default graph. `--npu mediatek` applies the
GroupNorm decomposition and the last two (and the stage contract's timestep-embedding input,
`i2v_core.stages`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class DecomposedGroupNorm(nn.Module):
    """GroupNorm as plain reductions: `(N, C, *S)` in, same shape out, same parameters."""

    def __init__(self, norm: nn.GroupNorm):
        super().__init__()
        self.num_groups = norm.num_groups
        self.num_channels = norm.num_channels
        self.eps = norm.eps
        self.weight = norm.weight  # shared Parameters (None without affine)
        self.bias = norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        groups = x.reshape(batch, self.num_groups, -1)  # (N, C, *S) -> (N, G, C/G * prod(S))
        mean = groups.mean(dim=-1, keepdim=True)  # (N, G, 1)
        centered = groups - mean
        var = (centered * centered).mean(dim=-1, keepdim=True)  # biased, as GroupNorm
        y = (centered * torch.rsqrt(var + self.eps)).reshape(x.shape)  # (N, G, C/G * prod(S)) -> (N, C, *S)
        if self.weight is None:
            return y
        affine = (1, channels) + (1,) * (x.dim() - 2)
        return y * self.weight.reshape(affine) + self.bias.reshape(affine)


def decompose_groupnorm(module: nn.Module) -> int:
    """Replace every `nn.GroupNorm` under `module` in place; return how many were replaced."""
    targets = [name for name, m in module.named_modules() if isinstance(m, nn.GroupNorm) and name]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, child, DecomposedGroupNorm(getattr(parent, child)))
    return len(targets)


def sdpa_as_matmul(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """`scaled_dot_product_attention` as two batched matmuls and a softmax (inference only).

    `query (..., Lq, D)`, `key (..., Lk, D)`, `value (..., Lk, Dv)` -> `(..., Lq, Dv)`. Masked scores
    get the dtype's lowest finite value rather than -inf, which NPUs handle without NaNs.
    """
    if dropout_p != 0.0 or enable_gqa:
        raise ValueError(f"matmul attention is for inference: expected dropout_p=0 and no GQA, got {dropout_p}, {enable_gqa}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query * scale) @ key.transpose(-2, -1)  # (..., Lq, D) x (..., D, Lk) -> (..., Lq, Lk)
    lowest = torch.finfo(scores.dtype).min
    if is_causal:
        lq, lk = scores.shape[-2:]
        keep = torch.ones(lq, lk, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, lowest)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, lowest)
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1) @ value  # (..., Lq, Lk) x (..., Lk, Dv) -> (..., Lq, Dv)


def query_chunks(query: torch.Tensor, key: torch.Tensor, max_scores_bytes: int) -> int:
    """How many query chunks keep each chunk's score matrix `(..., Lq/n, Lk)` within `max_scores_bytes`."""
    lq, lk = query.shape[-2], key.shape[-2]
    batch = math.prod(query.shape[:-2])
    total = batch * lq * lk * query.element_size()
    return min(lq, max(1, math.ceil(total / max_scores_bytes)))


@contextmanager
def chunked_attention(max_scores_mb: float) -> Iterator[None]:
    """Within the block, attentions over `max_scores_mb` of scores run in query chunks (see module doc).

    Wraps whatever `F.scaled_dot_product_attention` is when the block starts, so inside
    `matmul_attention()` the chunks are explicit matmuls too.
    """
    if not max_scores_mb > 0:
        raise ValueError(f"expected a positive attention chunk budget in MB, got {max_scores_mb!r}")
    inner = F.scaled_dot_product_attention
    budget = int(max_scores_mb * 2**20)

    def chunked(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        n = query_chunks(query, key, budget)
        if n == 1:
            return inner(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)
        if is_causal:
            raise ValueError("chunked attention does not split causal attention (its mask depends on the query offset)")
        size = math.ceil(query.shape[-2] / n)
        outputs = []
        for start in range(0, query.shape[-2], size):
            mask = attn_mask
            if mask is not None and mask.dim() >= 2 and mask.shape[-2] == query.shape[-2] > 1:
                mask = mask[..., start : start + size, :]  # a mask per query row is cut like the queries
            q = query[..., start : start + size, :]  # (..., Lq, D) -> (..., <= size, D)
            outputs.append(inner(q, key, value, mask, dropout_p, False, scale=scale, enable_gqa=enable_gqa))
        return torch.cat(outputs, dim=-2)  # n x (..., <= size, Dv) -> (..., Lq, Dv)

    F.scaled_dot_product_attention = chunked
    try:
        yield
    finally:
        F.scaled_dot_product_attention = inner


@contextmanager
def matmul_attention() -> Iterator[None]:
    """Within the block, `F.scaled_dot_product_attention` is `sdpa_as_matmul` (for tracing/export)."""
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = sdpa_as_matmul
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def _repeat_as_concat(x: torch.Tensor, repeats: int, dim: int) -> torch.Tensor:
    """`x.repeat_interleave(repeats, dim)` as a concatenation: `(..., n, ...) -> (..., n * repeats, ...)`."""
    dim = dim % x.dim()
    copies = torch.cat([x.unsqueeze(dim + 1)] * repeats, dim=dim + 1)  # (..., n, ...) -> (..., n, r, ...)
    return copies.flatten(dim, dim + 1)  # (..., n, r, ...) -> (..., n * r, ...)


@contextmanager
def repeat_interleave_as_concat() -> Iterator[None]:
    """Within the block, `torch.repeat_interleave` and `Tensor.repeat_interleave` with an integer
    `repeats` and a `dim` are `_repeat_as_concat` (the same values); other calls are unchanged."""
    method_owned = "repeat_interleave" in torch.Tensor.__dict__
    method, function = torch.Tensor.repeat_interleave, torch.repeat_interleave

    def wrap(original):
        def repeat_interleave(x, repeats, dim=None, *, output_size=None):
            if isinstance(repeats, int) and dim is not None:
                return _repeat_as_concat(x, repeats, dim)
            return original(x, repeats, dim, output_size=output_size)

        return repeat_interleave

    torch.Tensor.repeat_interleave = wrap(method)
    torch.repeat_interleave = wrap(function)
    try:
        yield
    finally:
        torch.repeat_interleave = function
        if method_owned:
            torch.Tensor.repeat_interleave = method
        else:
            del torch.Tensor.repeat_interleave


class OneHotTextEncoder(nn.Module):
    """`input_ids (B, 77) int32` -> `last_hidden_state (B, 77, D)`, as `TextEncoderStage`, with only ops
    the MediaTek NPU takes.

    The token lookup is `one_hot(ids) @ W`, the one-hot built as `relu(1 - |id - v|)` (CAST, SUB, ABS,
    RELU: exactly 1 at the token and 0 elsewhere, so the product is the looked-up row exactly); the
    causal mask is a constant added to the scores. Weights are the wrapped encoder's own.
    """

    def __init__(self, stage: nn.Module):
        super().__init__()
        model = getattr(stage.text_encoder, "text_model", stage.text_encoder)  # transformers 4.x nests it
        self.embeddings, self.encoder, self.final_layer_norm = model.embeddings, model.encoder, model.final_layer_norm
        vocab, length = self.embeddings.token_embedding.num_embeddings, self.embeddings.position_embedding.num_embeddings
        self.register_buffer("vocab_ids", torch.arange(vocab, dtype=torch.float32), persistent=False)
        lowest = torch.finfo(torch.float32).min  # finite: no inf - inf on NPUs
        mask = torch.full((length, length), lowest).triu(1)[None, None]  # (1, 1, L, L): 0 on and below the diagonal
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[-1]
        ids = input_ids.to(torch.float32).unsqueeze(-1)  # (B, N) -> (B, N, 1)
        one_hot = torch.relu(1.0 - (ids - self.vocab_ids).abs())  # (B, N, 1) - (V,) -> (B, N, V)
        tokens = one_hot @ self.embeddings.token_embedding.weight  # (B, N, V) x (V, D) -> (B, N, D)
        hidden = tokens + self.embeddings.position_embedding.weight[:n]  # + (N, D)
        hidden = self.encoder(inputs_embeds=hidden, attention_mask=self.causal_mask[..., :n, :n])[0]
        return self.final_layer_norm(hidden)
