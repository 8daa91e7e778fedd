"""`python -m i2v_adapter.train`: adapter-only training of the I2V-Adapter (paper 4.1) with `accelerate`.

    python -m i2v_adapter.train --config configs/tiny_adapter.json --data synthetic --out runs/tiny
    python -m i2v_adapter.train --config CONFIG --data DIR --out runs/x --resume   # continue from the latest checkpoint

The same script runs on one CPU (here), one GPU, or many GPUs and nodes through Hugging Face
`accelerate`: `accelerate launch --multi_gpu --num_processes 8 -m i2v_adapter.train --config ...`
(add `--num_machines`, `--machine_rank`, `--main_process_ip` for several nodes; `accelerate config`
writes these once). `batch_size` in the config is per process. On a CPU shared with other jobs,
`OMP_NUM_THREADS=1` can be several times faster than torch's default of one thread per core.

Objective (paper 4.1): VAE, text encoder, base UNet and motion modules frozen; only W_Q' and W_O'
train (AdamW, fixed learning rate). Every frame of a clip is VAE-encoded (posterior mean x scaling
factor, as `VaeEncoderStage`); frames 1..F-1 are noised at one random timestep per clip with the
preset's training schedule, frame 0 stays the clean first-frame latent in the UNet input, as at
inference; the loss is the epsilon MSE over frames 1..F-1 only. Captions go through the text encoder
(`TextEncoderStage`), replaced by "" with probability `prompt_dropout` for classifier-free guidance.

Randomness (noise, timesteps, caption dropout) is a function of `(seed, micro-batch, process)` and
the clip order of `(seed, position)` (`data.StepSampler`), so a resumed run repeats an uninterrupted
one without saving any RNG state.

Output folder: `checkpoint-<step>/` with `adapter.safetensors`, `optimizer.safetensors`,
`trainer_state.json` (step, per-step losses, time) and `train_config.json`; at the end
`adapter.safetensors`, `trainer_state.json`, `train_config.json`. Every file and checkpoint folder is
written atomically. Not `accelerator.save_state`: in accelerate 1.15 it writes the model as
safetensors (the whole UNet, not the adapter), but the optimizer as `optimizer.bin` (`torch.save`, a
pickle) and RNG states as `random_states_<rank>.pkl` (pickles). This project never loads pickles, so
the AdamW state is saved here as safetensors tensors plus JSON (param groups, scaler) in the header.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin
from safetensors import safe_open
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .adapter import adapter_processors, check_state_dict, freeze_all_but_adapter, load_i2v_adapter, save_i2v_adapter
from .checkpoints import load_safetensors, save_safetensors
from .config import PresetConfig
from .data import StepSampler, SyntheticClips, VideoFolderDataset
from .errors import CheckpointError
from .media import atomic_output_dir, atomic_write_bytes
from .models import Components, build_components
from .stage_modules import TextEncoderStage, UNetStage, VaeEncoderStage
from .train_config import TrainConfig, TrainStage

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_CHECKPOINT_FILES = ("adapter.safetensors", "optimizer.safetensors", "trainer_state.json")


# --------------------------------------------------------------------------------------------------
# Model and objective
# --------------------------------------------------------------------------------------------------


def build_model(tcfg: TrainConfig) -> Components:
    """The preset's components, frozen except the adapter (from local checkpoints where the config names them)."""
    if tcfg.stage is not TrainStage.ADAPTER:
        raise ValueError(f"training stage {tcfg.stage.value!r} is not implemented: expected 'adapter'")
    cfg = tcfg.preset_config()
    if tcfg.sd15 or tcfg.motion_module or tcfg.init_adapter:
        from .checkpoints import load_components

        components = load_components(
            cfg, sd15=tcfg.sd15, motion_module=tcfg.motion_module, i2v_adapter=tcfg.init_adapter
        )
    else:
        components = build_components(cfg)
    components.vae.requires_grad_(False).eval()
    components.text_encoder.requires_grad_(False).eval()
    trainable = freeze_all_but_adapter(components.unet)
    components.unet.train()
    logger.info("training the I2V-Adapter: %d trainable parameters, everything else frozen", trainable)
    return components


