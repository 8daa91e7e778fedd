"""Phone estimate: count each stage's multiply-accumulates (MACs) and weight bytes, then estimate its
latency on Dimensity 9300 / 9400 class NPUs two ways.

Counting:

- `count_onnx(path)`: walk an exported ONNX graph with inferred static shapes. Conv, ConvTranspose,
  MatMul and Gemm carry the model's arithmetic (attention's QK^T and AV are MatMuls in the exported
  graph); elementwise ops, norms and softmax are ignored (they are memory work, a few percent of MACs).
  Weight bytes: every initializer.
- `count_torch(preset, stage)`: the same stage module built on the meta device (no memory), counted
  with `torch.utils.flop_counter` (MACs = FLOPs / 2). Used for presets too large to export here.

Estimating (per call, at the precision's weight size):

- roofline: `max(2 * MACs / (peak int8 ops/s x rate), weight bytes / memory bandwidth)`, with the
  w8a16 rate at half of int8 and activations kept on chip: a lower bound no real run reaches.
- anchor-scaled: `MACs / (anchor MACs / anchor ms)`: the effective MAC rate a same-generation phone
  NPU measured on SD1.5's UNet (Qualcomm AI Hub, w8a16), applied to this stage's MACs.

    python -m benchmarks.estimate --preset mobile            # counted on the meta device
    python -m benchmarks.estimate --bundle out/work/bundle-fp32 --out out/estimate
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.derive import calls_per_video
from benchmarks.socs import ANCHORS, SOCS, W8A16_RATE, WEIGHT_BYTES
from benchmarks.tables import table
from i2v_adapter.model.components import build_components, unet2d_kwargs
from i2v_adapter.model.stage_modules import stage_modules
from i2v_core import cli
from i2v_core.bundle import check_inside, load_manifest
from i2v_core.config import get_preset
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import OutputKind, check_separate
from i2v_core.stages import stage_specs

logger = logging.getLogger(__name__)

_MAC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _shape_table(model) -> dict[str, tuple[int, ...] | None]:
    shapes: dict[str, tuple[int, ...] | None] = {}
    graph = model.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        known = all(d.HasField("dim_value") for d in dims)
        shapes[info.name] = tuple(d.dim_value for d in dims) if known else None
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _node_macs(node, shapes: dict) -> int | None:
    """MACs of one Conv / ConvTranspose / MatMul / Gemm node, None if a shape is unknown."""
    ins = [shapes.get(n) for n in node.input[:2]]
    out = shapes.get(node.output[0])
    if any(s is None for s in ins) or (out is None and node.op_type != "ConvTranspose"):
        return None
    a, b = ins
    if node.op_type == "Conv":  # W (M, C/group, k...): each output element sums C/group * prod(k)
        return int(np.prod(out)) * int(np.prod(b[1:]))
    if node.op_type == "ConvTranspose":  # W (C, M/group, k...): each input element scatters to M/group * prod(k)
        return int(np.prod(a)) * int(np.prod(b[1:]))
    if node.op_type == "MatMul":  # (..., n, k) @ (..., k, m): each output element sums k products
        return int(np.prod(out)) * a[-1]
    trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
    return int(np.prod(out)) * (a[0] if trans_a else a[-1])  # Gemm: (M, K) x (K, N)


def count_onnx(path: str | Path) -> dict:
    """`{macs, weight_bytes, by_op, uncounted}` of an ONNX model with static shapes.

    `uncounted` names MAC-carrying nodes whose shapes could not be inferred (their MACs are missing).
    """
    import onnx  # deferred: onnx is heavy and only this path reads graphs

    model = onnx.load(str(path), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # data_prop: through Shape -> Reshape
    shapes = _shape_table(inferred)
    by_op = {op: 0 for op in _MAC_OPS}
    uncounted = []
    for node in inferred.graph.node:
        if node.op_type in _MAC_OPS:
            macs = _node_macs(node, shapes)
            if macs is None:
                uncounted.append(node.name or node.op_type)
            else:
                by_op[node.op_type] += macs
    weight_bytes = 0
    for init in model.graph.initializer:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        weight_bytes += int(np.prod(init.dims)) * itemsize
    return {"macs": sum(by_op.values()), "weight_bytes": weight_bytes, "by_op": by_op, "uncounted": uncounted, "source": "onnx"}


def _sum_counts(parts: list[dict]) -> dict:
    """One stage's counts from its model files (a chunked UNet has one file per chunk)."""
    if len(parts) == 1:
        return parts[0]
    by_op = {op: sum(p["by_op"][op] for p in parts) for op in _MAC_OPS}
    return {"macs": sum(by_op.values()), "weight_bytes": sum(p["weight_bytes"] for p in parts), "by_op": by_op,
            "uncounted": [u for p in parts for u in p["uncounted"]], "source": "onnx", "files": len(parts)}


