"""I2V-Adapter image-to-video diffusion, from PyTorch to phones.

Importing this package does not import torch: the configuration (`i2v_adapter.config`), the stage
contract (`i2v_adapter.stages`), the tokenizer and the media helpers are shared with the torch-free
runtime. The PyTorch model lives in `i2v_adapter.models`, `i2v_adapter.adapter` and
`i2v_adapter.pipeline`.
"""

__version__ = "0.1.0"

import logging as _logging

# Import-time messages of optional dependencies that say nothing about this project's work: torchao
# (pulled in by diffusers and accelerate) cannot load its CUDA-only kernels on a CPU machine, then
# registers enums with a deprecated torch API. Quietened to errors unless the user has set a level.
_IMPORT_NOISE = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao")
for _name in _IMPORT_NOISE:
    if _logging.getLogger(_name).level == _logging.NOTSET:
        _logging.getLogger(_name).setLevel(_logging.ERROR)
