"""I2V-Adapter image-to-video diffusion, from PyTorch to phones.

Importing this package does not import torch: the configuration (`i2v_adapter.config`), the stage
contract (`i2v_adapter.stages`), the tokenizer and the media helpers are shared with the torch-free
runtime. The PyTorch model lives in `i2v_adapter.models`, `i2v_adapter.adapter` and
`i2v_adapter.pipeline`.
"""

__version__ = "0.1.0"
