"""Weights in and out: safetensors I/O (`io`), diffusers folders, AnimateDiff motion modules and
official I2V-Adapter files onto the built components (`load`, `convert`), LoRA fusion (`lora`), and
the trained tiny default shipped in `i2v_adapter/weights/` (`shipped`)."""
