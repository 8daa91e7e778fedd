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
  Under an NPU profile (`npu="mediatek"`) `timestep` is replaced by `timestep_embedding (1, C0)`, the
  sinusoidal embedding the runtime computes (`TensorSpec.embedding`, `timestep_feeds`), so SIN and
  COS, which the NPU lacks, leave the graph.
- `vae_decoder`: `latent (1, 4, h, w)` scaled -> `image (1, 3, H, W)` in about [-1, 1]; one frame per
  call, so phones keep one frame's activations in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from i2v_core.config import PresetConfig

STAGE_NAMES = ("text_encoder", "image_encoder", "vae_encoder", "unet", "vae_decoder")
MAX_TOKENS = 77
# NPU graph profiles: contract changes that keep ops a vendor's NPU compiler lacks out of the graphs.
NPU_PROFILES = ("mediatek",)
TIMESTEP, TIMESTEP_EMBEDDING = "timestep", "timestep_embedding"


@dataclass(frozen=True)
class SinusoidalEmbedding:
    """diffusers' `get_timestep_embedding(t, dim, flip_sin_to_cos, freq_shift, scale, max_period)` in numpy.

    The same float32 steps in the same order (exponent, frequencies, `t * freq`, sin / cos, flip, pad);
    `exp`, `sin` and `cos` are evaluated in float64 and rounded once to float32, as Java's `Math` does
    on the phone. torch's float32 `exp` / `sin` are not correctly rounded (and differ between CPU
    instruction sets), so the two agree to float32 rounding of the frequencies: at most
    `t_max * 2^-23` (1.2e-4 for t < 1000) apart, not bit for bit.
    """

    dim: int
    flip_sin_to_cos: bool = True
    freq_shift: float = 0.0
    scale: float = 1.0
    max_period: int = 10000

    def __call__(self, timesteps) -> np.ndarray:
        """`timesteps (N,)` -> `(N, dim)` float32."""
        t = np.asarray(timesteps, dtype=np.float32).reshape(-1)
        half = self.dim // 2
        exponent = np.float32(-math.log(self.max_period)) * np.arange(half, dtype=np.float32)
        exponent = exponent / np.float32(half - self.freq_shift)
        freqs = np.exp(exponent.astype(np.float64)).astype(np.float32)
        args = np.float32(self.scale) * (t[:, None] * freqs[None, :])  # (N, 1) x (1, dim/2) -> (N, dim/2)
        sin = np.sin(args.astype(np.float64)).astype(np.float32)
        cos = np.cos(args.astype(np.float64)).astype(np.float32)
        emb = np.concatenate([cos, sin] if self.flip_sin_to_cos else [sin, cos], axis=-1)  # -> (N, 2 * (dim/2))
        if self.dim % 2:
            emb = np.pad(emb, ((0, 0), (0, 1)))  # -> (N, dim)
        return emb

    def to_dict(self) -> dict:
        return {
            "kind": "sinusoidal",
            "dim": self.dim,
            "flip_sin_to_cos": self.flip_sin_to_cos,
            "freq_shift": self.freq_shift,
            "scale": self.scale,
            "max_period": self.max_period,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SinusoidalEmbedding":
        if d.get("kind") != "sinusoidal":
            raise ValueError(f"expected a timestep embedding of kind 'sinusoidal', got {d.get('kind')!r}")
        return cls(int(d["dim"]), bool(d["flip_sin_to_cos"]), float(d["freq_shift"]), float(d["scale"]), int(d["max_period"]))


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a stage: static shape, numpy dtype name, and how to sample a test value.

    `sample` is one of `normal`, `unit_range` (uniform in [-1, 1]), `token_ids`, `timestep`,
    `timestep_embedding` (a random timestep through `embedding`, which such a tensor carries: the
    runtime computes the input from the timestep with it).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    sample: str = "normal"
    description: str = ""
    embedding: SinusoidalEmbedding | None = None

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
        if self.sample == "timestep_embedding":
            return self.embedding(rng.integers(0, num_train_timesteps, size=self.shape[:1])).astype(self.dtype)
        if self.sample == "unit_range":
            return rng.uniform(-1.0, 1.0, size=self.shape).astype(self.dtype)
        return rng.standard_normal(self.shape).astype(self.dtype)

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "sample": self.sample,
            "description": self.description,
        }
        if self.embedding is not None:
            d["embedding"] = self.embedding.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TensorSpec":
        embedding = SinusoidalEmbedding.from_dict(d["embedding"]) if d.get("embedding") else None
        return cls(
            d["name"], tuple(d["shape"]), d.get("dtype", "float32"), d.get("sample", "normal"), d.get("description", ""),
            embedding,
        )


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


# diffusers' `UNetMotionModel` builds `time_proj = Timesteps(block_out_channels[0], True, 0)`:
# flip_sin_to_cos and freq_shift are fixed there (and SD1.5's UNet config says the same); export checks
# the built UNet's `time_proj` against the contract.
UNET_FLIP_SIN_TO_COS, UNET_FREQ_SHIFT = True, 0.0


def timestep_embedding(cfg: PresetConfig) -> SinusoidalEmbedding:
    """The UNet's sinusoidal timestep embedding: width `block_out_channels[0]` of the preset's UNet."""
    return SinusoidalEmbedding(cfg.unet.block_out_channels[0], UNET_FLIP_SIN_TO_COS, UNET_FREQ_SHIFT)


def _timestep_spec(cfg: PresetConfig, npu: str | None) -> TensorSpec:
    if npu is None:
        return TensorSpec(TIMESTEP, (1,), sample="timestep", description="DDPM timestep as float")
    if npu not in NPU_PROFILES:
        raise ValueError(f"unknown NPU profile {npu!r}: expected one of {', '.join(NPU_PROFILES)}")
    emb = timestep_embedding(cfg)
    return TensorSpec(
        TIMESTEP_EMBEDDING, (1, emb.dim), sample="timestep_embedding", embedding=emb,
        description="sinusoidal embedding of the DDPM timestep, computed by the runtime",
    )


def timestep_feeds(spec: StageSpec, timestep) -> dict[str, np.ndarray]:
    """The stage's timestep input for `timestep`, as its contract takes it: `timestep (1,)` float32, or
    `timestep_embedding (1, C0)` computed here with the embedding the contract carries."""
    for t in spec.inputs:
        if t.embedding is not None:
            return {t.name: t.embedding(np.full(t.shape[:1], timestep, dtype=np.float32)).astype(t.dtype)}
        if t.name == TIMESTEP:
            return {t.name: np.full(t.shape, timestep, dtype=t.dtype)}
    raise ValueError(f"{spec.name} has no timestep input: its inputs are {spec.input_names}")


def stage_specs(cfg: PresetConfig, npu: str | None = None) -> dict[str, StageSpec]:
    """The contract of every stage of `cfg`, derived from the preset (nothing stated by hand).

    `image_encoder` is present only when the preset has a content adapter. `npu` (one of
    `NPU_PROFILES`, or None) is the graph profile: under `mediatek` the UNet takes the timestep
    embedding instead of the timestep.
    """
    b, b2, f = cfg.batch_size, cfg.guided_batch, cfg.num_frames
    h, w, c = cfg.latent_height, cfg.latent_width, cfg.vae.latent_channels
    d_text = cfg.text_encoder.hidden_size
    video = (b2, c, f, h, w)
    text_states = TensorSpec("encoder_hidden_states", (b2, MAX_TOKENS, d_text), description="[uncond, cond] text states")
    unet_inputs = [
        TensorSpec("sample", video, description="latents, frame 0 clean"),
        _timestep_spec(cfg, npu),
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