def _meta_macs(module, inputs) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return counter.get_total_flops() // 2


def _stage_params(stage: str, module) -> int:
    """Parameters the stage's exported graph holds: a VAE stage module wraps the whole VAE but runs
    only its encoder (+ quant_conv) or its decoder (+ post_quant_conv)."""
    parts = {"vae_encoder": ("encoder", "quant_conv"), "vae_decoder": ("decoder", "post_quant_conv")}.get(stage)
    if parts is None:
        return sum(p.numel() for p in module.parameters())
    used = [getattr(module.vae, name) for name in parts if getattr(module.vae, name, None) is not None]
    return sum(p.numel() for m in used for p in m.parameters())


def count_torch(preset: str, stage: str) -> dict:
    """MACs and fp32 weight bytes of one stage of `preset`, built on the meta device."""

    cfg = get_preset(preset)
    spec = stage_specs(cfg)[stage]
    with torch.device("meta"):
        module = stage_modules(build_components(cfg))[stage]
        inputs = [torch.empty(t.shape, dtype=getattr(torch, t.dtype)) for t in spec.inputs]
        if stage == "text_encoder":
            inputs = [torch.zeros(spec.inputs[0].shape, dtype=torch.int32)]
    params = _stage_params(stage, module)
    return {"macs": _meta_macs(module, inputs), "weight_bytes": params * 4, "params": params, "source": "torch-meta"}


def anchor_macs() -> int:
    """MACs of one SD1.5 UNet call as the anchors run it (batch 1, 4x64x64 latent, 77 tokens)."""

    cfg = get_preset("sd15")
    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet2d_kwargs(cfg))
        inputs = (torch.empty(1, 4, 64, 64), torch.empty(1), torch.empty(1, 77, cfg.unet.cross_attention_dim))
    return _meta_macs(unet, inputs)


def estimate_stage(macs: int, params: int, precision: str = "w8a16", anchor_unet_macs: int | None = None) -> dict:
    """Per SoC: roofline and anchor-scaled ms of one call with `macs` MACs and `params` weights."""
    weight_bytes = params * WEIGHT_BYTES[precision]
    rate = W8A16_RATE if precision == "w8a16" else 1.0
    out = {}
    for key, soc in SOCS.items():
        compute_ms = 2 * macs / (soc.peak_int8_tops * 1e12 * rate) * 1e3
        memory_ms = weight_bytes / (soc.memory_gbps * 1e9) * 1e3
        entry = {"compute_ms": compute_ms, "memory_ms": memory_ms, "roofline_ms": max(compute_ms, memory_ms),
                 "bound": "compute" if compute_ms >= memory_ms else "memory"}
        if anchor_unet_macs:
            anchor = ANCHORS[soc.anchor]
            entry["anchor_scaled_ms"] = macs / (anchor_unet_macs / anchor.unet_ms)
        out[key] = entry
    return out


def _video(stages: dict, calls: dict[str, int]) -> dict | None:
    """Per SoC, one video's ms (each stage's per-call estimate x its calls), if every stage is counted."""
    if not calls or any(s not in stages for s in calls):
        return None
    out = {}
    for key in SOCS:
        per = {s: stages[s]["per_call"][key] for s in calls}
        out[key] = {"roofline_ms": sum(per[s]["roofline_ms"] * n for s, n in calls.items())}
        if all("anchor_scaled_ms" in p for p in per.values()):
            out[key]["anchor_scaled_ms"] = sum(per[s]["anchor_scaled_ms"] * n for s, n in calls.items())
    return {"calls": calls, "per_soc": out}


