"""Bytes of a stage file, and the part of them that is weight data (torch-free).

A small model's file is not all weights: ONNX node and value names, TFLite tensor names and
per-channel quantization parameters take a fixed share (about 1 MB of the tiny UNet's 6-7 MB), which
a full-size model's gigabytes of weights dwarf. The manifest records both, so the ratio to fp32 can
be read for the file and for the weights alone (data plus quantization scales and zero points).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_weight_bytes(path: Path) -> int:
    """Bytes of the graph's initializers (ONNX `Constant` nodes are folded away by the export)."""
    import onnx  # deferred: onnx is heavy and only this path reads graphs
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for init in model.graph.initializer:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        total += int(np.prod(init.dims, dtype=np.int64)) * itemsize
    return total


def tflite_weight_bytes(path: Path) -> int:
    """Bytes of the flatbuffer's constant buffers plus the quantization parameters (scales and
    zero points) of its tensors, so per-channel scales count as they do in ONNX (initializers)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils  # deferred: TFLite quantization only

    model = tfl_flatbuffer_utils.read_model(str(path))
    total = sum(0 if b.data is None else len(b.data) for b in model.buffers)
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            q = tensor.quantization
            if q is not None:
                total += sum(np.asarray(v).nbytes for v in (q.scale, q.zeroPoint) if v is not None)
    return total


def weight_bytes(path: Path, target: str) -> int:
    if target == "onnx":
        return onnx_weight_bytes(path)
    if target == "tflite":
        return tflite_weight_bytes(path)
    raise ValueError(f"unknown target {target!r}: expected onnx or tflite")
