"""Apply a `StageRecipe` to one ONNX stage file with onnxruntime's tools.

- `fp16`: `onnxruntime.transformers.float16.convert_float_to_float16` with float IO kept, and the ops
  in `FP16_OP_BLOCK_LIST` (ONNX Runtime's default block list plus the numerically fragile
  normalisations and attention softmax, as ORT's own Stable Diffusion fp16 flow forces
  LayerNormalization to fp32) left in fp32.
- `int8` weights, float activations: each Conv / Gemm / MatMul / Gather weight becomes an int8
  initializer with per-output-channel symmetric scales and a `DequantizeLinear` in front of its op
  (weight-only QDQ; ORT's own quantizers always quantize activations too).
- `int8` weights, `dynamic-int8` activations: `quantize_dynamic` (per-channel weights; ORT's
  integer kernels quantize activations per call).
- `int8` weights, `int8` / `int16` activations: `quantize_static` in QDQ format over recorded
  calibration data, on the compute ops (`COMPUTE_OPS`: Conv, MatMul, Gemm), per-channel symmetric
  weights, symmetric activations. int16 needs QuantizeLinear / DequantizeLinear of opset 21:
  `quantize_static` raises the model's opset from 17 to 21 itself, and ORT 1.32's CPU EP runs it.
  Weights of ops left float (the text encoder's token embedding, a Gather) get the weight-only pass,
  so every large weight is int8.

Layer groups in `keep_float` are excluded by node name; `only_groups` quantizes those groups alone
(the sensitivity report).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from quantize.groups import GROUP_DEPTH, for_format, group_members, members
from quantize.recipes import Activations, StageRecipe, Weights

logger = logging.getLogger(__name__)

COMPUTE_OPS = ("Conv", "MatMul", "Gemm")
FRAGILE_FP16_OPS = ("Softmax", "LayerNormalization", "InstanceNormalization", "GroupNormalization")
MIN_WEIGHT_ELEMENTS = 256  # smaller constants (biases, norms, scalars) stay float: no size to gain
_DQ_OPSET = 13  # DequantizeLinear with a per-axis scale


def _load(path: Path):
    import onnx  # deferred: onnx is heavy and only this path reads graphs

    return onnx.load(str(path))


def stage_groups(path: Path, stage: str, depth: int = GROUP_DEPTH) -> dict[str, list[str]]:
    """`{group: [node names]}` of an ONNX stage file (see `quantize.groups`)."""
    return group_members((n.name for n in _load(path).graph.node), "onnx", depth)


def _selected_nodes(path: Path, stage: str, keep_float: Sequence[str], only_groups: Sequence[str] | None):
    """(excluded node names, nodes to quantize or None) for the group options."""
    names = [n.name for n in _load(path).graph.node]
    keep_float = for_format(keep_float, "onnx")
    excluded = members(names, "onnx", keep_float, stage) if keep_float else []
    only = None if only_groups is None else members(names, "onnx", only_groups, stage)
    return excluded, only


class _FeedReader:
    """A `CalibrationDataReader` over a list of feed dicts."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]):
        self._feeds = list(feeds)
        self._index = 0

    def get_next(self):
        if self._index >= len(self._feeds):
            return None
        self._index += 1
        return self._feeds[self._index - 1]

    def rewind(self):
        self._index = 0


def convert_fp16(src: Path, dst: Path, *, excluded_nodes: Iterable[str] = (), only_nodes=None) -> dict:
    """fp16 graph with float32 IO; fragile ops and `excluded_nodes` stay fp32."""
    import onnx  # deferred: onnx is heavy and only this path reads graphs
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = _load(src)
    blocked = set(excluded_nodes)
    if only_nodes is not None:
        keep = set(only_nodes)
        blocked |= {n.name for n in model.graph.node if n.name not in keep}
    op_block_list = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FRAGILE_FP16_OPS))
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=op_block_list, node_block_list=sorted(blocked))
    onnx.save_model(converted, str(dst))
    return {"method": "onnxruntime.transformers.float16", "fp32_ops": list(FRAGILE_FP16_OPS), "fp32_nodes": len(blocked)}


def _weight_axis(node, input_index: int, dims: Sequence[int]) -> int | None:
    """Output-channel axis of a node's constant weight, None if the node/input is not a weight."""
    if node.op_type == "Conv" and input_index == 1:
        return 0
    if node.op_type == "Gather" and input_index == 0 and len(dims) == 2:
        return 0  # one scale per embedding row
    if node.op_type == "MatMul" and input_index == 1 and len(dims) == 2:
        return 1
    if node.op_type == "Gemm" and input_index == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return None


