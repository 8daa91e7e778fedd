"""`python -m i2v_adapter.training.train`: training with `accelerate`: the I2V-Adapter (paper 4.1), and the
VAE and base text-to-video stages of the trained tiny default.

    python -m i2v_adapter.training.train --config configs/tiny_adapter.json --data synthetic --out runs/tiny
    python -m i2v_adapter.training.train --config CONFIG --data DIR --out runs/x --resume   # continue from the latest checkpoint

The same script runs on one CPU (here), one GPU, or many GPUs and nodes through Hugging Face
`accelerate`: `accelerate launch --multi_gpu --num_processes 8 -m i2v_adapter.training.train --config ...`
(add `--num_machines`, `--machine_rank`, `--main_process_ip` for several nodes; `accelerate config`
writes these once). `optim.batch_size` in the config is per process. On a CPU shared with other jobs,
`OMP_NUM_THREADS=1` can be several times faster than torch's default of one thread per core.

The config's `model.stage` picks the objective (`i2v_adapter.training.objectives`): `adapter` (default, paper
4.1: VAE, text encoder, base UNet and motion modules frozen; only W_Q' and W_O' train, AdamW at a
fixed learning rate; frame 0 stays the clean first-frame latent in the UNet input, as at inference,
and the loss is the epsilon MSE over frames 1..F-1 only), `t2v` (the whole UNet with motion modules,
epsilon MSE over all frames) or `vae` (reconstruction + KL). `init.vae` / `init.unet` chain the stages;
MODEL_CARD.md gives the chain of configs in `configs/` that builds the shipped tiny default.
Captions go through the text encoder (`TextEncoderStage`), replaced by "" with probability
`objective.prompt_dropout` for classifier-free guidance. `run.max_minutes` bounds one session's wall time; Ctrl-C
or SIGTERM (a preempted job) stops the run at the next step boundary the same way, with a
checkpoint and its final files (a second signal stops at once).

Randomness (noise, timesteps, caption dropout) is a function of `(seed, micro-batch, process)` and
the clip order of `(seed, position)` (`data.StepSampler`), so a resumed run repeats an uninterrupted
one without saving any RNG state.

Output folder: `checkpoint-<step>/` with the stage's weights (`adapter.safetensors`,
`unet.safetensors` or `vae.safetensors`), `optimizer.safetensors`, `trainer_state.json` (step,
per-step losses, time) and `train_config.json` (the nested layout of `TrainConfig.to_json`); at the
end the weights, `trainer_state.json`, `train_config.json`. Every file and checkpoint folder is
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
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin
from safetensors import safe_open
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from i2v_adapter.checkpoints.io import load_i2v_adapter, load_safetensors, save_safetensors
from i2v_adapter.checkpoints.load import load_components
from i2v_adapter.checkpoints.shipped import load_trained
from i2v_adapter.model.adapter import check_state_dict
from i2v_adapter.model.components import Components, build_components
from i2v_adapter.model.stage_modules import TextEncoderStage, UNetStage, VaeEncoderStage
from i2v_adapter.training.config import TrainConfig, TrainStage, nested_layout
from i2v_adapter.training.data import StepSampler, SyntheticClips, VideoFolderDataset
from i2v_adapter.training.objectives import (  # noqa: F401  (re-exported: the objective's pieces are tested through here)
    TEXT_ENCODER_PREFIX,
    WEIGHTS_FILES,
    Draws,
    Models,
    VaeReconstruction,
    draw,
    epsilon_loss,
    finish_stage,
    prepare_stage,
    stage_loss,
    training_loss,
    weights_files,
)
from i2v_core import cli
from i2v_core.errors import CheckpointError
from i2v_core.media import atomic_output_dir, atomic_write_bytes

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_STATE_FILES = ("optimizer.safetensors", "trainer_state.json")
_MAY_CHANGE_ON_RESUME = ("optim.max_steps", "run.max_minutes")  # a resumed run may go on longer without a warning


# --------------------------------------------------------------------------------------------------
# Model and objective
# --------------------------------------------------------------------------------------------------


def build_model(tcfg: TrainConfig) -> tuple[Components, dict[str, nn.Parameter]]:
    """The preset's components with earlier stages' weights loaded, frozen except the stage's own.

    Returns the components and the trainable parameters by their key in the stage's weights file.
    """
    cfg = tcfg.preset_config()
    if tcfg.init.sd15 or tcfg.init.motion_module or tcfg.init.adapter:
        components = load_components(
            cfg, sd15=tcfg.init.sd15, motion_module=tcfg.init.motion_module, i2v_adapter=tcfg.init.adapter
        )
    else:
        # Training starts from the seeded random weights (or the files below), never the shipped ones.
        components = build_components(cfg)
    load_trained(components, vae=tcfg.init.vae, unet=tcfg.init.unet, text_encoder=tcfg.init.text_encoder)
    if tcfg.init.adapter and tcfg.init.unet:
        load_i2v_adapter(components.unet, tcfg.init.adapter)  # again: the new UNet got a fresh adapter
    return components, prepare_stage(components, tcfg)


def micro_batch_seed(seed: int, micro_batch: int, process: int) -> int:
    return int(np.random.SeedSequence([seed, micro_batch, process]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainerState:
    step: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each optimizer step, step 1 first
    seconds: float = 0.0  # training-loop time over all sessions of the run
    skipped_clips: int = 0
    measurements: dict = field(default_factory=dict)  # what the end of a stage measured (VAE latent std)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=1) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> "TrainerState":
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            losses = [float(x) for x in data["losses"]]
            return cls(
                int(data["step"]), losses, float(data["seconds"]), int(data.get("skipped_clips", 0)),
                dict(data.get("measurements", {})),
            )
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


def checkpoint_to_resume(out: Path, resume: bool, weights_file: str = "adapter.safetensors") -> Path | None:
    """The latest complete checkpoint when resuming; refuse to start over an existing run otherwise."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"expected --out to be a folder, found a file: {out}")
    checkpoints = find_checkpoints(out)
    if not resume:
        if checkpoints or (out / weights_file).exists():
            names = ", ".join(p.name for _, p in checkpoints[-3:]) or weights_file
            raise FileExistsError(
                f"output folder {out} already holds a training run ({names}): pass --resume to continue it "
                "from its latest checkpoint, or choose another --out"
            )
        return None
    files = (weights_file,) + _STATE_FILES
    complete = [p for _, p in checkpoints if all((p / name).is_file() for name in files)]
    if not complete:
        logger.warning("--resume: no complete checkpoint in %s; starting a new run", out)
        return None
    return complete[-1]


