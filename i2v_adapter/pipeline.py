"""`I2VPipeline`: image + prompt -> F frames, the PyTorch reference of the phone pipeline.

Steps: VAE-encode the image (frame 0), encode the prompt and negative prompt (and the image, with
the content adapter), start from the Frame Similarity Prior, run DDIM with classifier-free guidance
stepping frames 1..F-1 only (frame 0 stays the clean latent), decode each frame, optionally match
colours to frame 0 in LAB. Every model call goes through the stage modules that export converts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from i2v_adapter.checkpoints.shipped import default_components
from i2v_adapter.model.components import Components
from i2v_adapter.model.fsp import frame_similarity_prior
from i2v_adapter.model.stage_modules import stage_modules
from i2v_core import media, values
from i2v_core.colour import colour_match
from i2v_core.config import FSPConfig, PresetConfig
from i2v_core.preprocess import check_rgb_uint8, clip_pixel_values, image_to_unit_range, unit_range_to_uint8
from i2v_core.stages import stage_specs

logger = logging.getLogger(__name__)


@dataclass
class PipelineOutput:
    """`frames (F, H, W, 3)` uint8; `latents (1, 4, F, h, w)` float32 final latents."""

    frames: np.ndarray
    latents: torch.Tensor
    timesteps: list[int]


@dataclass
class Conditioning:
    """Guidance batch order is [unconditional, conditional] throughout."""

    text_states: torch.Tensor  # (2B, 77, D)
    image_states: torch.Tensor | None  # (2B, T, Dv) with the content adapter
    first_latent: torch.Tensor  # (B, 4, h, w)


class I2VPipeline:
    """Image-to-video with the I2V-Adapter, for one image at a time (`batch_size` 1)."""

    def __init__(self, components: Components):
        cfg = components.config
        if cfg.batch_size != 1:
            raise ValueError(f"I2VPipeline generates one video at a time: expected batch_size 1, got {cfg.batch_size}")
        self.components = components
        self.config: PresetConfig = cfg
        self.stages = stage_modules(components)
        self.specs = stage_specs(cfg)

    @classmethod
    def from_preset(cls, cfg: PresetConfig, *, random_weights: bool = False) -> "I2VPipeline":
        """The preset's own weights: trained where shipped (the tiny default), else seeded random."""
        return cls(default_components(cfg, random_weights=random_weights))

    def run_stage(self, name: str, *inputs: torch.Tensor) -> torch.Tensor:
        """One stage call, inputs checked against the contract first."""
        spec = self.specs[name]
        spec.check_inputs(dict(zip(spec.input_names, inputs)))
        return self.stages[name](*inputs)

    def load_image(self, image) -> np.ndarray:
        """A path, a PIL image or an `(H, W, 3)` uint8 array -> `(H, W, 3)` uint8 at the preset size."""
        cfg = self.config
        if isinstance(image, (str, Path)):
            return media.load_image(image, height=cfg.height, width=cfg.width)
        if not isinstance(image, np.ndarray):
            return media.image_to_array(image, height=cfg.height, width=cfg.width)
        check_rgb_uint8(image, cfg.height, cfg.width)
        return image

    def encode_prompts(self, prompt: str, negative_prompt: str) -> torch.Tensor:
        """`(2, 77, D)` text states, [negative, prompt]."""
        tok = self.components.tokenizer
        states = []
        for text in (negative_prompt, prompt):
            ids = torch.from_numpy(tok.encode(text).astype(np.int32))[None]  # (77,) -> (1, 77)
            states.append(self.run_stage("text_encoder", ids))
        return torch.cat(states)

    def encode_image_states(self, image: np.ndarray) -> torch.Tensor | None:
        """`(2, T, Dv)` content-adapter states, [zero image, image], or None without the adapter."""
        ic = self.config.image_encoder
        if ic is None:
            return None
        pixels = torch.from_numpy(clip_pixel_values(image, ic.image_size))
        return torch.cat([self.run_stage("image_encoder", torch.zeros_like(pixels)), self.run_stage("image_encoder", pixels)])

    def condition(self, image: np.ndarray, prompt: str, negative_prompt: str) -> Conditioning:
        first = self.run_stage("vae_encoder", torch.from_numpy(image_to_unit_range(image)))
        return Conditioning(self.encode_prompts(prompt, negative_prompt), self.encode_image_states(image), first)

    def timesteps(self, num_inference_steps: int, fsp: FSPConfig) -> torch.Tensor:
        scheduler = self.components.scheduler
        scheduler.set_timesteps(num_inference_steps)
        skip = int(round(num_inference_steps * (1.0 - fsp.strength))) if fsp.enabled else 0
        return scheduler.timesteps[skip:]

    def initial_latents(
        self, first_latent, timesteps, fsp: FSPConfig, generator: torch.Generator, noise=None, mask=None
    ) -> torch.Tensor:
        """`(1, 4, F, h, w)`: FSP start (or pure noise without it), frame 0 the clean latent.

        `noise` and `mask` (`(1, 4, F, h, w)`) replace the draws from `generator`, so another
        implementation (the numpy runtime) can be compared on identical randomness.
        """
        f = self.config.num_frames
        if fsp.enabled:
            latents = frame_similarity_prior(
                first_latent, f, self.components.scheduler, timesteps[0], fsp, generator=generator, noise=noise, mask=mask
            )
        else:
            b, c, h, w = first_latent.shape
            if noise is None:
                noise = torch.randn((b, c, f, h, w), generator=generator)
            latents = noise * self.components.scheduler.init_noise_sigma
        latents[:, :, 0] = first_latent
        return latents

    def denoise_step(self, latents, t, cond: Conditioning, guidance_scale: float) -> torch.Tensor:
        """One DDIM step with guidance on frames 1..F-1; frame 0 is left clean."""
        model_in = torch.cat([latents, latents])  # (1, 4, F, h, w) -> (2, 4, F, h, w)
        inputs = [model_in, t.reshape(1).float(), cond.text_states]
        if cond.image_states is not None:
            inputs.append(cond.image_states)
        noise_uncond, noise_cond = self.run_stage("unet", *inputs).chunk(2)
        guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        stepped = self.components.scheduler.step(guided[:, :, 1:], t, latents[:, :, 1:]).prev_sample
        return torch.cat([latents[:, :, :1], stepped], dim=2)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """`(1, 4, F, h, w)` -> `(F, H, W, 3)` uint8, one `vae_decoder` call per frame."""
        frames = [self.run_stage("vae_decoder", latents[:, :, i]) for i in range(latents.shape[2])]
        return unit_range_to_uint8(torch.cat(frames).numpy())

    @torch.no_grad()
    def __call__(
        self,
        image,
        prompt: str,
        negative_prompt: str | None = None,
        *,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int = 0,
        fsp: FSPConfig | None = None,
        color_match: bool | None = None,
        progress: bool = True,
        noise: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> PipelineOutput:
        """Generate `num_frames` frames. Defaults (`None`) come from the preset's sampling and FSP configs.

        `num_inference_steps` >= 1, `guidance_scale` finite and >= 0, `seed` in [0, 2**32 - 1]; anything
        else is a `ValueError` naming the argument (`i2v_core.values.sampling`).
        """
        cfg = self.config
        sampling = cfg.sampling
        values.sampling(num_inference_steps, guidance_scale, seed)  # None: the preset's default
        steps = sampling.num_inference_steps if num_inference_steps is None else num_inference_steps
        guidance = sampling.guidance_scale if guidance_scale is None else guidance_scale
        fsp = fsp or cfg.fsp
        fsp.verify()
        pixels = self.load_image(image)
        cond = self.condition(pixels, prompt, sampling.negative_prompt if negative_prompt is None else negative_prompt)

        generator = torch.Generator().manual_seed(seed)
        timesteps = self.timesteps(steps, fsp)
        latents = self.initial_latents(cond.first_latent, timesteps, fsp, generator, noise, mask)
        for t in tqdm(timesteps, desc="denoising", disable=not progress, leave=False):
            latents = self.denoise_step(latents, t, cond, guidance)

        frames = self.decode(latents)
        if sampling.color_match if color_match is None else color_match:
            frames = colour_match(frames)
        return PipelineOutput(frames=frames, latents=latents, timesteps=[int(t) for t in timesteps])


def with_fsp(cfg: FSPConfig, **changes) -> FSPConfig:
    """A verified copy of an FSP config with fields replaced (`enabled=False`, `mask_p=1.0`, ...)."""
    out = replace(cfg, **changes)
    out.verify()
    return out
