"""PyTorch modules whose `forward` is exactly one stage of the contract (`i2v_core.stages`).

The reference pipeline runs these, and export converts these, so what is exported is what the
PyTorch reference computes. Positional inputs follow the contract's input order.
"""

from __future__ import annotations

import torch
from torch import nn

from i2v_adapter.model.components import Components
from i2v_core.stages import TIMESTEP_EMBEDDING, StageSpec, stage_specs


class TextEncoderStage(nn.Module):
    """`input_ids (B, 77) int32` -> `last_hidden_state (B, 77, D)`."""

    def __init__(self, text_encoder: nn.Module):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.long(), return_dict=False)[0]


class ImageEncoderStage(nn.Module):
    """`pixel_values (B, 3, S, S)` -> `image_embeds (B, T, D)`: penultimate hidden states (IP-Adapter-Plus)."""

    def __init__(self, image_encoder: nn.Module):
        super().__init__()
        self.image_encoder = image_encoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(pixel_values, output_hidden_states=True).hidden_states[-2]


class VaeEncoderStage(nn.Module):
    """`image (B, 3, H, W)` in [-1, 1] -> `latent (B, 4, h, w)`: posterior mean x scaling factor."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        moments = self.vae.encoder(image)  # (B, 2*4, h, w): mean and log-variance
        if self.vae.quant_conv is not None:
            moments = self.vae.quant_conv(moments)
        mean = moments[:, : self.vae.config.latent_channels]
        return mean * self.vae.config.scaling_factor


class VaeDecoderStage(nn.Module):
    """`latent (1, 4, h, w)` scaled -> `image (1, 3, H, W)` in about [-1, 1]."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        z = latent / self.vae.config.scaling_factor
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        return self.vae.decoder(z)


class GivenTimeProj(nn.Module):
    """Stands in for a UNet's `time_proj` (the sinusoidal `Timesteps`) so the embedding can be a stage
    input: while `embedding (1, C0)` is set it returns it once per batch row, else it is the original.

    The rows are concatenated rather than broadcast: BROADCAST_TO is not an op the MediaTek NPU takes."""

    def __init__(self, time_proj: nn.Module):
        super().__init__()
        self.original = time_proj
        self.embedding: torch.Tensor | None = None

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return self.original(timesteps)
        return torch.cat([self.embedding] * timesteps.shape[0])  # (1, C0) -> (2B, C0)


class UNetStage(nn.Module):
    """`sample (2B, 4, F, h, w)`, `timestep (1,)`, `encoder_hidden_states (2B, 77, D)`
    [, `image_embeds (2B, T, Dv)`] -> `noise_pred (2B, 4, F, h, w)`.

    diffusers' `UNetMotionModel` wants text states per frame; the repeat is done here so the
    exported stage takes one set per video.
    """

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, image_embeds=None):
        return self._unet(sample, timestep, encoder_hidden_states, image_embeds)

    def _unet(self, sample, timestep, encoder_hidden_states, image_embeds):
        num_frames = sample.shape[2]
        states = encoder_hidden_states.repeat_interleave(num_frames, dim=0)  # (2B, 77, D) -> (2B*F, 77, D)
        # diffusers takes one (2B, num_images, T, Dv) tensor per IP-Adapter
        added = None if image_embeds is None else {"image_embeds": [image_embeds.unsqueeze(1)]}
        return self.unet(sample, timestep, states, added_cond_kwargs=added, return_dict=False)[0]


class UNetEmbeddingStage(UNetStage):
    """`UNetStage` taking the sinusoidal `timestep_embedding (1, C0)` instead of `timestep (1,)`: the
    contract's NPU profile, where the runtime computes the embedding (SIN and COS leave the graph).

    The UNet's `time_proj` becomes a `GivenTimeProj`, which still computes the embedding for calls
    with a timestep (the default `UNetStage` over the same UNet keeps working)."""

    def __init__(self, unet: nn.Module):
        super().__init__(unet)
        if not isinstance(unet.time_proj, GivenTimeProj):
            unet.time_proj = GivenTimeProj(unet.time_proj)

    def forward(self, sample, timestep_embedding, encoder_hidden_states, image_embeds=None):
        given = self.unet.time_proj
        given.embedding = timestep_embedding  # (1, C0)
        try:  # the timestep passed on only sets the batch size: time_proj returns the given embedding
            return self._unet(sample, torch.zeros(1), encoder_hidden_states, image_embeds)
        finally:
            given.embedding = None


def stage_modules(components: Components, npu: str | None = None) -> dict[str, nn.Module]:
    """Each stage of the contract (`stage_specs(cfg, npu)`) as a module, in contract order
    (`image_encoder` only if present)."""
    order = stage_specs(components.config, npu)  # ValueError for an unknown NPU profile
    unet_stage = UNetEmbeddingStage if TIMESTEP_EMBEDDING in order["unet"].input_names else UNetStage
    modules = {
        "text_encoder": TextEncoderStage(components.text_encoder),
        "vae_encoder": VaeEncoderStage(components.vae),
        "unet": unet_stage(components.unet),
        "vae_decoder": VaeDecoderStage(components.vae),
    }
    if components.image_encoder is not None:
        modules["image_encoder"] = ImageEncoderStage(components.image_encoder)
    return {name: modules[name].eval() for name in order}


def sample_torch_inputs(spec: StageSpec, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The contract's sample inputs as torch tensors, in call order."""
    return tuple(torch.from_numpy(v) for v in spec.sample_inputs(seed).values())
