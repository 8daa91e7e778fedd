"""Training configuration: one frozen dataclass, read from a JSON file (torch-free).

```json
{"preset": "tiny", "stage": "adapter", "num_frames": 8, "batch_size": 4,
 "gradient_accumulation_steps": 1, "mixed_precision": "no", "max_steps": 2000,
 "checkpoint_every": 250, "seed": 0}
```

Unknown keys are refused by name; every field is checked by `verify()`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from i2v_adapter.training.data import CAPTION_STYLES, MOTIONS, START_STYLES
from i2v_core.config import PresetConfig, get_preset


class TrainStage(str, Enum):
    """Which part of the model a run trains. Each stage has one objective in `i2v_adapter.training.train`.

    - `adapter`: the I2V-Adapter alone (W_Q', W_O'), on a frozen T2V model (paper 4.1).
    - `vae`: the VAE, reconstruction (for the trained tiny default).
    - `t2v`: the spatial UNet and motion modules, text-to-video (for the trained tiny default).

    The objectives are in `i2v_adapter.training.objectives`.
    """

    ADAPTER = "adapter"
    VAE = "vae"
    T2V = "t2v"


class MixedPrecision(str, Enum):
    """`accelerate`'s `mixed_precision`: fp16 needs a GPU; bf16 runs on recent CPUs and GPUs."""

    NO = "no"
    FP16 = "fp16"
    BF16 = "bf16"


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Batch sizes are per process; the optimizer step sees
    `batch_size * gradient_accumulation_steps * num_processes` clips."""

    preset: str = "tiny"
    stage: TrainStage = TrainStage.ADAPTER
    num_frames: int | None = None  # None: the preset's
    # AdamW with a fixed learning rate, as the paper trains (no schedule, no warm-up)
    learning_rate: float = 1e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    weight_decay: float = 1e-2
    max_grad_norm: float | None = 1.0  # None: no clipping
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    mixed_precision: MixedPrecision = MixedPrecision.NO
    max_steps: int = 1000  # optimizer steps
    # Wall-clock budget of one session (None: none): training stops at the first step boundary after
    # it, with a checkpoint and the final weights, and `--resume` continues towards max_steps.
    max_minutes: float | None = None
    checkpoint_every: int = 500
    seed: int = 0
    # Probability of replacing a caption by "" (the unconditional prompt of classifier-free guidance)
    prompt_dropout: float = 0.1
    # Timesteps of the UNet stages are floor(T * u ** timestep_power), u ~ U[0, 1): 1.0 is uniform
    # (the paper's); below 1 high-noise steps come more often, where the caption is most of what
    # the model can know about a clip (0.5: density rising linearly with t, mean 2T/3).
    timestep_power: float = 1.0
    # P2 weighting (Choi et al. 2022): each clip's epsilon MSE times (1 + SNR(t)) ** -p2_gamma; 0.0 is
    # the plain loss (the paper's). 1.0 shifts the gradient from low-noise detail to coarse content
    # and motion: weight 1.00 at t = 950, 0.84 at t = 500, 0.43 at t = 250, 0.06 at t = 50 (SD1.5 betas).
    p2_gamma: float = 0.0
    # The v-prediction loss (Salimans & Ho 2022) for the epsilon model: each clip's MSE times
    # min(1 + 1 / SNR(t), v_weight_cap), on top of P2; None is off. An epsilon loss barely sees a
    # model's clean-latent error at high noise (x0 error counts SNR times: 0.003 at t = 950), where
    # sampling decides layout and motion from the caption and the first frame; this weight counts
    # that error as it counts at low noise. The cap bounds the weight near t = T (1 / SNR ~ 200).
    v_weight_cap: float | None = None
    # Leak-free high noise (None: off, the paper's). At a timestep >= this one, the UNet input of the
    # predicted frames is the noise alone, and the target the epsilon that makes the predicted clean
    # latent the clip's: (noise - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar). DDIM's first step starts
    # from pure noise, but SD1.5's schedule leaves sqrt(alpha_bar) = 0.07 of the clip in the training
    # input at t = 900: its low frequencies tell the model the background, and a model that learnt
    # to read them reads the pure noise's as a texture. Off it, the first frame and caption are all
    # there is to read. 850 covers the first step of 10 or more DDIM steps.
    pure_noise_from: int | None = None
    # What the UNet predicts (None: the preset's, "epsilon" for SD1.5): "v_prediction" trains the
    # velocity sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022), whose error at high
    # noise is the clean latent's: an epsilon model's predicted clean latent there is its epsilon
    # error times sqrt(1 / SNR), 14x at t = 900. The PyTorch pipeline, the numpy runtime and the app
    # sample either (DDIM, Euler, LCM), reading it from the manifest's scheduler config.
    prediction_type: str | None = None
    # Stage `t2v`: the probability that a clip's frame 0 stays clean (not noised, not in the loss), as
    # the I2V pipeline gives it; 0.0 is the plain T2V objective. A T2V model cannot gain from a motion
    # word when it must also guess where the shape starts (either direction blurs to the same mean
    # over start places) and sees the motion in the noisy frames below the highest noise; with the
    # first frame known, the direction is most of what is left to know about frames 1..F-1. The model
    # stays a text-to-video model: it still learns the other clips with every frame noised.
    first_frame_clean_prob: float = 0.0
    # W_O' at the start: 0.0 is the paper's zero initialisation (the T2V model exactly)
    adapter_out_init_std: float = 0.0
    synthetic_clips: int = 4096  # clips in `--data synthetic` (generated on the fly)
    # The motions `--data synthetic` draws from (None: all of `data.MOTIONS`), e.g. the four
    # translations for a stage that must learn the direction words.
    synthetic_motions: list[str] | None = None
    # The captions of `--data synthetic` (`data.CAPTION_STYLES`): "full", or "motion" (the motion
    # phrase alone, "moves to the right", so that captions differ in the motion word and nothing else).
    synthetic_captions: str = "full"
    # Where `--data synthetic`'s translating shapes start (`data.START_STYLES`): "edge" (the shipped
    # runs': the start gives the direction away) or "centre" (only the caption tells the way).
    synthetic_start: str = "edge"
    num_workers: int = 0  # DataLoader workers
    # Optional local checkpoints of the frozen parts (see `checkpoints.load_components`); None:
    # the preset's deterministic weights. `init_adapter` starts the adapter from a file.
    sd15: str | None = None
    motion_module: str | None = None
    init_adapter: str | None = None
    # Weights of earlier stages (`i2v_adapter.checkpoints.shipped` layout): the trained VAE for `t2v` and
    # `adapter`, the trained T2V UNet for `adapter`.
    init_vae: str | None = None
    init_unet: str | None = None
    # The text encoder of a `t2v` run trained with `train_text_encoder` (None: the preset's).
    init_text_encoder: str | None = None
    # Stage `t2v`: train the text encoder with the UNet (saved as `text_encoder.safetensors` beside
    # `unet.safetensors`). SD1.5 keeps its CLIP frozen because CLIP already knows words; the tiny
    # twin's text encoder is a seeded random map, under which "left" and "right" captions differ by
    # about 10 % of the states' norm (another colour and shape: 13 %), so the UNet has to learn to pick the
    # direction word out of 77 positions. Trained, the encoder can make the words it needs stand out
    # (on the tiny twin it did not make the UNet read the direction: MODEL_CARD.md, Training notes).
    # The adapter stage keeps it frozen, as the paper does.
    train_text_encoder: bool = False
    # Stage `vae`: weight of the mean per-element KL term, and the square crop size (0: whole frames)
    kl_weight: float = 1e-4
    vae_crop: int = 64
    # Stage `vae` with `init_vae`: train only the decoder (and `post_quant_conv`), so the latent space a
    # T2V UNet was trained on stays exactly the same (no latent-scale calibration at the end either).
    vae_decoder_only: bool = False
    # The VAE's GroupNorm group count (None: the preset's). With 2 channels per group (the tiny VAE's
    # 16 channels in 8 groups) a flat-coloured region normalises to +-1 whatever its colour, so the
    # decoder cannot reproduce colour; 4 groups keep 2 degrees of freedom per group.
    vae_norm_num_groups: int | None = None

    def effective_prediction_type(self) -> str:
        """`prediction_type`, or the preset's when it is null."""
        if self.prediction_type is not None:
            return self.prediction_type
        return get_preset(self.preset).scheduler.prediction_type

    def verify(self) -> None:
        """Raise `ValueError` naming the field, what was expected and what was found."""
        positive = ("batch_size", "gradient_accumulation_steps", "max_steps", "checkpoint_every", "synthetic_clips")
        for name in positive:  # ints
            _expect_int(name, getattr(self, name), low=1)
        _expect_int("num_workers", self.num_workers, low=0)
        _expect_int("vae_crop", self.vae_crop, low=0)
        _expect_int("seed", self.seed, low=0)
        if self.num_frames is not None:
            _expect_int("num_frames", self.num_frames, low=2)
        if self.pure_noise_from is not None:
            _expect_int("pure_noise_from", self.pure_noise_from, low=1)
        if self.prediction_type not in (None, "epsilon", "v_prediction"):
            raise ValueError(f"training config: expected prediction_type 'epsilon', 'v_prediction' or null, "
                             f"got {self.prediction_type!r}")
        if self.v_weight_cap is not None and self.effective_prediction_type() == "v_prediction":
            raise ValueError("training config: v_weight_cap weights an epsilon loss as a v loss; with prediction_type "
                             f"'v_prediction' (set, or the preset's) the loss is the v loss already: expected "
                             f"v_weight_cap null or prediction_type 'epsilon', got {self.v_weight_cap!r}")
        if self.vae_norm_num_groups is not None:
            _expect_int("vae_norm_num_groups", self.vae_norm_num_groups, low=1)
        if not isinstance(self.vae_decoder_only, bool):
            raise ValueError(f"training config: expected vae_decoder_only to be true or false, got {self.vae_decoder_only!r}")
        if self.vae_decoder_only and (self.stage is not TrainStage.VAE or not self.init_vae):
            raise ValueError(
                "training config: vae_decoder_only fine-tunes a trained VAE's decoder: expected stage 'vae' "
                f"with init_vae, got stage {self.stage.value!r} and init_vae {self.init_vae!r}"
            )
        floats = (
            "learning_rate", "adam_epsilon", "adam_beta1", "adam_beta2", "prompt_dropout", "weight_decay",
            "adapter_out_init_std", "kl_weight", "timestep_power", "p2_gamma", "first_frame_clean_prob",
        )
        for name in floats + (("max_grad_norm",) if self.max_grad_norm is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"training config: expected {name} to be a number, got {value!r}")
        for name in ("learning_rate", "adam_epsilon", "timestep_power"):
            if not getattr(self, name) > 0:
                raise ValueError(f"training config: expected {name} > 0, got {getattr(self, name)!r}")
        for name in ("adam_beta1", "adam_beta2", "prompt_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"training config: expected {name} in [0, 1), got {getattr(self, name)!r}")
        for name in ("weight_decay", "adapter_out_init_std", "kl_weight", "p2_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"training config: expected {name} >= 0, got {getattr(self, name)!r}")
        if self.synthetic_motions is not None:
            if (not isinstance(self.synthetic_motions, (list, tuple)) or not self.synthetic_motions
                    or any(m not in MOTIONS for m in self.synthetic_motions)):
                raise ValueError(f"training config: expected synthetic_motions to be a list of some of {list(MOTIONS)} "
                                 f"or null, got {self.synthetic_motions!r}")

        if self.synthetic_captions not in CAPTION_STYLES:
            raise ValueError(f"training config: expected synthetic_captions to be one of {list(CAPTION_STYLES)}, "
                             f"got {self.synthetic_captions!r}")
        if self.synthetic_start not in START_STYLES:
            raise ValueError(f"training config: expected synthetic_start to be one of {list(START_STYLES)}, "
                             f"got {self.synthetic_start!r}")
        if not 0.0 <= self.first_frame_clean_prob <= 1.0:
            raise ValueError(f"training config: expected first_frame_clean_prob in [0, 1], got {self.first_frame_clean_prob!r}")
        if not isinstance(self.train_text_encoder, bool):
            raise ValueError(f"training config: expected train_text_encoder to be true or false, got {self.train_text_encoder!r}")
        if self.train_text_encoder and self.stage is not TrainStage.T2V:
            raise ValueError("training config: train_text_encoder trains the text encoder with the base T2V UNet (the adapter "
                             f"stage keeps it frozen, as the paper does): expected stage 't2v', got {self.stage.value!r}")
        if self.first_frame_clean_prob and self.stage is not TrainStage.T2V:
            raise ValueError("training config: first_frame_clean_prob mixes first-frame clips into the T2V objective (the adapter "
                             f"stage always keeps frame 0 clean): expected stage 't2v', got {self.stage.value!r}")
        if self.max_minutes is not None and (
            isinstance(self.max_minutes, bool) or not isinstance(self.max_minutes, (int, float)) or self.max_minutes <= 0
        ):
            raise ValueError(f"training config: expected max_minutes > 0 or null, got {self.max_minutes!r}")
        if self.v_weight_cap is not None and (
            isinstance(self.v_weight_cap, bool) or not isinstance(self.v_weight_cap, (int, float)) or self.v_weight_cap < 1
        ):
            raise ValueError(f"training config: expected v_weight_cap >= 1 or null, got {self.v_weight_cap!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"training config: expected max_grad_norm > 0 or null, got {self.max_grad_norm!r}")
        preset = self.preset_config()  # an unknown preset or bad frame count raises here
        total = preset.scheduler.num_train_timesteps
        if self.pure_noise_from is not None and self.pure_noise_from >= total:
            raise ValueError(f"training config: expected pure_noise_from below the {total} training timesteps, "
                             f"got {self.pure_noise_from}")

    def preset_config(self) -> PresetConfig:
        """The model preset with this run's overrides (frame count, W_O' initialisation, VAE groups, prediction)."""
        preset = get_preset(self.preset)
        changes = {"adapter_out_init_std": self.adapter_out_init_std}
        if self.num_frames is not None:
            changes["num_frames"] = self.num_frames
        if self.vae_norm_num_groups is not None:
            changes["vae"] = dataclasses.replace(preset.vae, norm_num_groups=self.vae_norm_num_groups)
        if self.prediction_type is not None:
            changes["scheduler"] = dataclasses.replace(preset.scheduler, prediction_type=self.prediction_type)
        return preset.with_overrides(**changes)

    def with_overrides(self, **changes) -> "TrainConfig":
        cfg = dataclasses.replace(self, **changes)
        cfg.verify()
        return cfg

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["stage"], out["mixed_precision"] = self.stage.value, self.mixed_precision.value
        return out

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "training config") -> "TrainConfig":
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; expected some of {sorted(known)}")
        values = dict(data)
        try:
            if "stage" in values:
                values["stage"] = TrainStage(values["stage"])
            if "mixed_precision" in values:
                values["mixed_precision"] = MixedPrecision(values["mixed_precision"])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        cfg = cls(**values)
        try:
            cfg.verify()
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        return cfg

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: expected a JSON file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, source=str(path))


def _expect_int(name: str, value, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"training config: expected {name} to be an integer >= {low}, got {value!r}")
