"""Export of the I2V-Adapter stages to ONNX and TFLite bundles (`python -m export.build`).

Torch-free, for the runtime and tools: `bundle` (load and verify a bundle), `manifest` (its layout
and summary table), `parity` (PSNR, max-abs, guidance-delta correlation, the gate), `runners`
(onnxruntime / LiteRT calls), `measure` (time and peak RSS). With torch: `converters` (one stage to
one file), `graph_options` (NPU-friendly rewrites), `exporter` (the library API), `build` (the CLI).
"""