def named_adapter_parameters(unet: nn.Module) -> dict[str, nn.Parameter]:
    """The trainable parameters by their key in `adapter.safetensors`, in optimizer order."""
    procs = adapter_processors(unet)
    return {f"{layer}.{key}": p for layer, proc in procs.items() for key, p in proc.named_parameters()}


@dataclass
class Models:
    """The stage modules a training step calls (`unet` may be wrapped by `accelerator.prepare`)."""

    vae_encoder: nn.Module
    text_encoder: nn.Module
    unet: nn.Module
    components: Components
    device: torch.device
    dtype: torch.dtype  # of the frozen weights


@dataclass
class Draws:
    """The randomness of one micro-batch: `noise (B, 4, F, h, w)`, `timesteps (B,)`, `drop (B,)` bool."""

    noise: torch.Tensor
    timesteps: torch.Tensor
    drop: torch.Tensor


def draw(cfg: PresetConfig, batch: int, prompt_dropout: float, seed: int) -> Draws:
    """Deterministic draws for one micro-batch from an integer `seed`."""
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.unet.in_channels, cfg.num_frames, cfg.latent_height, cfg.latent_width)
    noise = torch.randn(shape, generator=gen)
    timesteps = torch.randint(0, cfg.scheduler.num_train_timesteps, (batch,), generator=gen)
    drop = torch.rand((batch,), generator=gen) < prompt_dropout
    return Draws(noise, timesteps, drop)


def micro_batch_seed(seed: int, micro_batch: int, process: int) -> int:
    return int(np.random.SeedSequence([seed, micro_batch, process]).generate_state(1)[0])