def _warn_config_changes(path: Path, tcfg: TrainConfig) -> None:
    """Resuming with other settings is allowed (e.g. more steps) but said out loud. The saved config
    may be in the flat layout of older runs."""
    if not path.is_file():
        return
    try:
        saved = nested_layout(json.loads(path.read_text(encoding="utf-8")), str(path))
    except ValueError as err:
        logger.warning("cannot compare the settings with the run's: %s", err)
        return
    changed = [
        (f"{section}.{key}", saved.get(section, {}).get(key), value)
        for section, values in tcfg.to_dict().items() for key, value in values.items()
        if f"{section}.{key}" not in _MAY_CHANGE_ON_RESUME and saved.get(section, {}).get(key) != value
    ]
    if changed:
        diffs = ", ".join(f"{name}: {old!r} -> {new!r}" for name, old, new in changed)
        logger.warning("resuming with settings that differ from %s: %s", path, diffs)


def _weights_metadata(tcfg: TrainConfig) -> dict[str, str]:
    return {"format": "i2v-adapter" if tcfg.model.stage is TrainStage.ADAPTER else f"i2v-adapter-{tcfg.model.stage.value}"}


def load_params(params: dict[str, nn.Parameter], path: Path) -> None:
    """A stage's weights file back onto its trainable parameters (keys and shapes checked by name)."""
    given = load_safetensors(path)
    check_state_dict(given, {k: tuple(p.shape) for k, p in params.items()}, what=f"{path}")
    with torch.no_grad():
        for key, value in given.items():
            params[key].copy_(value.to(params[key]))


def load_stage_params(params: dict[str, nn.Parameter], folder: Path, stage: TrainStage) -> None:
    """Every weights file of a stage's checkpoint folder back onto its parameters."""
    for name, part in weights_files(params, stage).items():
        load_params(part, folder / name)


def save_stage_weights(weights: dict[str, torch.Tensor], folder: Path, tcfg: TrainConfig, *, overwrite: bool = False) -> None:
    """The stage's weights files into `folder` (the UNet's and, when it trains, the text encoder's)."""
    for name, part in weights_files(weights, tcfg.model.stage).items():
        meta = _weights_metadata(tcfg) if name == WEIGHTS_FILES[tcfg.model.stage] else {"format": "i2v-adapter-text-encoder"}
        save_safetensors(part, folder / name, overwrite=overwrite, metadata=meta)


