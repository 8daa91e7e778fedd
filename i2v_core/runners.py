"""Run one exported stage file on numpy inputs: onnxruntime for `.onnx`, the LiteRT interpreter for
`.tflite` (torch-free; the parity gate uses these, the runtime may too).

Inputs and outputs are addressed by the contract's names: the ONNX graph's input and output names
and the TFLite signature's are the `TensorSpec` names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TFLITE_SIGNATURE = "serving_default"


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


def run_onnx(path: Path, feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
    """One onnxruntime CPU call; returns the named outputs."""
    import onnxruntime as ort  # deferred: loads the ONNX runtime only when a bundle needs it

    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(zip(output_names, session.run(output_names, feeds)))


def run_tflite(path: Path, feeds: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
    """One LiteRT interpreter call through the model's `serving_default` signature."""
    from ai_edge_litert.interpreter import Interpreter  # deferred: loads LiteRT only when a bundle needs it

    interpreter = Interpreter(model_path=str(path), num_threads=_threads())
    outputs = interpreter.get_signature_runner(TFLITE_SIGNATURE)(**feeds)
    missing = [n for n in output_names if n not in outputs]
    if missing:
        raise ValueError(f"{path}: expected outputs {output_names} from signature {TFLITE_SIGNATURE!r}, got {sorted(outputs)}")
    return {name: outputs[name] for name in output_names}


RUNNERS = {"onnx": run_onnx, "tflite": run_tflite}
