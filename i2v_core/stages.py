"""The stage contract: one typed description of each exported stage's inputs and outputs.

Export, the manifest, the numpy runtime's input checks, verification, benchmarks and the Android app
all read these specs; nothing else states a shape. Torch-free.

Stages (letters: B batch, 2B under classifier-free guidance, F frames, H, W pixels, h, w latents):

- `text_encoder`: `input_ids (B, 77) int32` -> `last_hidden_state (B, 77, D_text)`; called once for
  the prompt and once for the negative prompt.
- `image_encoder` (optional content adapter): `pixel_values (B, 3, S, S)` CLIP-normalised ->
  `image_embeds (B, 1 + (S/P)^2, D_vision)`, the penultimate hidden states.
- `vae_encoder`: `image (B, 3, H, W)` in [-1, 1] -> `latent (B, 4, h, w)`, posterior mean times the
  VAE scaling factor (deterministic).
- `unet`: `sample (2B, 4, F, h, w)`, `timestep (1,)`, `encoder_hidden_states (2B, 77, D_text)`
  [, `image_embeds (2B, T, D_vision)`] -> `noise_pred (2B, 4, F, h, w)`. The adapted temporal UNet
  with fused first-frame attention; the text states are repeated per frame inside the stage.
- `vae_decoder`: `latent (1, 4, h, w)` scaled -> `image (1, 3, H, W)` in about [-1, 1]; one frame per
  call, so phones keep one frame's activations in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from i2v_core.config import PresetConfig

STAGE_NAMES = ("text_encoder", "image_encoder", "vae_encoder", "unet", "vae_decoder")
MAX_TOKENS = 77


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a stage: static shape, numpy dtype name, and how to sample a test value.

    `sample` is one of `normal`, `unit_range` (uniform in [-1, 1]), `token_ids`, `timestep`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    sample: str = "normal"
    description: str = ""

    def check(self, value, stage: str, role: str = "input") -> None:
        """Raise `ValueError` naming the stage, the tensor, the expected and the found shape/dtype."""
        shape = tuple(getattr(value, "shape", ()))
        if shape != self.shape:
            raise ValueError(f"expected {stage} {role} '{self.name}' of shape {self.shape}, got {shape}")
        dtype = str(getattr(value, "dtype", type(value).__name__)).replace("torch.", "")
        if dtype != self.dtype:
            raise ValueError(f"expected {stage} {role} '{self.name}' of dtype {self.dtype}, got {dtype}")

    def make_sample(self, rng: np.random.Generator, vocab_size: int = 49408, num_train_timesteps: int = 1000):
        if self.sample == "token_ids":
            ids = rng.integers(0, vocab_size - 2, size=self.shape)
            ids[..., 0] = vocab_size - 2  # start token
            ids[..., -1] = vocab_size - 1  # end/pad token
            return ids.astype(self.dtype)
        if self.sample == "timestep":
            return rng.integers(0, num_train_timesteps, size=self.shape).astype(self.dtype)
        if self.sample == "unit_range":
            return rng.uniform(-1.0, 1.0, size=self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "sample": self.sample,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        return cls(d["name"], tuple(d["shape"]), d.get("dtype", "float32"), d.get("sample", "normal"), d.get("description", ""))


@dataclass(frozen=True)
class StageSpec:
    """Inputs and outputs of one stage, in call order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def check_inputs(self, feeds: dict) -> None:
        """Check a feed dict against the spec: names first (missing, unexpected), then each tensor."""
        missing = [n for n in self.input_names if n not in feeds]
        unexpected = [n for n in feeds if n not in self.input_names]
        if missing or unexpected:
            raise ValueError(
                f"{self.name} expects inputs {self.input_names}, got {sorted(feeds)}"
                f" (missing {missing}, unexpected {unexpected})"
            )
        for spec in self.inputs:
            spec.check(feeds[spec.name], self.name, "input")

    def check_outputs(self, outputs: dict) -> None:
        for spec in self.outputs:
            if spec.name not in outputs:
                raise ValueError(f"{self.name} output '{spec.name}' missing, got {sorted(outputs)}")
            spec.check(outputs[spec.name], self.name, "output")

    def sample_inputs(self, seed: int = 0, **kwargs) -> dict[str, np.ndarray]:
        """Deterministic test inputs that satisfy the spec."""
        rng = np.random.default_rng(seed)
        return {spec.name: spec.make_sample(rng, **kwargs) for spec in self.inputs}

    def to_dict(self) -> dict:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "StageSpec":
        return cls(
            name,
            tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
        )


def stage_specs(cfg: PresetConfig) -> dict[str, StageSpec]:
    """The contract of every stage of `cfg`, derived from the preset (nothing stated by hand).

    `image_encoder` is present only when the preset has a content adapter.
    """
    b, b2, f = cfg.batch_size, cfg.guided_batch, cfg.num_frames
    h, w, c = cfg.latent_height, cfg.latent_width, cfg.vae.latent_channels
    d_text = cfg.text_encoder.hidden_size
    video = (b2, c, f, h, w)
    text_states = TensorSpec("encoder_hidden_states", (b2, MAX_TOKENS, d_text), description="[uncond, cond] text states")
    unet_inputs = [
        TensorSpec("sample", video, description="latents, frame 0 clean"),
        TensorSpec("timestep", (1,), sample="timestep", description="DDPM timestep as float"),
        text_states,
    ]
    specs = {
        "text_encoder": StageSpec(
            "text_encoder",
            (TensorSpec("input_ids", (b, MAX_TOKENS), "int32", "token_ids", "CLIP BPE ids, padded"),),
            (TensorSpec("last_hidden_state", (b, MAX_TOKENS, d_text)),),
        ),
        "vae_encoder": StageSpec(
            "vae_encoder",
            (TensorSpec("image", (b, 3, cfg.height, cfg.width), sample="unit_range", description="RGB in [-1, 1]"),),
            (TensorSpec("latent", (b, c, h, w), description="posterior mean x scaling factor"),),
        ),
        "vae_decoder": StageSpec(
            "vae_decoder",
            (TensorSpec("latent", (1, c, h, w), description="one frame's scaled latent"),),
            (TensorSpec("image", (1, 3, cfg.height, cfg.width), description="RGB, about [-1, 1]"),),
        ),
    }
    ic = cfg.image_encoder
    if ic is not None:
        embeds = (ic.sequence_length, ic.hidden_size)
        specs["image_encoder"] = StageSpec(
            "image_encoder",
            (TensorSpec("pixel_values", (b, 3, ic.image_size, ic.image_size), description="CLIP-normalised RGB"),),
            (TensorSpec("image_embeds", (b, *embeds), description="penultimate hidden states"),),
        )
        unet_inputs.append(TensorSpec("image_embeds", (b2, *embeds), description="[uncond, cond] image states"))
    specs["unet"] = StageSpec("unet", tuple(unet_inputs), (TensorSpec("noise_pred", video),))
    return {name: specs[name] for name in STAGE_NAMES if name in specs}