def _write_json(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, overwrite=True)


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def trainable_params(params: dict[str, nn.Parameter]) -> dict[str, nn.Parameter]:
    """The parameters the optimizer steps: all of a stage's weights but a decoder-only VAE run's encoder."""
    return {k: p for k, p in params.items() if p.requires_grad}


@dataclass
class Run:
    """Everything a training loop holds; `train()` returns it (tests inspect `components`)."""

    tcfg: TrainConfig
    accelerator: Accelerator
    models: Models
    params: dict[str, nn.Parameter]
    optimizer: torch.optim.Optimizer
    state: TrainerState
    started: float = 0.0  # perf_counter at the start of the time not yet in state.seconds

    @property
    def components(self) -> Components:
        return self.models.components

    @property
    def unet(self) -> nn.Module:
        """The UNet (components.unet; the prepared wrapper is `models.unet`)."""
        return self.components.unet

    @property
    def trainable(self) -> dict[str, nn.Parameter]:
        return trainable_params(self.params)

    def weights(self) -> dict[str, torch.Tensor]:
        """The stage's trained weights, as its weights file holds them."""
        return {k: p.detach().clone() for k, p in self.params.items()}


def setup_run(tcfg: TrainConfig, checkpoint: Path | None = None) -> Run:
    """Accelerator, frozen model, AdamW over the adapter; restored from `checkpoint` if given."""
    accelerator = Accelerator(
        mixed_precision=tcfg.optim.mixed_precision.value,
        # Accumulation windows run across passes over the data, so a step is always N micro-batches.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=tcfg.optim.gradient_accumulation_steps, sync_with_dataloader=False
        ),
    )
    if tcfg.optim.mixed_precision.value != "no" and not accelerator.native_amp:
        raise ValueError(
            f"mixed_precision {tcfg.optim.mixed_precision.value!r} is not available on {accelerator.device.type} "
            "(accelerate would silently train in float32): use 'bf16' or 'no' on a CPU, 'fp16' on a GPU"
        )
    components, params = build_model(tcfg)
    state = TrainerState()
    if checkpoint is not None:
        load_stage_params(params, checkpoint, tcfg.model.stage)
        state = TrainerState.read(checkpoint / "trainer_state.json")
        _warn_config_changes(checkpoint / "train_config.json", tcfg)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    # Frozen weights in the low-precision dtype (memory); the trained ones stay float32 for AdamW.
    for module in (components.vae, components.text_encoder, components.unet):
        module.to(accelerator.device)
        if dtype != torch.float32:
            module.to(dtype=dtype)
    for p in params.values():
        p.data = p.data.float()
    trainable = trainable_params(params)
    optimizer = torch.optim.AdamW(
        list(trainable.values()), lr=tcfg.optim.learning_rate, betas=(tcfg.optim.adam_beta1, tcfg.optim.adam_beta2),
        eps=tcfg.optim.adam_epsilon, weight_decay=tcfg.optim.weight_decay,
    )
    unet = UNetStage(components.unet)
    trained = VaeReconstruction(components.vae) if tcfg.model.stage is TrainStage.VAE else unet
    trained, optimizer = accelerator.prepare(trained, optimizer)
    if tcfg.model.stage is not TrainStage.VAE:
        unet = trained
    if checkpoint is not None:
        load_optimizer_state(optimizer, trainable, checkpoint / "optimizer.safetensors", accelerator.scaler)
        logger.info("resuming from %s at step %d", checkpoint, state.step)
    encoders = VaeEncoderStage(components.vae), TextEncoderStage(components.text_encoder)
    models = Models(*encoders, unet, components, accelerator.device, dtype, trained)
    return Run(tcfg, accelerator, models, params, optimizer, state)


def make_dataset(data: str | Path, tcfg: TrainConfig):
    """`"synthetic"` -> `SyntheticClips`; a folder -> `VideoFolderDataset`, at the preset's size and frame count."""
    cfg = tcfg.preset_config()
    size = dict(num_frames=cfg.num_frames, height=cfg.height, width=cfg.width)
    if str(data) == "synthetic":
        return SyntheticClips(tcfg.data.synthetic_clips, seed=tcfg.run.seed, motions=tcfg.data.synthetic_motions,
                             captions=tcfg.data.synthetic_captions, start=tcfg.data.synthetic_start, **size)
    return VideoFolderDataset(data, **size)


