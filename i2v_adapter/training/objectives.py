"""What each training stage of `i2v_adapter.training.train` trains and the loss it minimises.

Three stages build the trained tiny default, as the paper builds on AnimateDiff (`TrainStage`):

- `vae`: the whole VAE, reconstruction. Every frame of a clip is a sample, cut to a random
  `vae_crop x vae_crop` square (the VAE is convolutional, so crops train it at a quarter of the
  cost); loss = mean |x - decode(z)| with `z` drawn from the posterior, + `kl_weight` x the mean
  per-element KL to N(0, 1). At the end the latent scale is calibrated (`calibrate_latent_scale`)
  so that `scaling_factor x mean` has unit standard deviation, as SD's 0.18215 does for its VAE.
- `t2v`: the base text-to-video model, the spatial UNet and the motion modules (all UNet weights;
  the I2V-Adapter is removed), on the frozen VAE and text encoder. Every frame is noised at one
  timestep per clip; epsilon MSE over all frames. With `first_frame_clean_prob` some clips keep
  frame 0 clean, as the adapter objective does (per clip: `Draws.clean_first`).
- `adapter`: the I2V-Adapter alone (W_Q', W_O'), everything else frozen (paper 4.1). Frame 0 stays
  the clean first-frame latent in the UNet input, as at inference; epsilon MSE over frames 1..F-1.

The randomness of one micro-batch (noise, timesteps, caption dropout, crops) is a function of one
integer seed, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from i2v_adapter.model.adapter import adapter_processors, install_i2v_adapter, is_installed, remove_i2v_adapter
from i2v_adapter.model.components import Components
from i2v_adapter.training.config import TrainConfig, TrainStage
from i2v_core.config import PresetConfig

logger = logging.getLogger(__name__)


@dataclass
class Models:
    """The modules a training step calls; `trained` is the one `accelerator.prepare` wrapped."""

    vae_encoder: nn.Module
    text_encoder: nn.Module
    unet: nn.Module  # UNetStage (the prepared `trained` module in the UNet stages)
    components: Components
    device: torch.device
    dtype: torch.dtype  # of the frozen weights
    trained: nn.Module | None = None


@dataclass
class Draws:
    """The randomness of one micro-batch: `noise (B, 4, F, h, w)`, `timesteps (B,)`, `drop (B,)` bool;
    `clean_first (B,)` bool: the T2V clips whose frame 0 stays clean (None: none)."""

    noise: torch.Tensor
    timesteps: torch.Tensor
    drop: torch.Tensor
    clean_first: torch.Tensor | None = None


def draw(
    cfg: PresetConfig, batch: int, prompt_dropout: float, seed: int, timestep_power: float = 1.0,
    first_frame_clean_prob: float = 0.0,
) -> Draws:
    """Deterministic draws for one micro-batch from an integer `seed`.

    Timesteps are uniform, or with `timestep_power` p != 1 `floor(T * u ** p)` (p < 1: more high-noise steps).
    `first_frame_clean_prob` draws `clean_first` last, so the other draws are those of a run without it.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.unet.in_channels, cfg.num_frames, cfg.latent_height, cfg.latent_width)
    noise = torch.randn(shape, generator=gen)
    total = cfg.scheduler.num_train_timesteps
    if timestep_power == 1.0:
        timesteps = torch.randint(0, total, (batch,), generator=gen)
    else:
        u = torch.rand((batch,), generator=gen, dtype=torch.float64)
        timesteps = (total * u**timestep_power).long().clamp_(max=total - 1)
    drop = torch.rand((batch,), generator=gen) < prompt_dropout
    clean_first = torch.rand((batch,), generator=gen) < first_frame_clean_prob if first_frame_clean_prob else None
    return Draws(noise, timesteps, drop, clean_first)


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """`(B, F, H, W, 3)` uint8 -> `(B*F, 3, H, W)` float32 in [-1, 1]."""
    pixels = frames.flatten(0, 1).permute(0, 3, 1, 2)  # (B, F, H, W, 3) -> (B*F, 3, H, W)
    return pixels.float() / 127.5 - 1.0