def encode_frames(vae_encoder: nn.Module, frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`frames (B, F, H, W, 3)` uint8 -> clean latents `(B, 4, F, h, w)`, as `VaeEncoderStage` computes them."""
    b, f = frames.shape[:2]
    pixels = frames.flatten(0, 1).permute(0, 3, 1, 2)  # (B, F, H, W, 3) -> (B*F, 3, H, W)
    latents = vae_encoder((pixels.float() / 127.5 - 1.0).to(dtype))  # (B*F, 4, h, w)
    return latents.float().unflatten(0, (b, f)).transpose(1, 2)  # -> (B, F, 4, h, w) -> (B, 4, F, h, w)


def encode_captions(models: Models, captions: list[str], drop: torch.Tensor) -> torch.Tensor:
    """`(B, 77, D)` text states; dropped captions become the empty (unconditional) prompt."""
    texts = ["" if dropped else caption for caption, dropped in zip(captions, drop.tolist())]
    ids = models.components.tokenizer.encode_batch(texts).astype(np.int32)  # (B, 77)
    return models.text_encoder(torch.from_numpy(ids).to(models.device))


def noisy_input(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """`(B, 4, F, h, w)`: every frame noised to its clip's timestep, then frame 0 put back clean.

    `add_noise` depends only on the betas, which the DDIM inference scheduler shares with training.
    """
    noisy = scheduler.add_noise(latents, noise, timesteps)
    noisy[:, :, 0] = latents[:, :, 0]
    return noisy


def epsilon_loss(noise_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """MSE over frames 1..F-1 of `(B, 4, F, h, w)`: frame 0 is the clean condition, never a target."""
    return F.mse_loss(noise_pred[:, :, 1:].float(), noise[:, :, 1:].float())


def training_loss(models: Models, frames: torch.Tensor, captions: list[str], draws: Draws) -> torch.Tensor:
    """The adapter objective for one micro-batch (frozen encoders run without gradients)."""
    device = models.device
    noise, timesteps = draws.noise.to(device), draws.timesteps.to(device)
    with torch.no_grad():
        latents = encode_frames(models.vae_encoder, frames.to(device), models.dtype)
        states = encode_captions(models, list(captions), draws.drop)
    sample = noisy_input(models.components.scheduler, latents, noise, timesteps)
    noise_pred = models.unet(sample, timesteps, states)  # UNetStage: (B, 4, F, h, w)
    return epsilon_loss(noise_pred, noise)


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainerState:
    step: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each optimizer step, step 1 first
    seconds: float = 0.0  # training-loop time over all sessions of the run
    skipped_clips: int = 0

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=1) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> "TrainerState":
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            losses = [float(x) for x in data["losses"]]
            return cls(int(data["step"]), losses, float(data["seconds"]), int(data.get("skipped_clips", 0)))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{path}: expected step, losses and seconds, found keys {sorted(data)} ({err})"
            ) from None


def save_optimizer_state(optimizer, names: list[str], path: Path, scaler=None) -> None:
    """AdamW state as safetensors: `<param key>.<field>` tensors; param groups and scaler as JSON metadata."""
    sd = optimizer.state_dict()
    tensors = {f"{names[i]}.{k}": v for i, fields in sd["state"].items() for k, v in fields.items()}
    groups = [{**g, "params": [names[i] for i in g["params"]]} for g in sd["param_groups"]]
    meta = {"format": "i2v-adapter-optimizer", "optimizer": "AdamW", "param_groups": json.dumps(groups)}
    if scaler is not None:
        meta["scaler"] = json.dumps(scaler.state_dict())
    save_safetensors(tensors, path, metadata=meta)


def load_optimizer_state(optimizer, params: dict[str, nn.Parameter], path: Path, scaler=None) -> None:
    """Inverse of `save_optimizer_state`; keys, shapes and parameter names are checked by name."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "i2v-adapter-optimizer":
        raise CheckpointError(f"{path}: expected an i2v-adapter optimizer state, found format {meta.get('format')!r}")
    tensors, names = load_safetensors(path), list(params)
    fields = ("step", "exp_avg", "exp_avg_sq")
    expected = {f"{n}.{k}": (tuple(p.shape) if k != "step" else ()) for n, p in params.items() for k in fields}
    check_state_dict(tensors, expected, what=f"optimizer state {path}")
    saved_names = [n for g in json.loads(meta["param_groups"]) for n in g["params"]]
    if saved_names != names:
        raise CheckpointError(f"{path}: optimizer parameters do not match the adapter's, in name or order")
    state = {i: {k: tensors[f"{n}.{k}"] for k in fields} for i, n in enumerate(names)}
    # Hyperparameters (lr, betas, ...) come from the config in force, not from the file.
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    if scaler is not None and "scaler" in meta:
        scaler.load_state_dict(json.loads(meta["scaler"]))


def find_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """`checkpoint-<step>` folders of `out`, by step (incomplete ones included)."""
    if not out.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name)))


def checkpoint_to_resume(out: Path, resume: bool) -> Path | None:
    """The latest complete checkpoint when resuming; refuse to start over an existing run otherwise."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"expected --out to be a folder, found a file: {out}")
    checkpoints = find_checkpoints(out)
    if not resume:
        if checkpoints or (out / "adapter.safetensors").exists():
            names = ", ".join(p.name for _, p in checkpoints[-3:]) or "adapter.safetensors"
            raise FileExistsError(
                f"output folder {out} already holds a training run ({names}): pass --resume to continue it "
                "from its latest checkpoint, or choose another --out"
            )
        return None
    complete = [p for _, p in checkpoints if all((p / name).is_file() for name in _CHECKPOINT_FILES)]
    if not complete:
        logger.warning("--resume: no complete checkpoint in %s; starting a new run", out)
        return None
    return complete[-1]


def _warn_config_changes(path: Path, tcfg: TrainConfig) -> None:
    """Resuming with other settings is allowed (e.g. more steps) but said out loud."""
    if not path.is_file():
        return
    saved, now = json.loads(path.read_text(encoding="utf-8")), tcfg.to_dict()
    changed = sorted(k for k in now if k != "max_steps" and saved.get(k) != now[k])
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        logger.warning("resuming with settings that differ from %s: %s", path, diffs)


def _write_json(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, overwrite=True)


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything a training loop holds; `train()` returns it (tests inspect `components`)."""

    tcfg: TrainConfig
    accelerator: Accelerator
    models: Models
    params: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer
    state: TrainerState

    @property
    def components(self) -> Components:
        return self.models.components

    @property
    def unet(self) -> nn.Module:
        """The UNet itself (unwrapped from DDP / autocast wrappers)."""
        return self.accelerator.unwrap_model(self.models.unet).unet