def _quantize_per_axis(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per slice along `axis`: `(q int8 same shape, scale float32 (w.shape[axis],))`."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    peak = np.max(np.abs(w), axis=reduce)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _weight_candidates(model, excluded: set[str], op_types: Iterable[str]) -> dict[str, int]:
    """`{initializer name: axis}` for float weights whose every consumer agrees on one axis."""
    from onnx import TensorProto  # deferred: onnx is heavy and only this path reads graphs

    inits = {i.name: i for i in model.graph.initializer}
    wanted, axes, refused = set(op_types), {}, set()
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            init = inits.get(name)
            if init is None or init.data_type != TensorProto.FLOAT:
                continue
            axis = _weight_axis(node, index, init.dims) if node.op_type in wanted and node.name not in excluded else None
            if axis is None or axes.get(name, axis) != axis:
                refused.add(name)
            else:
                axes[name] = axis
    return {n: a for n, a in axes.items() if n not in refused and int(np.prod(inits[n].dims)) >= MIN_WEIGHT_ELEMENTS}


def quantize_weights_int8(model, *, excluded_nodes: Iterable[str] = (), op_types: Iterable[str] = ("Conv", "Gemm", "MatMul", "Gather")) -> int:
    """Weight-only int8 in place: each eligible weight -> int8 + scale + DequantizeLinear. Returns the count."""
    from onnx import helper, numpy_helper  # deferred: onnx is heavy and only this path reads graphs

    candidates = _weight_candidates(model, set(excluded_nodes), op_types)
    if not candidates:
        return 0
    kept, dq_nodes = [], []
    for init in model.graph.initializer:
        axis = candidates.get(init.name)
        if axis is None:
            kept.append(init)
            continue
        q, scale = _quantize_per_axis(numpy_helper.to_array(init), axis)
        names = [f"{init.name}_int8", f"{init.name}_scale"]  # no zero point: 0, typed as the int8 input
        kept += [numpy_helper.from_array(q, names[0]), numpy_helper.from_array(scale, names[1])]
        dq_nodes.append(helper.make_node("DequantizeLinear", names, [init.name], name=f"{init.name}_DequantizeLinear", axis=axis))
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = dq_nodes + list(model.graph.node)  # DQ nodes read initializers only: topological order holds
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    default = next(o for o in model.opset_import if o.domain in ("", "ai.onnx"))
    default.version = max(default.version, _DQ_OPSET)
    return len(dq_nodes)


def weight_only(src: Path, dst: Path, *, excluded_nodes: Iterable[str] = (), only_nodes=None) -> dict:
    import onnx  # deferred: onnx is heavy and only this path reads graphs

    model = _load(src)
    excluded = set(excluded_nodes)
    if only_nodes is not None:
        keep = set(only_nodes)
        excluded |= {n.name for n in model.graph.node if n.name not in keep}
    count = quantize_weights_int8(model, excluded_nodes=excluded)
    onnx.save_model(model, str(dst))
    return {"method": "weight-only QDQ (DequantizeLinear per weight)", "int8_weights": count}


def dynamic(src: Path, dst: Path, *, excluded_nodes: Sequence[str] = (), only_nodes=None) -> dict:
    from onnxruntime.quantization import (  # deferred: loads the ONNX runtime only when a bundle needs it
        QuantType,
        quantize_dynamic,
    )

    quantize_dynamic(
        src, dst, weight_type=QuantType.QInt8, per_channel=True,
        nodes_to_exclude=list(excluded_nodes), nodes_to_quantize=only_nodes,
    )
    return {"method": "onnxruntime.quantization.quantize_dynamic", "per_channel": True}


def static(
    src: Path,
    dst: Path,
    activations: Activations,
    calibration: Sequence[dict[str, np.ndarray]],
    *,
    excluded_nodes: Sequence[str] = (),
    only_nodes=None,
    cache: Path | None = None,
) -> dict:
    """QDQ static quantization of the compute ops; `cache`: ORT's calibration-range cache (JSON) to reuse."""
    import onnx  # deferred: onnx is heavy and only this path reads graphs
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not calibration:
        raise ValueError(f"static {activations.value} quantization of {src.name} needs calibration data, got none")
    act_type = {Activations.INT8: QuantType.QInt8, Activations.INT16: QuantType.QInt16}[activations]
    quantize_static(
        src, dst, _FeedReader(calibration),
        quant_format=QuantFormat.QDQ, activation_type=act_type, weight_type=QuantType.QInt8, per_channel=True,
        op_types_to_quantize=list(COMPUTE_OPS), nodes_to_exclude=list(excluded_nodes), nodes_to_quantize=only_nodes,
        calibrate_method=CalibrationMethod.MinMax, extra_options={"ActivationSymmetric": True},
        calibration_cache_path=cache,
    )
    model = _load(dst)
    extra = quantize_weights_int8(model, excluded_nodes=set(excluded_nodes), op_types=("Gather",)) if only_nodes is None else 0
    if extra:
        onnx.save_model(model, str(dst))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {
        "method": "onnxruntime.quantization.quantize_static (QDQ, MinMax, symmetric)",
        "quantized_ops": list(COMPUTE_OPS), "calibration_samples": len(calibration), "opset": opset,
        "weight_only_extra": extra,
    }


def quantize_onnx(
    src: Path,
    dst: Path,
    recipe: StageRecipe,
    *,
    stage: str,
    calibration: Sequence[dict[str, np.ndarray]] | None = None,
    keep_float: Sequence[str] = (),
    only_groups: Sequence[str] | None = None,
    cache: Path | None = None,
) -> dict:
    """Write `dst` from `src` per `recipe`; return what was done (for the manifest)."""
    excluded, only = _selected_nodes(src, stage, keep_float, only_groups)
    if recipe.weights == Weights.FP16:
        return convert_fp16(src, dst, excluded_nodes=excluded, only_nodes=only)
    if recipe.activations == Activations.FLOAT:
        return weight_only(src, dst, excluded_nodes=excluded, only_nodes=only)
    if recipe.activations == Activations.DYNAMIC_INT8:
        return dynamic(src, dst, excluded_nodes=excluded, only_nodes=only)
    if recipe.needs_calibration:
        return static(src, dst, recipe.activations, calibration or [], excluded_nodes=excluded, only_nodes=only, cache=cache)
    raise ValueError(f"no ONNX method for {recipe.weights.value} weights with {recipe.activations.value} activations")