def make_loader(run: Run, dataset) -> DataLoader:
    """The clips of the remaining micro-batches, continuing the run's clip stream where it stopped."""
    tcfg, acc = run.tcfg, run.accelerator
    per_micro = tcfg.optim.batch_size * acc.num_processes
    done = run.state.step * tcfg.optim.gradient_accumulation_steps
    remaining = max(0, tcfg.optim.max_steps - run.state.step) * tcfg.optim.gradient_accumulation_steps
    sampler = StepSampler(len(dataset), seed=tcfg.run.seed, start=done * per_micro, length=remaining * per_micro)
    loader = DataLoader(
        dataset, batch_size=tcfg.optim.batch_size, sampler=sampler, num_workers=tcfg.data.num_workers, drop_last=True
    )
    return acc.prepare(loader)


def save_checkpoint(run: Run, folder: Path) -> None:
    """One complete checkpoint folder, written atomically by the main process."""
    if run.accelerator.is_main_process:
        with atomic_output_dir(folder) as tmp:
            save_stage_weights(run.weights(), tmp, run.tcfg)
            save_optimizer_state(run.optimizer, list(run.trainable), tmp / "optimizer.safetensors", run.accelerator.scaler)
            _write_json(tmp / "trainer_state.json", run.state.to_json())
            _write_json(tmp / "train_config.json", run.tcfg.to_json().encode())
    run.accelerator.wait_for_everyone()


def _out_of_time(acc: Accelerator, deadline: float | None) -> bool:
    """Whether the time budget is spent, agreed by all processes (any one's clock decides)."""
    if deadline is None:
        return False
    return _agreed(acc, time.perf_counter() >= deadline)


class StopRequest:
    """Set by SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption): the run stops at the next step
    boundary with a checkpoint and its final files, so `--resume` goes on from there. A second signal
    interrupts at once (KeyboardInterrupt), losing only the steps since the last checkpoint."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def handle(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        logger.warning("%s received: stopping after this step with a checkpoint (again to stop at once)",
                       signal.Signals(signum).name)


@contextmanager
def stop_on_signals():
    """A `StopRequest` wired to SIGINT and SIGTERM while training (main thread only), restored after."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _agreed(acc: Accelerator, flag: bool) -> bool:
    """A flag any one process raised, agreed by all."""
    if acc.num_processes == 1:
        return flag
    raised = torch.tensor([float(flag)], device=acc.device)
    return bool(acc.gather(raised).max().item())


def _average_unwrapped_gradients(run: Run) -> None:
    """The text encoder trains outside the prepared (DDP) UNet: average its gradients over processes."""
    for key, p in run.trainable.items():
        if key.startswith(TEXT_ENCODER_PREFIX) and p.grad is not None:
            p.grad.copy_(run.accelerator.reduce(p.grad, reduction="mean"))