def setup_run(tcfg: TrainConfig, checkpoint: Path | None = None) -> Run:
    """Accelerator, frozen model, AdamW over the adapter; restored from `checkpoint` if given."""
    accelerator = Accelerator(
        mixed_precision=tcfg.mixed_precision.value,
        # Accumulation windows run across passes over the data, so a step is always N micro-batches.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=tcfg.gradient_accumulation_steps, sync_with_dataloader=False
        ),
    )
    if tcfg.mixed_precision.value != "no" and not accelerator.native_amp:
        raise ValueError(
            f"mixed_precision {tcfg.mixed_precision.value!r} is not available on {accelerator.device.type} "
            "(accelerate would silently train in float32): use 'bf16' or 'no' on a CPU, 'fp16' on a GPU"
        )
    components = build_model(tcfg)
    state = TrainerState()
    if checkpoint is not None:
        load_i2v_adapter(components.unet, checkpoint / "adapter.safetensors")
        state = TrainerState.read(checkpoint / "trainer_state.json")
        _warn_config_changes(checkpoint / "train_config.json", tcfg)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    # Frozen weights in the low-precision dtype (memory); the trained ones stay float32 for AdamW.
    for module in (components.vae, components.text_encoder, components.unet):
        module.to(accelerator.device)
        if dtype != torch.float32:
            module.to(dtype=dtype)
    params = named_adapter_parameters(components.unet)
    for p in params.values():
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=tcfg.learning_rate, betas=(tcfg.adam_beta1, tcfg.adam_beta2),
        eps=tcfg.adam_epsilon, weight_decay=tcfg.weight_decay,
    )
    unet, optimizer = accelerator.prepare(UNetStage(components.unet), optimizer)
    if checkpoint is not None:
        load_optimizer_state(optimizer, params, checkpoint / "optimizer.safetensors", accelerator.scaler)
        logger.info("resuming from %s at step %d", checkpoint, state.step)
    encoders = VaeEncoderStage(components.vae), TextEncoderStage(components.text_encoder)
    models = Models(*encoders, unet, components, accelerator.device, dtype)
    return Run(tcfg, accelerator, models, params, optimizer, state)


def make_dataset(data: str | Path, tcfg: TrainConfig):
    """`"synthetic"` -> `SyntheticClips`; a folder -> `VideoFolderDataset`, at the preset's size and frame count."""
    cfg = tcfg.preset_config()
    size = dict(num_frames=cfg.num_frames, height=cfg.height, width=cfg.width)
    if str(data) == "synthetic":
        return SyntheticClips(tcfg.synthetic_clips, seed=tcfg.seed, **size)
    return VideoFolderDataset(data, **size)


def make_loader(run: Run, dataset) -> DataLoader:
    """The clips of the remaining micro-batches, continuing the run's clip stream where it stopped."""
    tcfg, acc = run.tcfg, run.accelerator
    per_micro = tcfg.batch_size * acc.num_processes
    done = run.state.step * tcfg.gradient_accumulation_steps
    remaining = max(0, tcfg.max_steps - run.state.step) * tcfg.gradient_accumulation_steps
    sampler = StepSampler(len(dataset), seed=tcfg.seed, start=done * per_micro, length=remaining * per_micro)
    loader = DataLoader(
        dataset, batch_size=tcfg.batch_size, sampler=sampler, num_workers=tcfg.num_workers, drop_last=True
    )
    return acc.prepare(loader)


