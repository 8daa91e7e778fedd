"""`RuntimePipeline`: image + prompt -> frames with numpy and a stage runner, no torch.

Step for step the twin of `i2v_adapter.pipeline.I2VPipeline`: VAE-encode the image (frame 0),
encode the negative prompt and the prompt (guidance order [uncond, cond]), start from the Frame
Similarity Prior at the first timestep, step frames 1..F-1 only with classifier-free guidance while
frame 0 stays the clean latent, decode one frame per `vae_decoder` call, and LAB-match colours to
frame 0. Stage calls go through a `StageRunner` (onnxruntime, LiteRT, or Python callables), which
checks every feed against the stage contract.

Randomness comes from `numpy.random.default_rng(seed)`: mask, then noise, then (LCM only) the noise
between steps. Its stream differs from torch's, so the same seed gives a different video from the
PyTorch pipeline; to compare the two, draw `noise` and `mask` once and pass them to both.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from i2v_core import media, values
from i2v_core.bundle import load_manifest, tokenizer_path, verify_bundle
from i2v_core.colour import colour_match
from i2v_core.config import FSPConfig, PresetConfig, SamplingConfig, SchedulerConfig, get_preset
from i2v_core.preprocess import check_rgb_uint8, clip_pixel_values, image_to_unit_range, unit_range_to_uint8
from i2v_core.stages import StageSpec, timestep_feeds
from i2v_core.tokenizer import CLIPTokenizer
from runtime_py.fsp import frame_similarity_prior
from runtime_py.runners import StageRunner, bundle_backend, bundle_runner
from runtime_py.schedulers import Scheduler, make_scheduler

logger = logging.getLogger(__name__)

REQUIRED_STAGES = ("text_encoder", "vae_encoder", "unet", "vae_decoder")


@dataclass
class RuntimeOutput:
    """`frames (F, H, W, 3)` uint8; `latents (1, 4, F, h, w)` float32 final latents; the timesteps visited."""

    frames: np.ndarray
    latents: np.ndarray
    timesteps: list[int | float]


@dataclass
class Conditioning:
    """Guidance batch order is [unconditional, conditional] throughout."""

    text_states: np.ndarray  # (2B, 77, D)
    image_states: np.ndarray | None  # (2B, T, Dv) with the content adapter
    first_latent: np.ndarray  # (B, 4, h, w)


class RuntimePipeline:
    """Image-to-video from exported stages, one video at a time (`batch_size` 1).

    `specs`: the stage contract of the bundle (shapes are read from it, never restated);
    `runner`: executes stages by name; `tokenizer`: anything with `encode(text) -> (77,)` ids
    (`i2v_core.tokenizer.CLIPTokenizer`); `cfg`: the preset, for its sampling, FSP and scheduler
    defaults.
    """

    def __init__(self, specs: dict[str, StageSpec], runner: StageRunner, tokenizer, cfg: PresetConfig):
        missing = [name for name in REQUIRED_STAGES if name not in specs]
        if missing:
            raise ValueError(f"RuntimePipeline needs stages {list(REQUIRED_STAGES)}; missing {missing}")
        b2, _, frames, _, _ = specs["unet"].inputs[0].shape  # sample (2B, C, F, h, w)
        if b2 != 2:
            raise ValueError(
                f"RuntimePipeline generates one video at a time: expected unet batch 2 (uncond, cond), got {b2}"
            )
        if frames != cfg.num_frames:
            raise ValueError(f"preset {cfg.name!r} has {cfg.num_frames} frames but the unet stage takes {frames}")
        self.specs = specs
        self.runner = runner
        self.tokenizer = tokenizer
        self.config = cfg

    @classmethod
    def from_bundle(
        cls, directory: str | os.PathLike, backend: str | None = None, *, threads: int | None = None, verify: bool = True
    ) -> "RuntimePipeline":
        """A pipeline over an export bundle: files checked against the manifest's sha256 (unless
        `verify=False`), specs and defaults from the manifest, tokenizer from the bundle's copy.
        Every file is opened through a checked path (`i2v_core.bundle.bundle_path`), also unverified.
        `backend` None: the bundle's own target when it has one, else `onnx` (`bundle_backend`)."""
        manifest = verify_bundle(directory) if verify else load_manifest(directory)
        runner = bundle_runner(directory, manifest, bundle_backend(manifest, backend), threads=threads)
        tokenizer = CLIPTokenizer.from_files(*(tokenizer_path(directory, manifest, n) for n in ("vocab.json", "merges.txt")))
        return cls(runner.specs, runner, tokenizer, preset_from_manifest(manifest))

    @property
    def image_size(self) -> tuple[int, int]:
        """`(H, W)` of the input image, from the `vae_encoder` contract."""
        _, _, height, width = self.specs["vae_encoder"].inputs[0].shape
        return height, width

    def run_stage(self, name: str, **feeds: np.ndarray) -> np.ndarray:
        """One stage call by the contract's input names; returns its first (here: only) output."""
        outputs = self.runner.run(name, feeds)
        return outputs[self.specs[name].output_names[0]]

    def load_image(self, image) -> np.ndarray:
        """A path or an `(H, W, 3)` uint8 array -> `(H, W, 3)` uint8 at the contract's size."""
        height, width = self.image_size
        if isinstance(image, (str, Path)):
            return media.load_image(image, height=height, width=width)
        check_rgb_uint8(image, height, width)
        return image

    def encode_prompts(self, prompt: str, negative_prompt: str) -> np.ndarray:
        """`(2, 77, D)` text states, [negative, prompt]."""
        states = []
        for text in (negative_prompt, prompt):
            ids = np.asarray(self.tokenizer.encode(text), dtype=np.int32)[None]  # (77,) -> (1, 77)
            states.append(self.run_stage("text_encoder", input_ids=ids))
        return np.concatenate(states)

    def encode_image_states(self, image: np.ndarray) -> np.ndarray | None:
        """`(2, T, Dv)` content-adapter states, [zero image, image], or None without the adapter."""
        if "image_encoder" not in self.specs:
            return None
        size = self.specs["image_encoder"].inputs[0].shape[-1]  # pixel_values (B, 3, S, S)
        pixels = clip_pixel_values(image, size)
        states = [self.run_stage("image_encoder", pixel_values=p) for p in (np.zeros_like(pixels), pixels)]
        return np.concatenate(states)

    def condition(self, image: np.ndarray, prompt: str, negative_prompt: str) -> Conditioning:
        first = self.run_stage("vae_encoder", image=image_to_unit_range(image))
        return Conditioning(self.encode_prompts(prompt, negative_prompt), self.encode_image_states(image), first)

    def make_scheduler(self, scheduler: str | Scheduler) -> Scheduler:
        """A fresh scheduler by name for the preset's training schedule, or the one given."""
        if isinstance(scheduler, Scheduler):
            return scheduler
        return make_scheduler(scheduler, self.config.scheduler)

    @staticmethod
    def timesteps(scheduler: Scheduler, num_inference_steps: int, fsp: FSPConfig) -> np.ndarray:
        """The schedule, without its first steps when FSP `strength` < 1."""
        scheduler.set_timesteps(num_inference_steps)
        skip = int(round(num_inference_steps * (1.0 - fsp.strength))) if fsp.enabled else 0
        return scheduler.timesteps[skip:]

    def initial_latents(
        self,
        first_latent: np.ndarray,
        scheduler: Scheduler,
        timesteps: np.ndarray,
        fsp: FSPConfig,
        rng: np.random.Generator,
        noise: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """`(1, 4, F, h, w)`: FSP start (or pure noise without it), frame 0 the clean latent.

        `noise` and `mask` (`(1, 4, F, h, w)`) replace the draws from `rng`; `mask` is used only with FSP.
        """
        f = self.config.num_frames
        if fsp.enabled:
            latents = frame_similarity_prior(
                first_latent, f, scheduler, timesteps[0], fsp, rng=rng, noise=noise, mask=mask
            )
        else:
            b, c, h, w = first_latent.shape
            if noise is None:
                noise = rng.standard_normal((b, c, f, h, w), dtype=np.float32)
            elif noise.shape != (b, c, f, h, w):
                raise ValueError(f"expected initial noise of shape {(b, c, f, h, w)}, got {noise.shape}")
            latents = noise.astype(np.float32) * np.float32(scheduler.init_noise_sigma)
        latents[:, :, 0] = first_latent
        return latents

    def denoise_step(
        self,
        latents: np.ndarray,
        t,
        cond: Conditioning,
        guidance_scale: float,
        scheduler: Scheduler,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """One guided step on frames 1..F-1; frame 0 is fed and kept clean (never input-scaled).

        The UNet gets `timestep (1,)` or, under an NPU profile's contract, `timestep_embedding (1, C0)`
        computed here in numpy (`i2v_core.stages.timestep_feeds`)."""
        moving = scheduler.scale_model_input(latents[:, :, 1:], t)
        model_in = np.concatenate([latents[:, :, :1], moving], axis=2)
        feeds = {
            "sample": np.concatenate([model_in, model_in]),  # (1, 4, F, h, w) -> (2, 4, F, h, w)
            **timestep_feeds(self.specs["unet"], t),  # the timestep, or its embedding where the contract asks
            "encoder_hidden_states": cond.text_states,
        }
        if cond.image_states is not None:
            feeds["image_embeds"] = cond.image_states
        noise_pred = self.run_stage("unet", **feeds)
        noise_uncond, noise_cond = noise_pred[:1], noise_pred[1:]  # (2, 4, F, h, w) -> 2 x (1, 4, F, h, w)
        guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        stepped = scheduler.step(guided[:, :, 1:], t, latents[:, :, 1:], generator=rng)
        return np.concatenate([latents[:, :, :1], stepped], axis=2)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """`(1, 4, F, h, w)` -> `(F, H, W, 3)` uint8, one `vae_decoder` call per frame."""
        frames = [
            self.run_stage("vae_decoder", latent=np.ascontiguousarray(latents[:, :, i]))  # (1, 4, h, w)
            for i in range(latents.shape[2])
        ]
        return unit_range_to_uint8(np.concatenate(frames))

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
        scheduler: str | Scheduler = "ddim",
        progress: bool = True,
        noise: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> RuntimeOutput:
        """Generate `num_frames` frames. Defaults (`None`) come from the preset's sampling and FSP configs.

        `num_inference_steps` >= 1, `guidance_scale` finite and >= 0, `seed` in [0, 2**32 - 1]; anything
        else is a `ValueError` naming the argument (`i2v_core.values.sampling`).
        `scheduler`: `ddim` (the reference), `euler`, `lcm`, or a scheduler instance.
        `noise`, `mask`: `(1, 4, F, h, w)` float32 initial draws, to match another implementation.
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

        rng = np.random.default_rng(seed)
        sched = self.make_scheduler(scheduler)
        timesteps = self.timesteps(sched, steps, fsp)
        logger.debug("%s: timesteps %s of %d steps, guidance %.2f", sched.name, timesteps.tolist(), steps, guidance)
        latents = self.initial_latents(cond.first_latent, sched, timesteps, fsp, rng, noise, mask)
        for t in tqdm(timesteps, desc="denoising", disable=not progress, leave=False):
            latents = self.denoise_step(latents, t, cond, guidance, sched, rng)

        frames = self.decode(latents)
        if sampling.color_match if color_match is None else color_match:
            frames = colour_match(frames)
        return RuntimeOutput(frames=frames, latents=latents, timesteps=[t.item() for t in timesteps])


def _fields(cls, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def preset_from_manifest(manifest: dict) -> PresetConfig:
    """The bundle's preset: the named preset at the exported frames and size, with the manifest's
    scheduler, FSP and sampling defaults."""
    exported = manifest["preset"]["config"]
    cfg = get_preset(manifest["preset"]["name"])
    return cfg.with_overrides(
        num_frames=exported["num_frames"],
        height=exported["height"],
        width=exported["width"],
        scheduler=SchedulerConfig(**_fields(SchedulerConfig, manifest.get("scheduler", exported["scheduler"]))),
        fsp=FSPConfig(**_fields(FSPConfig, manifest.get("fsp", exported["fsp"]))),
        sampling=SamplingConfig(**_fields(SamplingConfig, manifest.get("sampling", exported["sampling"]))),
    )
