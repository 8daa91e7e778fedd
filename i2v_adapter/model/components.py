"""Build the PyTorch components of a preset: temporal UNet with the adapter, VAE, CLIP text encoder,
optional content adapter (CLIP vision encoder + IP-Adapter-Plus), tokenizer and DDIM scheduler.

Weights are deterministic from `cfg.seed` (`random_weights`), or come from local checkpoints through
`i2v_adapter.checkpoints.load`. Inside `torch.device("meta")` the same builders allocate nothing, which is
how `i2v_adapter.info` counts the full-size model in seconds.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0
from diffusers.models.embeddings import IPAdapterPlusImageProjection, MultiIPAdapterImageProjection
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

from i2v_adapter.model.adapter import install_i2v_adapter
from i2v_core.config import ImageEncoderConfig, PresetConfig
from i2v_core.tokenizer import CLIPTokenizer

logger = logging.getLogger(__name__)

# Seed offsets so each component's weights are independent of which others were built.
_SEED_OFFSETS = {"unet": 0, "motion": 1, "adapter": 2, "vae": 3, "text_encoder": 4, "image_encoder": 5, "content": 6}


@contextlib.contextmanager
def seeded(seed: int, component: str):
    """Deterministic default initialisation for one component, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1000 + _SEED_OFFSETS[component])
        yield


def _on_meta() -> bool:
    return torch.empty(0).device.type == "meta"


def unet2d_kwargs(cfg: PresetConfig) -> dict:
    """diffusers `UNet2DConditionModel` config of the preset's spatial UNet."""
    u = cfg.unet
    return dict(
        sample_size=cfg.latent_height,
        in_channels=u.in_channels,
        out_channels=u.out_channels,
        down_block_types=u.down_block_types,
        up_block_types=u.up_block_types,
        block_out_channels=u.block_out_channels,
        layers_per_block=u.layers_per_block,
        attention_head_dim=u.attention_head_dim,
        cross_attention_dim=u.cross_attention_dim,
        norm_num_groups=u.norm_num_groups,
    )


def motion_adapter_kwargs(cfg: PresetConfig) -> dict:
    """diffusers `MotionAdapter` config of the preset's AnimateDiff modules."""
    return dict(
        block_out_channels=cfg.unet.block_out_channels,
        motion_layers_per_block=cfg.unet.layers_per_block,
        motion_num_attention_heads=cfg.motion.num_attention_heads,
        motion_norm_num_groups=cfg.unet.norm_num_groups,
        motion_max_seq_length=cfg.motion.max_seq_length,
        use_motion_mid_block=cfg.motion.use_mid_block,
    )


def build_motion_unet(
    cfg: PresetConfig,
    unet2d: UNet2DConditionModel | None = None,
    motion_adapter: MotionAdapter | None = None,
) -> UNetMotionModel:
    """The text-to-video UNet (spatial UNet + motion modules), without the I2V-Adapter.

    With `unet2d`/`motion_adapter` given, their weights are loaded (diffusers' `from_unet2d`);
    otherwise the UNet gets deterministic random weights from `cfg.seed`.
    """
    if unet2d is not None or motion_adapter is not None:
        if unet2d is None or motion_adapter is None:
            raise ValueError("build_motion_unet needs both a spatial UNet and a motion adapter, or neither")
        return UNetMotionModel.from_unet2d(unet2d, motion_adapter)
    # The config comes from meta-device templates, so only the final model allocates memory.
    with torch.device("meta"):
        template = UNet2DConditionModel(**unet2d_kwargs(cfg))
        motion = MotionAdapter(**motion_adapter_kwargs(cfg))
    with seeded(cfg.seed, "unet"):
        return UNetMotionModel.from_unet2d(template, motion, load_weights=False)


def build_unet(cfg: PresetConfig, unet2d=None, motion_adapter=None, *, with_adapter: bool = True) -> UNetMotionModel:
    """The video UNet of the preset, with the I2V-Adapter installed (`cfg.attention` variant)."""
    unet = build_motion_unet(cfg, unet2d, motion_adapter)
    if cfg.image_encoder is not None:
        install_content_adapter(unet, cfg)
    if with_adapter:
        gen = None if _on_meta() else torch.Generator().manual_seed(cfg.seed * 1000 + _SEED_OFFSETS["adapter"])
        install_i2v_adapter(unet, cfg.attention, out_init_std=cfg.adapter_out_init_std, generator=gen)
    unet.eval()
    return unet


