"""Chunked attention (`--attention-chunk-mb`): same numbers as one attention call, fewer bytes of
scores at once, and an exported tiny UNet with it that passes the parity gate."""

from contextlib import nullcontext

import onnx
import pytest
import torch
import torch.nn.functional as F

from export.exporter import ExportOptions, export_bundle
from export.graph_options import chunked_attention, matmul_attention, query_chunks


def _qkv(lq=40, lk=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, lq, 8, generator=gen)  # (B, heads, Lq, D)
    k, v = (torch.randn(2, 3, lk, 8, generator=gen) for _ in range(2))
    return q, k, v


def test_chunk_count_follows_the_budget():
    q, k, _ = _qkv()
    scores = 2 * 3 * 40 * 24 * 4  # bytes of the whole (B, heads, Lq, Lk) fp32 score matrix
    assert query_chunks(q, k, scores) == 1
    assert query_chunks(q, k, scores // 4) == 4
    assert query_chunks(q, k, 1) == 40  # never more chunks than queries


@pytest.mark.parametrize("mask", [None, "per-query", "broadcast"])
@pytest.mark.parametrize("explicit", [False, True])
def test_chunked_attention_matches_one_call(mask, explicit):
    q, k, v = _qkv()
    kwargs = {}
    if mask == "per-query":
        kwargs["attn_mask"] = torch.randn(40, 24)  # additive, one row per query: cut with the queries
    elif mask == "broadcast":
        kwargs["attn_mask"] = torch.randn(1, 24)  # one row for every query
    ref = F.scaled_dot_product_attention(q, k, v, **kwargs)
    calls = []
    with matmul_attention() if explicit else nullcontext():
        inner = F.scaled_dot_product_attention

        def counting(*args, **kw):
            calls.append(args[0].shape[-2])
            return inner(*args, **kw)

        F.scaled_dot_product_attention = counting
        try:
            budget_mb = 2 * 3 * 40 * 24 * 4 / 3 / 2**20  # a third of the scores: 3 chunks
            with chunked_attention(budget_mb):
                out = F.scaled_dot_product_attention(q, k, v, **kwargs)
        finally:
            F.scaled_dot_product_attention = inner
    assert F.scaled_dot_product_attention is torch.nn.functional.scaled_dot_product_attention
    assert calls == [14, 14, 12]
    assert torch.allclose(out, ref, atol=1e-6)


def test_causal_attention_is_not_split():
    q, k, v = _qkv(lq=24)
    with chunked_attention(1e-4), pytest.raises(ValueError, match="does not split causal attention"):
        F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with pytest.raises(ValueError, match="positive attention chunk budget"):
        with chunked_attention(0):
            pass


@pytest.mark.slow
def test_exported_unet_with_chunked_attention_passes_the_gate(tiny_bundle, tmp_path):
    plain, chunked = tiny_bundle, tmp_path / "chunked"
    # tiny UNet: 256 latent tokens, so 2B*F x heads x 256 x 256 scores; 0.5 MB cuts each attention
    manifest = export_bundle(ExportOptions(out=chunked, targets=("onnx",), stages=("unet",), attention_chunk_mb=0.5))
    assert manifest["graph_options"]["attention_chunk_mb"] == 0.5
    parity = manifest["stages"]["unet"]["targets"]["onnx"]["parity"]
    assert parity["psnr_db"] >= 100.0 and parity["guidance_correlation"] >= 0.999

    def softmaxes(bundle):
        return sum(n.op_type == "Softmax" for n in onnx.load(bundle / "unet.onnx").graph.node)

    assert softmaxes(chunked) > 2 * softmaxes(plain)

