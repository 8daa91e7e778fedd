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

__all__ = ["__version__"]

import logging as _logging

# The one logging call outside a `__main__`, and on purpose at import: torchao (pulled in by diffusers
# and litert-torch) cannot load its CUDA-only kernels on a CPU machine and says so at import time, then
# registers enums through a deprecated torch API; that happens when diffusers is first imported, before
# any CLI can configure logging. Only these third-party loggers are raised to ERROR, and only when the
# user has set no level for them; this project's loggers and handlers are left to `i2v_core.cli`.
for _name in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao"):
    if _logging.getLogger(_name).level == _logging.NOTSET:
        _logging.getLogger(_name).setLevel(_logging.ERROR)