def build_vae(cfg: PresetConfig) -> AutoencoderKL:
    v = cfg.vae
    n = len(v.block_out_channels)
    with seeded(cfg.seed, "vae"):
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=v.block_out_channels,
            layers_per_block=v.layers_per_block,
            latent_channels=v.latent_channels,
            norm_num_groups=v.norm_num_groups,
            sample_size=cfg.height,
            scaling_factor=v.scaling_factor,
        )
    return vae.eval()


def text_encoder_config(cfg: PresetConfig) -> CLIPTextConfig:
    t = cfg.text_encoder
    return CLIPTextConfig(
        vocab_size=t.vocab_size,
        hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size,
        num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads,
        max_position_embeddings=t.max_position_embeddings,
        hidden_act=t.hidden_act,
        projection_dim=t.hidden_size,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
    )


def build_text_encoder(cfg: PresetConfig) -> CLIPTextModel:
    with seeded(cfg.seed, "text_encoder"):
        model = CLIPTextModel(text_encoder_config(cfg))
    return model.eval()


def image_encoder_config(ic: ImageEncoderConfig) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=ic.hidden_size,
        intermediate_size=ic.intermediate_size,
        num_hidden_layers=ic.num_hidden_layers,
        num_attention_heads=ic.num_attention_heads,
        image_size=ic.image_size,
        patch_size=ic.patch_size,
        projection_dim=ic.projection_dim,
        hidden_act="gelu",
    )


def build_image_encoder(cfg: PresetConfig) -> CLIPVisionModelWithProjection:
    if cfg.image_encoder is None:
        raise ValueError(f"preset {cfg.name!r} has no content adapter (image_encoder is None)")
    with seeded(cfg.seed, "image_encoder"):
        model = CLIPVisionModelWithProjection(image_encoder_config(cfg.image_encoder))
    return model.eval()


def install_content_adapter(unet: UNetMotionModel, cfg: PresetConfig) -> None:
    """IP-Adapter-Plus in cross-attention, through diffusers' own IP-Adapter classes.

    A resampler (`encoder_hid_proj`) turns the image encoder's penultimate hidden states into
    `num_tokens` image tokens, and every cross-attention (`attn2`) of the spatial blocks gets
    `IPAdapterAttnProcessor2_0` (text and image attention summed). Weights are deterministic random
    here; `checkpoints.load_ip_adapter` loads a real IP-Adapter-Plus file over them.
    """
    ic = cfg.image_encoder
    cross = cfg.unet.cross_attention_dim
    with seeded(cfg.seed, "content"):
        proj = IPAdapterPlusImageProjection(
            embed_dims=ic.hidden_size,
            output_dims=cross,
            hidden_dims=cross,
            depth=ic.resampler_depth,
            dim_head=ic.resampler_dim_head,
            heads=ic.resampler_heads,
            num_queries=ic.num_tokens,
        )
        procs = {}
        for name, proc in unet.attn_processors.items():
            if name.endswith("attn2.processor") and "motion_modules" not in name:
                attn = unet.get_submodule(name[: -len(".processor")])
                procs[name] = IPAdapterAttnProcessor2_0(
                    hidden_size=attn.to_q.out_features,
                    cross_attention_dim=cross,
                    scale=ic.scale,
                    num_tokens=ic.num_tokens,
                )
            else:
                procs[name] = proc
    unet.set_attn_processor(procs)
    unet.encoder_hid_proj = MultiIPAdapterImageProjection([proj])
    unet.register_to_config(encoder_hid_dim_type="ip_image_proj")


def build_scheduler(cfg: PresetConfig) -> DDIMScheduler:
    return DDIMScheduler(**cfg.scheduler.to_diffusers())


@dataclass
class Components:
    """Everything `I2VPipeline` and the export stages need, for one preset."""

    config: PresetConfig
    unet: UNetMotionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler: DDIMScheduler
    image_encoder: CLIPVisionModelWithProjection | None = None


def build_components(cfg: PresetConfig) -> Components:
    """All components of `cfg` with deterministic random weights from `cfg.seed`. Loading trained
    weights is a separate call: `i2v_adapter.checkpoints.shipped.default_components` (the preset's
    shipped weights) or `i2v_adapter.checkpoints.load.load_components` (local checkpoints)."""
    cfg.verify()
    return Components(
        config=cfg,
        unet=build_unet(cfg),
        vae=build_vae(cfg),
        text_encoder=build_text_encoder(cfg),
        tokenizer=CLIPTokenizer.from_bpe_file(),
        scheduler=build_scheduler(cfg),
        image_encoder=build_image_encoder(cfg) if cfg.image_encoder is not None else None,
    )
