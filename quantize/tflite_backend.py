"""Apply a `StageRecipe` to one TFLite stage file with ai-edge-quantizer.

| stage recipe | ai-edge-quantizer |
|---|---|
| fp16 weights | weight-only, 16 bits, `FLOAT_CASTING` (fp16 weights dequantized in the graph; GPU / NPU delegates run fp16) |
| int8 weights, float | `weight_only_wi8_afp32` (per-channel int8, explicit dequantize) |
| int8, dynamic-int8 | `dynamic_wi8_afp32` (LiteRT's dynamic-range kernels) |
| int8, int16 | `static_wi8_ai16`, calibrated on recorded data |
| int8, int8 | `static_wi8_ai8`, calibrated on recorded data |

The stage's graph inputs and outputs stay float32 (`INPUT` / `OUTPUT` set to no-quantize), so the
runtime feeds the same tensors as for the fp32 bundle. Layer groups (`quantize.groups`) are matched
by op output tensor names: `keep_float` groups get no-quantize, `only_groups` restricts the recipe.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from i2v_core.runners import TFLITE_SIGNATURE
from quantize.groups import GROUP_DEPTH, for_format, group_members, members, tflite_scope_regex
from quantize.recipes import Activations, StageRecipe, Weights

logger = logging.getLogger(__name__)

# Static recipes keep the ops inside normalisation modules (LayerNorm, GroupNorm) float: litert-torch
# lowers them to mean / squared-difference / rsqrt / mul chains whose variance (1e-4..1e-3 on the tiny
# text encoder) and its reciprocal root do not survive one static scale per tensor (tiny text encoder,
# w8a16: 17 dB with them quantized, 37 dB float). Matched in op scopes by module path.
NORMALIZATION_SCOPE = r"torch\.nn\.modules\.normalization\."


def tensor_names(path: Path) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter  # deferred: loads LiteRT only when a bundle needs it

    return [d["name"] for d in Interpreter(model_path=str(path)).get_tensor_details()]


def stage_groups(path: Path, stage: str, depth: int = GROUP_DEPTH) -> dict[str, list[str]]:
    """`{group: [tensor names]}` of a TFLite stage file (see `quantize.groups`)."""
    return group_members(tensor_names(path), "tflite", depth)


def nonfinite_op_outputs(path: Path, feeds: dict[str, np.ndarray]) -> list[str]:
    """Output tensor names of the ops that produce or consume a non-finite tensor on `feeds`.

    Attention masks are `-inf` (CLIP's causal mask): the calibrator records their finite part only
    (the mask as all zeros), so a static recipe that quantizes the mask, the masked scores or the
    softmax reading them drops the mask. These ops stay float.
    """
    from ai_edge_litert.interpreter import Interpreter  # deferred: loads LiteRT only when a bundle needs it

    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": that is the point here
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.get_signature_runner(TFLITE_SIGNATURE)(**feeds)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    bad = set()
    for index in details:
        try:
            value = interpreter.get_tensor(index)
        except ValueError:  # tensors without data (e.g. optional inputs)
            continue
        if value.dtype.kind == "f" and value.size and not np.all(np.isfinite(value)):
            bad.add(index)
    names = []
    for op in interpreter._get_ops_details():  # no public op listing in ai-edge-litert 2.3
        if bad & {*op["inputs"], *op["outputs"]}:
            names += [details[i]["name"] for i in op["outputs"] if i >= 0]
    return names


def static_float_scopes(path: Path, feeds: dict[str, np.ndarray]) -> list[str]:
    """Scope regexes of the ops a static recipe keeps float: normalisation modules, mask ops."""
    masked = nonfinite_op_outputs(path, feeds)
    return [NORMALIZATION_SCOPE] + ([tflite_scope_regex(masked)] if masked else [])


def _add_config(q, regex: str, recipe: StageRecipe) -> None:
    from ai_edge_quantizer import qtyping  # deferred: TFLite quantization only
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    every = qtyping.TFLOperationName.ALL_SUPPORTED
    if recipe.weights == Weights.FP16:
        q.add_weight_only_config(regex, every, 16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    elif recipe.activations == Activations.FLOAT:
        q.add_weight_only_config(regex, every, 8)
    elif recipe.activations == Activations.DYNAMIC_INT8:
        q.add_dynamic_config(regex, every, 8)
    elif recipe.needs_calibration:
        bits = {Activations.INT8: 8, Activations.INT16: 16}[recipe.activations]
        q.add_static_config(regex, every, activation_num_bits=bits, weight_num_bits=8)
        # no integer-compute embedding kernel: the token table (the text encoder's largest weight) goes weight-only
        q.add_weight_only_config(regex, qtyping.TFLOperationName.EMBEDDING_LOOKUP, 8)
    else:
        raise ValueError(f"no TFLite method for {recipe.weights.value} weights with {recipe.activations.value} activations")


def _describe(recipe: StageRecipe) -> str:
    if recipe.weights == Weights.FP16:
        return "fp16 weight-only (float casting)"
    return {
        Activations.FLOAT: "weight_only_wi8_afp32",
        Activations.DYNAMIC_INT8: "dynamic_wi8_afp32",
        Activations.INT16: "static_wi8_ai16 (min/max calibration)",
        Activations.INT8: "static_wi8_ai8 (min/max calibration)",
    }.get(recipe.activations, recipe.label)


def _no_quantize(q, regex: str, ops) -> None:
    from ai_edge_quantizer.algorithm_manager import AlgorithmName  # deferred: TFLite quantization only

    for op in ops:
        q.update_quantization_recipe(regex, op, algorithm_key=AlgorithmName.NO_QUANTIZE)


def build_quantizer(
    src: Path,
    recipe: StageRecipe,
    *,
    stage: str,
    keep_float: Sequence[str] = (),
    only_groups: Sequence[str] | None = None,
    float_scopes: Sequence[str] = (),
):
    """An `ai_edge_quantizer.Quantizer` over `src` with the recipe, group options and float IO;
    ops whose scope matches one of the `float_scopes` regexes stay float."""
    from ai_edge_quantizer import qtyping, quantizer  # deferred: TFLite quantization only

    names = tensor_names(src)
    keep_float = for_format(keep_float, "tflite")
    q = quantizer.Quantizer(str(src))
    every = qtyping.TFLOperationName.ALL_SUPPORTED
    only = ".*" if only_groups is None else tflite_scope_regex(members(names, "tflite", only_groups, stage))
    _add_config(q, only, recipe)
    if keep_float:
        _no_quantize(q, tflite_scope_regex(members(names, "tflite", keep_float, stage)), [every])
    for regex in float_scopes:
        _no_quantize(q, regex, [every])
    _no_quantize(q, ".*", [qtyping.TFLOperationName.INPUT, qtyping.TFLOperationName.OUTPUT])
    return q


def calibrate(q, calibration: Sequence[dict[str, np.ndarray]], src: Path):
    """Calibration ranges for a static recipe (None when the recipe needs none).

    Ranges are the plain min / max over all samples (`qsv_utils.min_max_update`, like onnxruntime's
    MinMax), not `Quantizer.calibrate`'s default moving average, which keeps about the first sample's
    range: the recorded VAE-decoder inputs mix frame 0's clean latent (|x| < 1 on the tiny model)
    with the sampled frames (|x| ~ 50), and the average clipped the latter (w8a16 decoder: 23 dB).
    """
    from ai_edge_quantizer import calibrator, recipe_manager  # deferred: TFLite quantization only
    from ai_edge_quantizer.utils import qsv_utils

    if not q.need_calibration:
        return None
    if not calibration:
        raise ValueError("static TFLite quantization needs calibration data, got none")
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(q.get_quantization_recipe())
    calib = calibrator.Calibrator(src.read_bytes(), num_threads=max(1, os.cpu_count() or 1), qsv_update_func=qsv_utils.min_max_update)
    calib.calibrate({TFLITE_SIGNATURE: list(calibration)}, manager)
    return calib.get_model_qsvs()


def quantize_tflite(
    src: Path,
    dst: Path,
    recipe: StageRecipe,
    *,
    stage: str,
    calibration: Sequence[dict[str, np.ndarray]] | None = None,
    keep_float: Sequence[str] = (),
    only_groups: Sequence[str] | None = None,
    ranges=None,
    float_scopes: Sequence[str] | None = None,
) -> dict:
    """Write `dst` from `src` per `recipe`; return what was done. `ranges`, `float_scopes`: a previous
    calibration result and `static_float_scopes` for this file (the sensitivity sweep computes them once)."""
    scopes = float_scopes
    if scopes is None:
        scopes = static_float_scopes(src, calibration[0]) if recipe.needs_calibration and calibration else []
    q = build_quantizer(src, recipe, stage=stage, keep_float=keep_float, only_groups=only_groups, float_scopes=scopes)
    if ranges is None:
        ranges = calibrate(q, calibration or [], src)
    result = q.quantize(ranges, enable_progress_report=False, enable_progress_bar=False)
    dst.write_bytes(bytes(result.quantized_model))
    info = {"method": f"ai_edge_quantizer: {_describe(recipe)}"}
    if ranges is not None:
        info["calibration_samples"] = len(calibration or [])
        info["float_scopes"] = ["normalization modules", "ops on non-finite tensors (attention masks)"]
    return info
