"""Typed configurations: one preset per target size, each with every component's architecture.

This module is torch-free: the export manifest, the numpy runtime and the benchmarks read the same
numbers. Presets:

- `tiny`: the embedded default. The whole pipeline runs in seconds on 2 CPU cores, with
  deterministic weights from a seed. Same topology as SD1.5 + AnimateDiff (cross-attention down, mid
  and up blocks, motion modules, 8x VAE), much narrower.
- `sd15`: SD1.5 UNet + AnimateDiff v1 motion module as the official I2V-Adapter inference config uses
  it (no mid-block motion module, temporal position encoding max length 24), 16 frames at 512x512.
- `mobile`: the `sd15` architecture at 256x256, 16 frames: the phone target.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum


class AttentionVariant(str, Enum):
    """How the first-frame branch of the I2V-Adapter is computed (see `i2v_adapter.model.attention`)."""

    NAIVE = "naive"
    FUSED = "fused"


@dataclass(frozen=True)
class UNetConfig:
    """Spatial UNet (SD1.5 `UNet2DConditionModel` layout)."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_block_types: tuple[str, ...] = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    up_block_types: tuple[str, ...] = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
    layers_per_block: int = 2
    # diffusers' SD1.5 config calls the number of heads `attention_head_dim` (8).
    attention_head_dim: int = 8
    cross_attention_dim: int = 768
    norm_num_groups: int = 32
    in_channels: int = 4
    out_channels: int = 4


@dataclass(frozen=True)
class MotionConfig:
    """AnimateDiff temporal modules (diffusers `MotionAdapter`)."""

    num_attention_heads: int = 8
    max_seq_length: int = 24
    use_mid_block: bool = False