def encode_frames(vae_encoder: nn.Module, frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`frames (B, F, H, W, 3)` uint8 -> clean latents `(B, 4, F, h, w)`, as `VaeEncoderStage` computes them."""
    b, f = frames.shape[:2]
    latents = vae_encoder(frames_to_pixels(frames).to(dtype))  # (B*F, 4, h, w)
    return latents.float().unflatten(0, (b, f)).transpose(1, 2)  # -> (B, F, 4, h, w) -> (B, 4, F, h, w)


def encode_captions(models: Models, captions: list[str], drop: torch.Tensor) -> torch.Tensor:
    """`(B, 77, D)` text states; dropped captions become the empty (unconditional) prompt."""
    texts = ["" if dropped else caption for caption, dropped in zip(captions, drop.tolist())]
    ids = models.components.tokenizer.encode_batch(texts).astype(np.int32)  # (B, 77)
    return models.text_encoder(torch.from_numpy(ids).to(models.device))


def noisy_input(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, *,
    first_frame_clean: bool | torch.Tensor = True,
) -> torch.Tensor:
    """`(B, 4, F, h, w)`: every frame noised to its clip's timestep, then (adapter) frame 0 put back clean.

    `first_frame_clean`: for every clip, or a `(B,)` bool mask of the clips that keep it.
    `add_noise` depends only on the betas, which the DDIM inference scheduler shares with training.
    """
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if isinstance(first_frame_clean, torch.Tensor):
        keep = first_frame_clean.to(noisy.device).view(-1, 1, 1, 1)
        noisy[:, :, 0] = torch.where(keep, latents[:, :, 0], noisy[:, :, 0])
    elif first_frame_clean:
        noisy[:, :, 0] = latents[:, :, 0]
    return noisy


def _predicted_frames(first: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`(1 or B, 1, F, 1, 1)` bool: the frames at or after `first` (an int, or `(B,)` per clip) of `like (B, C, F, h, w)`."""
    frames = torch.arange(like.shape[2], device=like.device).view(1, 1, -1, 1, 1)
    if isinstance(first, torch.Tensor):
        return frames >= first.to(like.device).view(-1, 1, 1, 1, 1)
    return frames >= first


def _alpha_bar(scheduler, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`(B, 1, 1, 1, 1)` alpha_bar of each clip's timestep."""
    return scheduler.alphas_cumprod.to(device=like.device, dtype=torch.float32)[timesteps].view(-1, 1, 1, 1, 1)


def prediction_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to output: the noise, or with `v_prediction` the velocity
    `sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x0`."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        a = _alpha_bar(scheduler, timesteps, latents)
        return a.sqrt() * noise - (1.0 - a).sqrt() * latents
    raise ValueError(f"training supports prediction_type 'epsilon' or 'v_prediction', got {kind!r}")


def predicted_clean(scheduler, sample: torch.Tensor, output: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """The clean latent a UNet `output` at `sample` implies, for either prediction type."""
    a = _alpha_bar(scheduler, timesteps, sample)
    if scheduler.config.prediction_type == "v_prediction":
        return a.sqrt() * sample - (1.0 - a).sqrt() * output
    return (sample - (1.0 - a).sqrt() * output) / a.sqrt()


def predicted_noise(scheduler, sample: torch.Tensor, output: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """The noise a UNet `output` at `sample` implies: the output itself, or `sqrt(a) v + sqrt(1 - a) x_t`."""
    if scheduler.config.prediction_type != "v_prediction":
        return output
    a = _alpha_bar(scheduler, timesteps, sample)
    return a.sqrt() * output + (1.0 - a).sqrt() * sample


def leak_free(
    scheduler, sample: torch.Tensor, latents: torch.Tensor, target: torch.Tensor, noise: torch.Tensor,
    timesteps: torch.Tensor, threshold: int, *, first: int | torch.Tensor = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(sample, target)` with the clips at `t >= threshold` made leak-free on frames `first..F-1`
    (`first` an int, or `(B,)` per clip).

    Their input is the noise alone (what DDIM's first step sees) and their target the output that
    maps it to the clean latent: the epsilon `(noise - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)`, or
    the velocity `(sqrt(alpha_bar) noise - x0) / sqrt(1 - alpha_bar)`; other clips keep `sample` and `target`.
    """
    a = _alpha_bar(scheduler, timesteps, latents)
    high = (timesteps >= threshold).view(-1, 1, 1, 1, 1)
    high = high & _predicted_frames(first, latents)
    if scheduler.config.prediction_type == "v_prediction":
        recovering = (a.sqrt() * noise - latents) / (1.0 - a).sqrt()
    else:
        recovering = (noise - a.sqrt() * latents) / (1.0 - a).sqrt()
    return torch.where(high, noise, sample), torch.where(high, recovering, target)


def epsilon_loss(
    noise_pred: torch.Tensor, noise: torch.Tensor, *, first: int | torch.Tensor = 1, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """MSE over frames `first..F-1` of `(B, 4, F, h, w)`: with the adapter frame 0 is the clean condition, never a target.

    `noise` is the target: the noise itself for an epsilon UNet, else what `prediction_target` / `leak_free` give.

    `weights (B,)`: each clip's MSE scaled before the mean over the batch (None: the plain MSE).
    `first` `(B,)`: each clip's first predicted frame; each clip's MSE is over its own frames, then
    the mean over the batch (which is the plain MSE when every clip has the same `first`).
    """
    if isinstance(first, torch.Tensor):
        mask = _predicted_frames(first, noise_pred).float()  # (B, 1, F, 1, 1)
        squared = (noise_pred.float() - noise.float()).pow(2) * mask
        per_frame = noise_pred.shape[1] * noise_pred.shape[3] * noise_pred.shape[4]  # C * h * w
        per_clip = squared.flatten(1).sum(dim=1) / (mask.flatten(1).sum(dim=1) * per_frame)
        return (per_clip * (1.0 if weights is None else weights.to(per_clip))).mean()
    pred, target = noise_pred[:, :, first:].float(), noise[:, :, first:].float()
    if weights is None:
        return F.mse_loss(pred, target)
    per_clip = (pred - target).pow(2).flatten(1).mean(dim=1)  # (B,)
    return (per_clip * weights.to(per_clip)).mean()


def p2_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """`(B,)` P2 loss weights `(1 + SNR(t)) ** -gamma`, SNR = alpha_bar / (1 - alpha_bar)."""
    alpha_bar = scheduler.alphas_cumprod.to(torch.float64)[timesteps.cpu()]
    return ((1.0 + alpha_bar / (1.0 - alpha_bar)) ** -gamma).float()


def v_weights(scheduler, timesteps: torch.Tensor, cap: float) -> torch.Tensor:
    """`(B,)` weights `min(1 + 1 / SNR(t), cap)`: the v-prediction loss of an epsilon model, capped."""
    alpha_bar = scheduler.alphas_cumprod.to(torch.float64)[timesteps.cpu()]
    return (1.0 + (1.0 - alpha_bar) / alpha_bar).clamp(max=cap).float()


def loss_weights(scheduler, timesteps: torch.Tensor, p2_gamma: float = 0.0, v_weight_cap: float | None = None):
    """`(B,)` per-clip weights of the UNet objective (P2 times capped v), or None for the plain loss."""
    weights = p2_weights(scheduler, timesteps, p2_gamma) if p2_gamma else None
    if v_weight_cap is not None:
        v = v_weights(scheduler, timesteps, v_weight_cap)
        weights = v if weights is None else weights * v
    return weights


def training_loss(
    models: Models, frames: torch.Tensor, captions: list[str], draws: Draws, *, condition_on_first_frame: bool = True,
    p2_gamma: float = 0.0, v_weight_cap: float | None = None, pure_noise_from: int | None = None,
) -> torch.Tensor:
    """The UNet objective for one micro-batch (frozen encoders run without gradients).

    `condition_on_first_frame`: the adapter objective (frame 0 clean, no loss on it); `False`: the
    text-to-video objective (all frames noised and predicted).
    `draws.clean_first` (T2V only): the clips that keep frame 0 clean and out of the loss.
    """
    device = models.device
    noise, timesteps = draws.noise.to(device), draws.timesteps.to(device)
    with torch.no_grad():
        latents = encode_frames(models.vae_encoder, frames.to(device), models.dtype)
    text_trains = any(p.requires_grad for p in models.components.text_encoder.parameters())
    with torch.set_grad_enabled(text_trains and torch.is_grad_enabled()):
        states = encode_captions(models, list(captions), draws.drop)
    scheduler = models.components.scheduler
    if condition_on_first_frame or draws.clean_first is None:
        clean, first = condition_on_first_frame, 1 if condition_on_first_frame else 0
    else:  # a T2V batch with some first-frame clips
        clean = draws.clean_first.to(device)
        first = clean.long()
    sample = noisy_input(scheduler, latents, noise, timesteps, first_frame_clean=clean)
    target = prediction_target(scheduler, latents, noise, timesteps)
    if pure_noise_from is not None:
        sample, target = leak_free(scheduler, sample, latents, target, noise, timesteps, pure_noise_from, first=first)
    noise_pred = models.unet(sample, timesteps, states)  # UNetStage: (B, 4, F, h, w)
    weights = loss_weights(scheduler, timesteps, p2_gamma, v_weight_cap)
    return epsilon_loss(noise_pred, target, first=first, weights=weights)


# --------------------------------------------------------------------------------------------------
# VAE
# --------------------------------------------------------------------------------------------------


class VaeReconstruction(nn.Module):
    """`pixels (N, 3, S, S)`, `noise (N, 4, s, s)` -> `(reconstruction, mean, logvar)` (posterior sample)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, pixels: torch.Tensor, noise: torch.Tensor):
        moments = self.vae.quant_conv(self.vae.encoder(pixels))  # (N, 2*4, s, s)
        mean, logvar = moments.chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)  # as diffusers' DiagonalGaussianDistribution
        z = mean + torch.exp(0.5 * logvar) * noise
        return self.vae.decoder(self.vae.post_quant_conv(z)), mean, logvar


def random_crops(pixels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """`(N, 3, H, W)` -> `(N, 3, size, size)`, one random square per image (`size` 0: the whole image)."""
    if size <= 0 or size >= min(pixels.shape[-2:]):
        return pixels
    tops = torch.randint(0, pixels.shape[-2] - size + 1, (pixels.shape[0],), generator=gen).tolist()
    lefts = torch.randint(0, pixels.shape[-1] - size + 1, (pixels.shape[0],), generator=gen).tolist()
    return torch.stack([p[:, t : t + size, l : l + size] for p, t, l in zip(pixels, tops, lefts)])


def vae_loss(models: Models, frames: torch.Tensor, tcfg: TrainConfig, seed: int) -> torch.Tensor:
    """L1 reconstruction of random crops of every frame + `objective.kl_weight` x mean KL(posterior || N(0, 1))."""
    gen = torch.Generator().manual_seed(seed)
    pixels = random_crops(frames_to_pixels(frames), tcfg.objective.vae_crop, gen).to(models.device)  # (B*F, 3, S, S)
    factor = models.components.config.vae.scale_factor
    latent_shape = (pixels.shape[0], models.components.config.vae.latent_channels,
                    pixels.shape[-2] // factor, pixels.shape[-1] // factor)
    noise = torch.randn(latent_shape, generator=gen).to(models.device)
    recon, mean, logvar = models.trained(pixels.to(models.dtype), noise)
    kl = 0.5 * (mean.float().pow(2) + logvar.float().exp() - 1.0 - logvar.float()).mean()
    return F.l1_loss(recon.float(), pixels) + tcfg.objective.kl_weight * kl


@torch.no_grad()
def calibrate_latent_scale(vae: nn.Module, pixels: torch.Tensor) -> float:
    """Rescale the latent space so `scaling_factor x mean` has unit std over `pixels (N, 3, H, W)`.

    The posterior mean is scaled by `s` in `quant_conv` (log-variance shifted by `2 log s`) and
    `post_quant_conv` divides by `s`, so reconstructions are unchanged. Returns the std before.
    """
    moments = vae.quant_conv(vae.encoder(pixels))
    c = vae.config.latent_channels
    std = float(moments[:, :c].std())
    s = 1.0 / (vae.config.scaling_factor * std)
    vae.quant_conv.weight[:c] *= s
    vae.quant_conv.bias[:c] *= s
    vae.quant_conv.bias[c:] += 2.0 * math.log(s)
    vae.post_quant_conv.weight *= 1.0 / s  # (C_out, C_in=4, 1, 1): its input is the latent
    return std


# --------------------------------------------------------------------------------------------------
# Per-stage choices
# --------------------------------------------------------------------------------------------------

WEIGHTS_FILES = {TrainStage.VAE: "vae.safetensors", TrainStage.T2V: "unet.safetensors",
                 TrainStage.ADAPTER: "adapter.safetensors"}
# A `t2v` run with `train_text_encoder`: its text encoder's parameters carry this prefix in the
# stage's parameters and go to their own file.
TEXT_ENCODER_PREFIX = "text_encoder."
TEXT_ENCODER_FILE = "text_encoder.safetensors"


def weights_files(params: dict, stage: TrainStage) -> dict[str, dict]:
    """The stage's parameters (or tensors) split by the file that holds them: `{file name: {key: value}}`."""
    files: dict[str, dict] = {WEIGHTS_FILES[stage]: {}}
    for key, value in params.items():
        if key.startswith(TEXT_ENCODER_PREFIX):
            files.setdefault(TEXT_ENCODER_FILE, {})[key[len(TEXT_ENCODER_PREFIX):]] = value
        else:
            files[WEIGHTS_FILES[stage]][key] = value
    return files


def prepare_stage(components: Components, tcfg: TrainConfig) -> dict[str, nn.Parameter]:
    """Freeze everything, unfreeze the stage's weights; returns them by their key in the weights file.

    `t2v` removes the I2V-Adapter (the base model exactly); `adapter` installs a fresh one on the
    (possibly just loaded) UNet when no `init.adapter` is given: W_Q' a copy of each `to_q`, W_O' zero.
    """
    for module in (components.vae, components.text_encoder, components.unet):
        module.requires_grad_(False).eval()
    stage, unet = tcfg.model.stage, components.unet
    if stage is TrainStage.VAE:
        # The weights file holds the whole VAE; decoder-only leaves the encoder's without gradients.
        module, params = components.vae, dict(components.vae.named_parameters())
        if tcfg.model.vae_decoder_only:
            trained = {k: p for k, p in params.items() if k.startswith(("decoder.", "post_quant_conv."))}
            for p in trained.values():
                p.requires_grad_(True)
            module.train()
            logger.info("stage vae (decoder only): %d trainable parameters, the latent space is frozen",
                        sum(p.numel() for p in trained.values()))
            return params
    elif stage is TrainStage.T2V:
        if is_installed(unet):
            remove_i2v_adapter(unet)
        module, params = unet, dict(unet.named_parameters())
        if tcfg.model.train_text_encoder:
            text = dict(components.text_encoder.named_parameters())
            params.update({TEXT_ENCODER_PREFIX + k: p for k, p in text.items()})
            components.text_encoder.train()
    else:
        if tcfg.init.unet and not tcfg.init.adapter:
            remove_i2v_adapter(unet)
            gen = torch.Generator().manual_seed(tcfg.run.seed)
            install_i2v_adapter(unet, components.config.attention, out_init_std=tcfg.init.adapter_out_std, generator=gen)
        procs = adapter_processors(unet)
        module = unet
        params = {f"{layer}.{key}": p for layer, proc in procs.items() for key, p in proc.named_parameters()}
    for p in params.values():
        p.requires_grad_(True)
    module.train()
    logger.info("stage %s: %d trainable parameters, everything else frozen", stage.value,
                sum(p.numel() for p in params.values()))
    return params


def stage_loss(models: Models, frames: torch.Tensor, captions: list[str], tcfg: TrainConfig, seed: int):
    """The loss of `tcfg.model.stage` for one micro-batch."""
    stage, objective = tcfg.model.stage, tcfg.objective
    if stage is TrainStage.VAE:
        return vae_loss(models, frames, tcfg, seed)
    draws = draw(models.components.config, frames.shape[0], objective.prompt_dropout, seed, objective.timestep_power,
                 objective.first_frame_clean_prob)
    return training_loss(models, frames, captions, draws, condition_on_first_frame=stage is TrainStage.ADAPTER,
                         p2_gamma=objective.p2_gamma, v_weight_cap=objective.v_weight_cap,
                         pure_noise_from=objective.pure_noise_from)


def finish_stage(components: Components, tcfg: TrainConfig, dataset, device) -> dict:
    """End-of-run step: the VAE's latent-scale calibration (on up to 16 clips); returns what it measured."""
    if tcfg.model.stage is not TrainStage.VAE or tcfg.model.vae_decoder_only:
        return {}  # decoder-only: the latent space (and its scale) is what the UNet was trained on
    clips = [dataset[i][0] for i in range(min(16, len(dataset)))]
    frames = torch.from_numpy(np.stack(clips))  # (N, F, H, W, 3)
    vae = components.vae.eval()
    std = calibrate_latent_scale(vae, frames_to_pixels(frames).to(device))
    logger.info("VAE latent std before calibration %.4f; scaled to 1/%.5f", std, vae.config.scaling_factor)
    return {"latent_std_before_calibration": round(std, 6)}
