"""Torch-free runtime: the phone's pipeline in Python, numpy plus onnxruntime or LiteRT.

- `runtime_py.schedulers`: DDIM, Euler and LCM schedulers in numpy, step for step as diffusers'.
- `runtime_py.fsp`: the Frame Similarity Prior (blur, mask, noise) in numpy.
- `runtime_py.runners`: stage runners (onnxruntime, LiteRT, Python callables) that check every call
  against the stage contract.
- `runtime_py.pipeline`: `RuntimePipeline`, the twin of `i2v_adapter.pipeline.I2VPipeline`.

Nothing here imports torch (a test checks it); importing this package imports nothing at all, so
`import runtime_py.schedulers` costs numpy alone.
"""