@dataclass(frozen=True)
class VAEConfig:
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    scaling_factor: float = 0.18215

    @property
    def scale_factor(self) -> int:
        """Spatial down-sampling from pixels to latents."""
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class TextEncoderConfig:
    """CLIP text transformer (SD1.5 uses openai/clip-vit-large-patch14's)."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    vocab_size: int = 49408
    hidden_act: str = "quick_gelu"


@dataclass(frozen=True)
class ImageEncoderConfig:
    """Content adapter: CLIP vision encoder + IP-Adapter-Plus resampler (frozen in the paper).

    The UNet receives the encoder's penultimate hidden states; the resampler inside the UNet turns
    them into `num_tokens` image tokens for cross-attention.
    """

    hidden_size: int = 1280
    intermediate_size: int = 5120
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    projection_dim: int = 1024
    num_tokens: int = 16
    resampler_depth: int = 4
    resampler_heads: int = 12
    resampler_dim_head: int = 64
    scale: float = 1.0

    @property
    def sequence_length(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


@dataclass(frozen=True)
class SchedulerConfig:
    """Training noise schedule (AnimateDiff / I2V-Adapter inference config)."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "linear"
    steps_offset: int = 1
    clip_sample: bool = False
    set_alpha_to_one: bool = True  # DDIMScheduler default, as AnimateDiff builds it
    prediction_type: str = "epsilon"

    def to_diffusers(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FSPConfig:
    """Frame Similarity Prior defaults of the official inference code.

    `D(x) = M_p * x + (1 - M_p) * GaussianBlur(x)`, `M_p ~ Bernoulli(mask_p)` per latent element,
    then noised to the first timestep of the (strength-truncated) schedule.
    """

    enabled: bool = True
    mask_p: float = 0.5
    blur_kernel: int = 9
    blur_sigma: float = 18.0
    # 1.0: start at the first timestep of the schedule; < 1 skips the noisiest steps (SDEdit-style t0).
    strength: float = 1.0

    def verify(self) -> None:
        if not 0.0 <= self.mask_p <= 1.0:
            raise ValueError(f"FSP mask_p must be in [0, 1], got {self.mask_p}")
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise ValueError(f"FSP blur_kernel must be a positive odd integer, got {self.blur_kernel}")
        if self.blur_sigma <= 0:
            raise ValueError(f"FSP blur_sigma must be > 0, got {self.blur_sigma}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"FSP strength must be in (0, 1], got {self.strength}")


@dataclass(frozen=True)
class SamplingConfig:
    """Official inference defaults."""

    num_inference_steps: int = 25
    guidance_scale: float = 7.5
    negative_prompt: str = ""
    color_match: bool = True
    fps: int = 8


@dataclass(frozen=True)
class PresetConfig:
    """Everything needed to build, export and run one I2V-Adapter model at static shapes."""

    name: str
    unet: UNetConfig = field(default_factory=UNetConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    image_encoder: ImageEncoderConfig | None = None
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    fsp: FSPConfig = field(default_factory=FSPConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    num_frames: int = 16
    height: int = 512
    width: int = 512
    batch_size: int = 1
    attention: AttentionVariant = AttentionVariant.FUSED
    seed: int = 0
    # Deterministic weights for the first-frame output projection W_O' when weights are random:
    # 0.0 is the paper's zero initialisation (the model is then exactly the T2V model); the tiny
    # default uses a small non-zero value so that export parity exercises the branch.
    adapter_out_init_std: float = 0.0

    @property
    def latent_height(self) -> int:
        return self.height // self.vae.scale_factor

    @property
    def latent_width(self) -> int:
        return self.width // self.vae.scale_factor

    @property
    def guided_batch(self) -> int:
        """UNet batch: classifier-free guidance runs unconditional and conditional together (2B)."""
        return 2 * self.batch_size

    def with_overrides(self, **changes) -> "PresetConfig":
        """A copy with top-level fields replaced, re-verified (e.g. `num_frames=8`)."""
        cfg = dataclasses.replace(self, **changes)
        cfg.verify()
        return cfg

    def verify(self) -> None:
        """Raise `ValueError` naming the field, what was expected and what was found."""
        factor = self.vae.scale_factor
        unet_factor = 2 ** (len(self.unet.block_out_channels) - 1)
        for dim_name, size in (("height", self.height), ("width", self.width)):
            if size % (factor * unet_factor) != 0:
                raise ValueError(
                    f"preset {self.name!r}: {dim_name} must be a multiple of {factor * unet_factor} "
                    f"(VAE x{factor}, UNet x{unet_factor}), got {size}"
                )
        if not 1 <= self.num_frames <= self.motion.max_seq_length:
            raise ValueError(
                f"preset {self.name!r}: num_frames must be in [1, {self.motion.max_seq_length}] "
                f"(the motion module's temporal position encoding length), got {self.num_frames}"
            )
        if self.num_frames < 2:
            raise ValueError(f"preset {self.name!r}: an image-to-video model needs num_frames >= 2, got {self.num_frames}")
        if self.batch_size < 1:
            raise ValueError(f"preset {self.name!r}: batch_size must be >= 1, got {self.batch_size}")
        if len(self.unet.down_block_types) != len(self.unet.block_out_channels):
            raise ValueError(
                f"preset {self.name!r}: {len(self.unet.block_out_channels)} UNet blocks but "
                f"{len(self.unet.down_block_types)} down block types"
            )
        self.fsp.verify()

    def to_dict(self) -> dict:
        """JSON-ready dict (for manifests and model cards)."""
        out = dataclasses.asdict(self)
        out["attention"] = self.attention.value
        return out


def _tiny() -> PresetConfig:
    return PresetConfig(
        name="tiny",
        unet=UNetConfig(
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1,
            attention_head_dim=4,
            cross_attention_dim=32,
            norm_num_groups=8,
        ),
        motion=MotionConfig(num_attention_heads=4, max_seq_length=24, use_mid_block=False),
        # 4 GroupNorm groups, not 8: with 2 channels per group a flat-coloured region normalises to +-1
        # whatever its colour (the shipped trained VAE needed 4; MODEL_CARD.md).
        vae=VAEConfig(block_out_channels=(16, 32, 32, 32), layers_per_block=1, norm_num_groups=4),
        text_encoder=TextEncoderConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
        ),
        # The shipped weights predict the velocity (MODEL_CARD.md: v-prediction reads the direction
        # words sooner and draws frames 1..7 closer to the input than the epsilon model did).
        scheduler=SchedulerConfig(prediction_type="v_prediction"),
        sampling=SamplingConfig(num_inference_steps=10),
        num_frames=8,
        height=128,
        width=128,
        adapter_out_init_std=0.02,
    )


def tiny_image_encoder() -> ImageEncoderConfig:
    """A content adapter sized for the tiny preset (for tests of the optional `image_encoder` stage)."""
    return ImageEncoderConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
        num_tokens=4,
        resampler_depth=1,
        resampler_heads=2,
        resampler_dim_head=16,
    )


def _sd15() -> PresetConfig:
    return PresetConfig(name="sd15", num_frames=16, height=512, width=512)


def _mobile() -> PresetConfig:
    return PresetConfig(name="mobile", num_frames=16, height=256, width=256)


PRESETS = {"tiny": _tiny, "sd15": _sd15, "mobile": _mobile}


def get_preset(name: str) -> PresetConfig:
    """Return a fresh, verified preset by name (`tiny`, `mobile`, `sd15`)."""
    try:
        cfg = PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}") from None
    cfg.verify()
    return cfg
