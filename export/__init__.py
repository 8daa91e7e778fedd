"""Export of the I2V-Adapter stages to ONNX and TFLite bundles (`python -m export.build`).

- `converters`: one stage module to one file (torch.onnx + onnxslim; litert-torch).
- `chunking`: the UNet split into chunk files at block boundaries (full-size TFLite's 2 GB limit).
- `graph_options`: NPU-friendly rewrites (GroupNorm as primitives, attention as matmuls, chunked attention).
- `exporter`: the library API (`plan_export`, `export_bundle`), parity-gated, atomic.
- `build`: the CLI, with `--precision` handing the fp32 bundle to `quantize`.

The bundle format itself (files, hashes, manifest, parity gate, runners) is `i2v_core`'s.
"""

from i2v_core.cli import before_heavy_imports

before_heavy_imports()  # before torch-using imports: see i2v_core.cli.before_heavy_imports
