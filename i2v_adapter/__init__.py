"""I2V-Adapter on an AnimateDiff UNet, in PyTorch.

- `i2v_adapter.model`: the adapter's attention processors and the preset's components, built from
  its config (`i2v_core.config`) with seeded random weights.
- `i2v_adapter.checkpoints`: loading and saving weights (diffusers folders, motion modules, official
  adapter files, LoRA, the shipped tiny default).
- `i2v_adapter.pipeline`: `I2VPipeline`, image + prompt -> video.
- `i2v_adapter.training`: training and checkpoint averaging.
- `python -m i2v_adapter.generate`, `python -m i2v_adapter.info`: the command-line tools.

The torch-free parts (config, stage contract, tokenizer, media) live in `i2v_core`.
"""

from i2v_core import __version__
from i2v_core.cli import before_heavy_imports

before_heavy_imports()  # before diffusers is imported: see i2v_core.cli.before_heavy_imports

__all__ = ["__version__"]