def save_checkpoint(run: Run, folder: Path) -> None:
    """One complete checkpoint folder, written atomically by the main process."""
    if run.accelerator.is_main_process:
        with atomic_output_dir(folder) as tmp:
            save_i2v_adapter(run.unet, tmp / "adapter.safetensors")
            save_optimizer_state(run.optimizer, list(run.params), tmp / "optimizer.safetensors", run.accelerator.scaler)
            _write_json(tmp / "trainer_state.json", run.state.to_json())
            _write_json(tmp / "train_config.json", (json.dumps(run.tcfg.to_dict(), indent=1) + "\n").encode())
    run.accelerator.wait_for_everyone()


def train_micro_batch(run: Run, frames: torch.Tensor, captions: list[str], micro_batch: int) -> torch.Tensor:
    """Forward, backward and (at the end of an accumulation window) one optimizer step."""
    tcfg, acc = run.tcfg, run.accelerator
    seed = micro_batch_seed(tcfg.seed, micro_batch, acc.process_index)
    draws = draw(run.components.config, frames.shape[0], tcfg.prompt_dropout, seed)
    with acc.accumulate(run.models.unet):
        loss = training_loss(run.models, frames, captions, draws)
        acc.backward(loss)
        if acc.sync_gradients and tcfg.max_grad_norm is not None:
            acc.clip_grad_norm_(list(run.params.values()), tcfg.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def train(tcfg: TrainConfig, data: str | Path, out: str | Path, *, resume: bool = False, quiet: bool = False) -> Run:
    """Train until `tcfg.max_steps` optimizer steps; checkpoints and final adapter under `out`."""
    out = Path(out)
    run = setup_run(tcfg, checkpoint_to_resume(out, resume))
    dataset = make_dataset(data, tcfg)
    acc, state = run.accelerator, run.state
    bar = tqdm(
        total=tcfg.max_steps, initial=min(state.step, tcfg.max_steps), desc="training",
        disable=quiet or not acc.is_main_process,
    )
    if state.step >= tcfg.max_steps:
        logger.warning("the run is already at step %d of max_steps %d: nothing to train", state.step, tcfg.max_steps)
    micro, window, started = state.step * tcfg.gradient_accumulation_steps, [], time.perf_counter()
    skipped_before = state.skipped_clips
    for frames, captions in make_loader(run, dataset):
        window.append(train_micro_batch(run, frames, captions, micro))
        micro += 1
        if not acc.sync_gradients:
            continue
        state.step += 1
        state.losses.append(round(acc.gather(torch.stack(window).mean()[None]).mean().item(), 6))
        state.skipped_clips = skipped_before + getattr(dataset, "skipped", 0)
        window.clear()
        bar.update(1)
        bar.set_postfix(loss=f"{state.losses[-1]:.4f}")
        if state.step % tcfg.checkpoint_every == 0 or state.step == tcfg.max_steps:
            state.seconds += time.perf_counter() - started
            started = time.perf_counter()
            save_checkpoint(run, out / f"checkpoint-{state.step}")
    bar.close()
    state.seconds = round(state.seconds + time.perf_counter() - started, 3)
    if acc.is_main_process:
        save_i2v_adapter(run.unet, out / "adapter.safetensors", overwrite=True)
        _write_json(out / "trainer_state.json", state.to_json())
        _write_json(out / "train_config.json", (json.dumps(tcfg.to_dict(), indent=1) + "\n").encode())
    acc.wait_for_everyone()
    return run


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, required=True, help="training config (JSON), e.g. configs/tiny_adapter.json")
    p.add_argument(
        "--data", required=True, help="a folder of clips with captions.csv or captions.jsonl, or 'synthetic'"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, final adapter)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--max-steps", type=int, default=None, help="override the config's max_steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tcfg = TrainConfig.from_json(args.config)
        if args.max_steps is not None:
            tcfg = tcfg.with_overrides(max_steps=args.max_steps)
        run = train(tcfg, args.data, args.out, resume=args.resume, quiet=args.quiet)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    s = run.state
    if run.accelerator.is_main_process:
        last = f", last loss {s.losses[-1]:.4f}" if s.losses else ""
        print(f"step {s.step}/{tcfg.max_steps}{last}, {s.seconds:.1f} s training; wrote {args.out}/adapter.safetensors")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