def estimate_preset(counts: dict[str, dict], precision: str = "w8a16", anchor_unet_macs: int | None = None,
                    calls: dict[str, int] | None = None) -> dict:
    """The estimate section of results.json: counts, per-stage estimates, one video (`calls`: how many
    times a video calls each stage), sources and assumptions."""
    stages = {}
    for stage, c in counts.items():
        params = c.get("params") or c["weight_bytes"] // 4  # fp32 exports: 4 bytes per weight
        stages[stage] = {**c, "params": params, "per_call": estimate_stage(c["macs"], params, precision, anchor_unet_macs)}
    return {
        "video": _video(stages, calls or {}),
        "precision": precision,
        "anchor_unet_macs": anchor_unet_macs,
        "anchors": {k: vars(a) for k, a in ANCHORS.items()},
        "socs": {k: {**vars(s), "sources": list(s.sources), "assumed": list(s.assumed)} for k, s in SOCS.items()},
        "w8a16_rate": W8A16_RATE,
        "stages": stages,
    }


def _num(x: float) -> str:
    """Three significant digits, without exponents for large values: 0.0203, 4.31, 431, 4,312."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def render_estimate(est: dict) -> list[str]:
    """The report section (markdown lines) of an estimate dict."""
    socs, anchors = est["socs"], est["anchors"]
    header = ["stage", "source", "GMACs", "params M", f"weights MB ({est['precision']})"]
    for soc in socs.values():
        header += [f"{soc['name']} roofline ms", f"{soc['name']} anchor-scaled ms"]
    rows = []
    for stage, s in est["stages"].items():
        source = s["source"] + (f" ({s['onnx_uncounted']} ONNX nodes without shapes)" if s.get("onnx_uncounted") else "")
        row = [f"`{stage}`", source, _num(s["macs"] / 1e9), _num(s["params"] / 1e6),
               _num(s["params"] * WEIGHT_BYTES[est["precision"]] / 1e6)]
        for key in socs:
            e = s["per_call"][key]
            anchored = e.get("anchor_scaled_ms")
            row += [f"{_num(e['roofline_ms'])} ({e['bound']})", "-" if anchored is None else _num(anchored)]
        rows.append(row)

    lines = ["## Phone estimate (no phone attached: an estimate, not a measurement)", "",
             "Per call of each stage (the UNet row is one denoising step: one CFG-batched call).", "",
             *table(header, rows)]
    video = est.get("video")
    if video:
        calls = ", ".join(f"{s} x {n}" for s, n in video["calls"].items())
        parts = [f"{socs[k]['name']}: roofline {_num(v['roofline_ms'] / 1e3)} s"
                 + (f", anchor-scaled {_num(v['anchor_scaled_ms'] / 1e3)} s" if "anchor_scaled_ms" in v else "")
                 for k, v in video["per_soc"].items()]
        lines += [f"One video ({calls}): " + "; ".join(parts) + ".", ""]
    if est.get("anchor_unet_macs"):
        a_macs = est["anchor_unet_macs"]
        lines += [f"Anchor: one SD1.5 UNet call (batch 1, 4x64x64 latent, 77 tokens) is {a_macs / 1e9:.1f} GMACs "
                  "(counted here, meta device)."]
        for a in anchors.values():
            lines.append(f"- {a['name']} ({a['soc']}), {a['precision']}: {a['unet_ms']} ms per call -> "
                         f"{a_macs / a['unet_ms'] / 1e9:.2f} effective TMAC/s. Source: {a['source']}.")
        unet = est["stages"].get("unet")
        if unet:
            lines.append(f"- this preset's UNet step is {_num(unet['macs'] / a_macs)}x the anchor call's MACs.")
        lines.append("")
    lines += ["Method: roofline = max(2 x MACs / (peak int8 ops/s x rate), weight bytes / memory bandwidth) with "
              f"rate {est['w8a16_rate']} for w8a16 and activations on chip (a lower bound); anchor-scaled = MACs / "
              "(the same-generation Snapdragon phone's measured SD1.5 UNet MAC rate): assumes the Dimensity NPU "
              "sustains what that NPU sustains on the same kind of graph.", "", "Sources and assumptions:"]
    for soc in socs.values():
        lines.append(f"- {soc['name']}, {soc['npu']}: peak {soc['peak_int8_tops']} int8 TOPS, {soc['memory']} = "
                     f"{soc['memory_gbps']:.1f} GB/s; anchor {soc['anchor']}. Sources: {'; '.join(soc['sources'])}. "
                     f"Assumed: {'; '.join(soc['assumed'])}.")
    lines.append(f"- w8a16 runs at {est['w8a16_rate']} x the int8 MAC rate (assumed); MACs count Conv, "
                 "ConvTranspose, MatMul, Gemm only.")
    return lines + [""]


def video_calls(preset: str, steps: int | None = None) -> dict[str, int]:
    """How many times one video of `preset` calls each stage (the preset's steps unless given)."""
    cfg = get_preset(preset)
    return calls_per_video(list(stage_specs(cfg)), cfg.num_frames, steps or cfg.sampling.num_inference_steps)


def count_stages(preset: str | None, bundle: Path | None, stages: list[str] | None) -> dict[str, dict]:
    """Counts per stage: from the bundle's ONNX files if given, else on the meta device."""
    if bundle is not None:
        manifest = load_manifest(bundle)
        counts = {}
        for stage, record in manifest["stages"].items():
            if (stages is None or stage in stages) and "onnx" in record["targets"]:
                entry = record["targets"]["onnx"]
                files = [f for f in [entry["file"], *entry.get("extra_files", [])] if f.endswith(".onnx")]
                paths = [check_inside(bundle, f, f"stage {stage} target onnx file") for f in files]
                counts[stage] = _sum_counts([count_onnx(p) for p in paths])  # a chunked UNet: every chunk
                if counts[stage]["uncounted"]:  # shapes not inferred (unsimplified graphs): count on the meta device
                    partial = counts[stage]
                    counts[stage] = {**count_torch(manifest["preset"]["name"], stage), "onnx_partial_macs": partial["macs"],
                                     "onnx_uncounted": len(partial["uncounted"])}
        if not counts:
            raise ValueError(f"bundle {bundle}: expected ONNX models to count, found targets {manifest['targets']}")
        return counts

    names = stages or list(stage_specs(get_preset(preset)))
    return {s: count_torch(preset, s) for s in names}


ESTIMATE_OUTPUT = OutputKind("estimate folder", "estimate.json")  # what --overwrite may replace


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.estimate", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mobile", help="preset counted on the meta device (default: mobile)")
    p.add_argument("--bundle", type=Path, help="count the ONNX models of this bundle instead")
    p.add_argument("--stages", help="comma-separated stages (default: all)")
    p.add_argument("--steps", type=int, help="denoising steps of the per-video figure (default: the preset's)")
    p.add_argument("--precision", default="w8a16", choices=sorted(WEIGHT_BYTES), help="weight precision (default: w8a16)")
    p.add_argument("--out", type=Path, help="write estimate.json and estimate.md into this folder")
    p.add_argument("--overwrite", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None

    def command() -> None:
        if args.out is not None:
            check_separate(args.out, {"--bundle": args.bundle})
            check_output_dir(args.out, overwrite=args.overwrite, kind=ESTIMATE_OUTPUT)
        counts = count_stages(args.preset, args.bundle, stages)
        preset = args.preset
        if args.bundle is not None:
            preset = load_manifest(args.bundle)["preset"]["name"]
        est = estimate_preset(counts, args.precision, anchor_macs(), video_calls(preset, args.steps))
        text = "\n".join(render_estimate(est))
        print(text)
        if args.out is not None:
            with atomic_output_dir(args.out, overwrite=args.overwrite, kind=ESTIMATE_OUTPUT) as tmp:
                (tmp / "estimate.json").write_text(json.dumps(est, indent=2) + "\n", encoding="utf-8")
                (tmp / "estimate.md").write_text(text + "\n", encoding="utf-8")

    return cli.run(command)


if __name__ == "__main__":
    cli.entry(main, loggers=("benchmarks",))
