"""Evaluation tools on top of the library: they compare the PyTorch model with the exported bundles
and measure videos. Not imported by the library.

- `python -m evaluation.verify`: a bundle against the PyTorch pipeline, stage by stage and end to end.
- `python -m evaluation.ablation`: base T2V / adapter / adapter + FSP on held-out synthetic clips.
- `evaluation.clip_score`: CLIP image-embedding consistency of a video with its first frame.
"""

from i2v_core.cli import before_heavy_imports

before_heavy_imports()  # before torch-using imports: see i2v_core.cli.before_heavy_imports
