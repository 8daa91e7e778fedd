"""Quantize an fp32 export bundle: fp16, int8 weight-only, int8 dynamic, w8a16 and int8 static
recipes for ONNX (onnxruntime) and TFLite (ai-edge-quantizer), calibrated on data recorded from
the reference pipeline, measured against the fp32 PyTorch stages. See `quantize/README.md`.

- `quantize.recipes`: recipes as frozen data (`Recipe`, `StageRecipe`, `RECIPES`).
- `quantize.api`: `quantize_bundle(bundle_dir, recipe, out_dir)`, `QuantizeSession`.
- `python -m quantize.run`, `python -m quantize.sensitivity`: the CLIs.
"""

from i2v_core.cli import before_heavy_imports

before_heavy_imports()  # before torch-using imports: see i2v_core.cli.before_heavy_imports