def train_micro_batch(run: Run, frames: torch.Tensor, captions: list[str], micro_batch: int) -> torch.Tensor:
    """Forward, backward and (at the end of an accumulation window) one optimizer step."""
    tcfg, acc = run.tcfg, run.accelerator
    seed = micro_batch_seed(tcfg.run.seed, micro_batch, acc.process_index)
    with acc.accumulate(run.models.trained):
        loss = stage_loss(run.models, frames, list(captions), tcfg, seed)
        acc.backward(loss)
        if acc.sync_gradients and acc.num_processes > 1:
            _average_unwrapped_gradients(run)
        if acc.sync_gradients and tcfg.optim.max_grad_norm is not None:
            acc.clip_grad_norm_(list(run.trainable.values()), tcfg.optim.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def train(tcfg: TrainConfig, data: str | Path, out: str | Path, *, resume: bool = False, quiet: bool = False) -> Run:
    """Train until `tcfg.optim.max_steps` optimizer steps; checkpoints and the stage's final weights under `out`."""
    out = Path(out)
    run = setup_run(tcfg, checkpoint_to_resume(out, resume, WEIGHTS_FILES[tcfg.model.stage]))
    dataset = make_dataset(data, tcfg)
    acc, state = run.accelerator, run.state
    bar = tqdm(
        total=tcfg.optim.max_steps, initial=min(state.step, tcfg.optim.max_steps), desc="training",
        disable=quiet or not acc.is_main_process,
    )
    if state.step >= tcfg.optim.max_steps:
        logger.warning("the run is already at step %d of max_steps %d: nothing to train", state.step, tcfg.optim.max_steps)
    run.started = time.perf_counter()
    deadline = None if tcfg.run.max_minutes is None else run.started + 60.0 * tcfg.run.max_minutes
    with stop_on_signals() as stop:
        _train_steps(run, dataset, out, bar, deadline, stop)
    bar.close()
    state.seconds = round(state.seconds + time.perf_counter() - run.started, 3)
    if acc.is_main_process:
        state.measurements.update(finish_stage(run.components, tcfg, dataset, acc.device))
        save_stage_weights(run.weights(), out, tcfg, overwrite=True)
        _write_json(out / "trainer_state.json", state.to_json())
        _write_json(out / "train_config.json", tcfg.to_json().encode())
    acc.wait_for_everyone()
    return run


def _train_steps(run: Run, dataset, out: Path, bar, deadline: float | None, stop: StopRequest) -> None:
    """The step loop: stops at max_steps, at the time budget or on a signal, with a checkpoint."""
    tcfg, acc, state = run.tcfg, run.accelerator, run.state
    micro, window, skipped_before = state.step * tcfg.optim.gradient_accumulation_steps, [], state.skipped_clips
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
        out_of_time, stopped = _out_of_time(acc, deadline), _agreed(acc, bool(stop))
        if state.step % tcfg.run.checkpoint_every == 0 or state.step == tcfg.optim.max_steps or out_of_time or stopped:
            state.seconds += time.perf_counter() - run.started
            run.started = time.perf_counter()
            save_checkpoint(run, out / f"checkpoint-{state.step}")
        if out_of_time:
            logger.warning("max_minutes %s spent at step %d of %d: stopping (--resume continues)",
                           tcfg.run.max_minutes, state.step, tcfg.optim.max_steps)
            break
        if stopped:
            logger.warning("stopped by a signal at step %d of %d (--resume continues)", state.step, tcfg.optim.max_steps)
            break


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainOptions:
    """What `python -m i2v_adapter.training.train` is asked: a config file, its overrides, the data and the run folder."""

    config: Path  # a `TrainConfig` JSON file (nested or flat layout)
    data: str | Path  # a folder of captioned clips, or "synthetic"
    out: Path
    resume: bool = False
    max_steps: int | None = None  # None: the config's optim.max_steps
    max_minutes: float | None = None  # None: the config's run.max_minutes
    quiet: bool = False  # no progress bar

    def train_config(self) -> TrainConfig:
        """The config file with this command's overrides, verified."""
        tcfg = TrainConfig.from_json(self.config)
        optim = {} if self.max_steps is None else {"max_steps": self.max_steps}
        run = {} if self.max_minutes is None else {"max_minutes": self.max_minutes}
        return tcfg.with_overrides(optim=optim, run=run)


def train_from_options(options: TrainOptions) -> Run:
    """`train()` on the options' config, data and run folder."""
    return train(options.train_config(), options.data, options.out, resume=options.resume, quiet=options.quiet)


def _report(run: Run, out: Path) -> None:
    """The command's one line: where the run stopped and what it wrote (main process only)."""
    if not run.accelerator.is_main_process:
        return
    tcfg, s = run.tcfg, run.state
    last = f", last loss {s.losses[-1]:.4f}" if s.losses else ""
    weights = Path(out) / WEIGHTS_FILES[tcfg.model.stage]
    print(f"stage {tcfg.model.stage.value}: step {s.step}/{tcfg.optim.max_steps}{last}, {s.seconds:.1f} s training; "
          f"wrote {weights}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2v_adapter.training.train", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, required=True, help="training config (JSON), e.g. configs/tiny_adapter.json")
    p.add_argument(
        "--data", required=True, help="a folder of clips with captions.csv or captions.jsonl, or 'synthetic'"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, final adapter)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--max-steps", type=int, default=None, help="override the config's optim.max_steps")
    p.add_argument("--max-minutes", type=float, default=None, help="override the config's run.max_minutes")
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = TrainOptions(config=args.config, data=args.data, out=args.out, resume=args.resume,
                           max_steps=args.max_steps, max_minutes=args.max_minutes, quiet=args.quiet)
    return cli.run(lambda: _report(train_from_options(options), options.out))


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
