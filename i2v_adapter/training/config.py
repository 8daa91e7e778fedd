"""Training configuration: nested frozen dataclasses, read from a JSON file (torch-free).

One section per concern, each with its own `verify()`; `TrainConfig.verify()` runs them and the
checks that span sections. Errors name the field by its dotted path (`optim.learning_rate`).

```json
{"model": {"preset": "tiny", "stage": "adapter", "num_frames": 8},
 "optim": {"learning_rate": 1e-4, "batch_size": 4, "max_steps": 2000},
 "objective": {"prompt_dropout": 0.1},
 "run": {"checkpoint_every": 250, "seed": 0}}
```

Sections and keys left out keep their defaults. The flat layout of earlier configs and run folders
(every key at the top: `{"stage": "adapter", "learning_rate": 1e-4, "init_vae": ...}`) reads too:
`FLAT_KEYS` says where each flat key lives. Unknown keys are refused by name, with the file's.
`to_dict` / `to_json` write the nested layout.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from i2v_adapter.training.data import CAPTION_STYLES, MOTIONS, START_STYLES
from i2v_core.config import PRESETS, PresetConfig, get_preset


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


PREDICTION_TYPES = ("epsilon", "v_prediction")


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """What a run trains: the preset, the stage, and the run's overrides of the preset."""

    preset: str = "tiny"
    stage: TrainStage = TrainStage.ADAPTER
    num_frames: int | None = None  # None: the preset's
    # What the UNet predicts (None: the preset's, "epsilon" for SD1.5): "v_prediction" trains the
    # velocity sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022), whose error at high
    # noise is the clean latent's: an epsilon model's predicted clean latent there is its epsilon
    # error times sqrt(1 / SNR), 14x at t = 900. The PyTorch pipeline, the numpy runtime and the app
    # sample either (DDIM, Euler, LCM), reading it from the manifest's scheduler config.
    prediction_type: str | None = None
    # The VAE's GroupNorm group count (None: the preset's). With 2 channels per group (the tiny VAE's
    # 16 channels in 8 groups) a flat-coloured region normalises to +-1 whatever its colour, so the
    # decoder cannot reproduce colour; 4 groups keep 2 degrees of freedom per group.
    vae_norm_num_groups: int | None = None
    # Stage `t2v`: train the text encoder with the UNet (saved as `text_encoder.safetensors` beside
    # `unet.safetensors`). SD1.5 keeps its CLIP frozen because CLIP already knows words; the tiny
    # twin's text encoder is a seeded random map, under which "left" and "right" captions differ by
    # about 10 % of the states' norm (another colour and shape: 13 %), so the UNet has to learn to pick the
    # direction word out of 77 positions. Trained, the encoder can make the words it needs stand out
    # (on the tiny twin it did not make the UNet read the direction: MODEL_CARD.md, Training notes).
    # The adapter stage keeps it frozen, as the paper does.
    train_text_encoder: bool = False
    # Stage `vae` with `init.vae`: train only the decoder (and `post_quant_conv`), so the latent space a
    # T2V UNet was trained on stays exactly the same (no latent-scale calibration at the end either).
    vae_decoder_only: bool = False

    def verify(self) -> None:
        _expect_choice("model.preset", self.preset, list(PRESETS))
        _expect(isinstance(self.stage, TrainStage), "model.stage", "to be a TrainStage", self.stage)
        _expect_int("model.num_frames", self.num_frames, low=2, optional=True)
        _expect_choice("model.prediction_type", self.prediction_type, [*PREDICTION_TYPES, None])
        _expect_int("model.vae_norm_num_groups", self.vae_norm_num_groups, low=1, optional=True)
        _expect_bool("model.train_text_encoder", self.train_text_encoder)
        _expect_bool("model.vae_decoder_only", self.vae_decoder_only)
        if self.train_text_encoder and self.stage is not TrainStage.T2V:
            raise ValueError("training config: model.train_text_encoder trains the text encoder with the base T2V UNet "
                             "(the adapter stage keeps it frozen, as the paper does): expected model.stage 't2v', "
                             f"got {self.stage.value!r}")


@dataclass(frozen=True)
class InitConfig:
    """Where the weights start (None everywhere: the preset's seeded weights, never the shipped ones)."""

    # W_O' at the start: 0.0 is the paper's zero initialisation (the T2V model exactly)
    adapter_out_std: float = 0.0
    # Optional local checkpoints of the frozen parts (see `checkpoints.load_components`); None:
    # the preset's deterministic weights. `adapter` starts the adapter from a file.
    sd15: str | None = None
    motion_module: str | None = None
    adapter: str | None = None
    # Weights of earlier stages (`i2v_adapter.checkpoints.shipped` layout): the trained VAE for `t2v` and
    # `adapter`, the trained T2V UNet for `adapter`.
    vae: str | None = None
    unet: str | None = None
    # The text encoder of a `t2v` run trained with `model.train_text_encoder` (None: the preset's).
    text_encoder: str | None = None

    def verify(self) -> None:
        _expect_number("init.adapter_out_std", self.adapter_out_std, ">= 0")
        for name in ("sd15", "motion_module", "adapter", "vae", "unet", "text_encoder"):
            value = getattr(self, name)
            _expect(value is None or isinstance(value, str), f"init.{name}", "to be a path or null", value)


@dataclass(frozen=True)
class DataConfig:
    """The clips: `--data synthetic`'s options (a folder's clips are as they are) and the loader's."""

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

    def verify(self) -> None:
        _expect_int("data.synthetic_clips", self.synthetic_clips, low=1)
        motions = self.synthetic_motions
        _expect(motions is None or (isinstance(motions, (list, tuple)) and bool(motions)
                                    and all(m in MOTIONS for m in motions)),
                "data.synthetic_motions", f"to be a list of some of {list(MOTIONS)} or null", motions)
        _expect_choice("data.synthetic_captions", self.synthetic_captions, CAPTION_STYLES)
        _expect_choice("data.synthetic_start", self.synthetic_start, START_STYLES)
        _expect_int("data.num_workers", self.num_workers, low=0)


@dataclass(frozen=True)
class OptimConfig:
    """The optimizer and the run's length. Batch sizes are per process; the optimizer step sees
    `batch_size * gradient_accumulation_steps * num_processes` clips."""

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

    def verify(self) -> None:
        for name, rule in (("learning_rate", "> 0"), ("adam_epsilon", "> 0"), ("weight_decay", ">= 0"),
                           ("adam_beta1", "in [0, 1)"), ("adam_beta2", "in [0, 1)")):
            _expect_number(f"optim.{name}", getattr(self, name), rule)
        _expect_number("optim.max_grad_norm", self.max_grad_norm, "> 0", optional=True)
        for name in ("batch_size", "gradient_accumulation_steps", "max_steps"):
            _expect_int(f"optim.{name}", getattr(self, name), low=1)
        _expect(isinstance(self.mixed_precision, MixedPrecision), "optim.mixed_precision", "to be a MixedPrecision",
                self.mixed_precision)


@dataclass(frozen=True)
class ObjectiveConfig:
    """The loss and what each micro-batch draws: caption dropout, timesteps, which frames are clean."""

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
    # Stage `t2v`: the probability that a clip's frame 0 stays clean (not noised, not in the loss), as
    # the I2V pipeline gives it; 0.0 is the plain T2V objective. A T2V model cannot gain from a motion
    # word when it must also guess where the shape starts (either direction blurs to the same mean
    # over start places) and sees the motion in the noisy frames below the highest noise; with the
    # first frame known, the direction is most of what is left to know about frames 1..F-1. The model
    # stays a text-to-video model: it still learns the other clips with every frame noised.
    first_frame_clean_prob: float = 0.0
    # Stage `vae`: weight of the mean per-element KL term, and the square crop size (0: whole frames)
    kl_weight: float = 1e-4
    vae_crop: int = 64

    def verify(self) -> None:
        for name, rule in (("prompt_dropout", "in [0, 1)"), ("timestep_power", "> 0"), ("p2_gamma", ">= 0"),
                           ("first_frame_clean_prob", "in [0, 1]"), ("kl_weight", ">= 0")):
            _expect_number(f"objective.{name}", getattr(self, name), rule)
        _expect_number("objective.v_weight_cap", self.v_weight_cap, ">= 1", optional=True)
        _expect_int("objective.pure_noise_from", self.pure_noise_from, low=1, optional=True)
        _expect_int("objective.vae_crop", self.vae_crop, low=0)


@dataclass(frozen=True)
class RunConfig:
    """One run's bookkeeping: its seed, how often it checkpoints, how long a session may last."""

    seed: int = 0
    checkpoint_every: int = 500
    # Wall-clock budget of one session (None: none): training stops at the first step boundary after
    # it, with a checkpoint and the final weights, and `--resume` continues towards optim.max_steps.
    max_minutes: float | None = None

    def verify(self) -> None:
        _expect_int("run.seed", self.seed, low=0)
        _expect_int("run.checkpoint_every", self.checkpoint_every, low=1)
        _expect_number("run.max_minutes", self.max_minutes, "> 0", optional=True)


SECTIONS: dict[str, type] = {
    "model": ModelConfig, "init": InitConfig, "data": DataConfig,
    "optim": OptimConfig, "objective": ObjectiveConfig, "run": RunConfig,
}


# --------------------------------------------------------------------------------------------------
# The whole config
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """One training run, section by section (see the module docstring for the JSON layout)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def effective_prediction_type(self) -> str:
        """`model.prediction_type`, or the preset's when it is null."""
        if self.model.prediction_type is not None:
            return self.model.prediction_type
        return get_preset(self.model.preset).scheduler.prediction_type

    def verify(self) -> None:
        """Every section's checks, then those across sections; raises `ValueError` naming the field
        by its dotted path, what was expected and what was found."""
        for name, cls in SECTIONS.items():
            section = getattr(self, name)
            _expect(isinstance(section, cls), name, f"to be a {cls.__name__}", section)
            section.verify()
        model, objective = self.model, self.objective
        if model.vae_decoder_only and (model.stage is not TrainStage.VAE or not self.init.vae):
            raise ValueError(
                "training config: model.vae_decoder_only fine-tunes a trained VAE's decoder: expected model.stage "
                f"'vae' with init.vae, got model.stage {model.stage.value!r} and init.vae {self.init.vae!r}"
            )
        if objective.first_frame_clean_prob and model.stage is not TrainStage.T2V:
            raise ValueError("training config: objective.first_frame_clean_prob mixes first-frame clips into the T2V "
                             "objective (the adapter stage always keeps frame 0 clean): expected model.stage 't2v', "
                             f"got {model.stage.value!r}")
        if objective.v_weight_cap is not None and self.effective_prediction_type() == "v_prediction":
            raise ValueError("training config: objective.v_weight_cap weights an epsilon loss as a v loss; with "
                             "model.prediction_type 'v_prediction' (set, or the preset's) the loss is the v loss "
                             "already: expected objective.v_weight_cap null or model.prediction_type 'epsilon', "
                             f"got {objective.v_weight_cap!r}")
        total = self.preset_config().scheduler.num_train_timesteps  # a frame count the preset cannot take raises here
        if objective.pure_noise_from is not None and objective.pure_noise_from >= total:
            raise ValueError(f"training config: expected objective.pure_noise_from below the {total} training "
                             f"timesteps, got {objective.pure_noise_from}")

    def preset_config(self) -> PresetConfig:
        """The model preset with this run's overrides (frame count, W_O' initialisation, VAE groups, prediction)."""
        model = self.model
        preset = get_preset(model.preset)
        changes = {"adapter_out_init_std": self.init.adapter_out_std}
        if model.num_frames is not None:
            changes["num_frames"] = model.num_frames
        if model.vae_norm_num_groups is not None:
            changes["vae"] = dataclasses.replace(preset.vae, norm_num_groups=model.vae_norm_num_groups)
        if model.prediction_type is not None:
            changes["scheduler"] = dataclasses.replace(preset.scheduler, prediction_type=model.prediction_type)
        return preset.with_overrides(**changes)

    def with_overrides(self, **sections: dict) -> "TrainConfig":
        """A verified copy with fields changed, by section: `with_overrides(optim={"max_steps": 4})`."""
        check_keys({name: dict(values) for name, values in sections.items()}, "training config overrides")
        changes = {name: _section(name, {**_field_values(getattr(self, name)), **values})
                   for name, values in sections.items()}
        cfg = dataclasses.replace(self, **changes)
        cfg.verify()
        return cfg

    def to_dict(self) -> dict[str, dict]:
        """The nested layout, JSON-ready (enums as their values)."""
        return {name: {key: value.value if isinstance(value, Enum) else value
                       for key, value in dataclasses.asdict(getattr(self, name)).items()}
                for name in SECTIONS}

    def to_json(self) -> str:
        """`to_dict()` as the text of a JSON file."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "training config") -> "TrainConfig":
        """A verified config from the nested layout or the flat one; errors start with `source`."""
        nested = nested_layout(data, source)
        try:
            cfg = cls(**{name: _section(name, values) for name, values in nested.items()})
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


# --------------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------------


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _field_values(section) -> dict:
    return {name: getattr(section, name) for name in _field_names(type(section))}


# Flat keys whose field has another name in its section.
_RENAMED = {
    "adapter_out_init_std": ("init", "adapter_out_std"),
    **{f"init_{name}": ("init", name) for name in ("adapter", "vae", "unet", "text_encoder")},
}
# The flat layout (every key at the top, as configs were written before the sections): each key's
# (section, field). The names are the fields' own but for `_RENAMED`.
FLAT_KEYS: dict[str, tuple[str, str]] = {
    **{name: (section, name) for section, cls in SECTIONS.items() for name in _field_names(cls)
       if (section, name) not in _RENAMED.values()},
    **_RENAMED,
}


def _unknown(source: str, keys: list[str], candidates: list[str], expected: str) -> ValueError:
    """One error naming every unknown key, with the closest of `candidates` where there is one."""
    hints = []
    for key in keys:
        close = difflib.get_close_matches(key.rpartition(".")[2], candidates, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return ValueError(f"{source}: unknown key{'s' if len(keys) > 1 else ''} {', '.join(hints)}; expected {expected}")


def check_keys(nested: dict, source: str) -> None:
    """Refuse top-level keys that are not sections and section keys that are not fields, by name."""
    stray = [key for key in nested if key not in SECTIONS]
    if stray:
        flat = [f"{key!r} is {'.'.join(FLAT_KEYS[key])}" for key in stray if key in FLAT_KEYS]
        expected = f"the sections {', '.join(SECTIONS)}" + (f" (in the nested layout {', '.join(flat)})" if flat else "")
        raise _unknown(source, stray, [], expected)
    for name, values in nested.items():
        if not isinstance(values, dict):
            raise ValueError(f"{source}: expected section {name!r} to be a JSON object, found {type(values).__name__}")
        known = _field_names(SECTIONS[name])
        unknown = [f"{name}.{key}" for key in values if key not in known]
        if unknown:
            raise _unknown(source, unknown, known, f"the keys of {name}: {', '.join(known)}")


def nested_layout(data: dict, source: str = "training config") -> dict[str, dict]:
    """`data` in the nested layout: a flat config's keys moved to their sections (`FLAT_KEYS`). A
    config with any section at the top is read as nested. Unknown keys raise `ValueError` by name."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, found {type(data).__name__}")
    if not any(key in SECTIONS for key in data):
        unknown = [key for key in data if key not in FLAT_KEYS]
        if unknown:
            raise _unknown(source, unknown, list(FLAT_KEYS), "a key of the flat layout (config.FLAT_KEYS) or "
                           f"the nested layout's sections {', '.join(SECTIONS)}")
        nested: dict[str, dict] = {}
        for key, value in data.items():
            section, name = FLAT_KEYS[key]
            nested.setdefault(section, {})[name] = value
        return nested
    check_keys(data, source)
    return {name: dict(values) for name, values in data.items()}


def _section(name: str, values: dict):
    """Section `name` from its values, enum fields' JSON strings converted (a bad one named by its path)."""
    cls, values = SECTIONS[name], dict(values)
    for f in dataclasses.fields(cls):
        value = values.get(f.name)
        if isinstance(f.default, Enum) and f.name in values and not isinstance(value, Enum):
            enum = type(f.default)
            try:
                values[f.name] = enum(value)
            except ValueError:
                raise ValueError(f"training config: expected {name}.{f.name} to be one of "
                                 f"{[e.value for e in enum]}, got {value!r}") from None
    return cls(**values)


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------

_RULES = {
    "> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, ">= 1": lambda v: v >= 1,
    "in [0, 1)": lambda v: 0 <= v < 1, "in [0, 1]": lambda v: 0 <= v <= 1,
}


def _expect(ok: bool, name: str, expected: str, value) -> None:
    if not ok:
        raise ValueError(f"training config: expected {name} {expected}, got {value!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expect_number(name: str, value, rule: str, *, optional: bool = False) -> None:
    """A number (not a bool) that passes `rule` (a key of `_RULES`), or null where `optional`."""
    ok = (optional and value is None) or (_is_number(value) and _RULES[rule](value))
    _expect(ok, name, f"to be a number {rule}" + (" or null" if optional else ""), value)


def _expect_int(name: str, value, *, low: int, optional: bool = False) -> None:
    ok = (optional and value is None) or (isinstance(value, int) and not isinstance(value, bool) and value >= low)
    _expect(ok, name, f"to be an integer >= {low}" + (" or null" if optional else ""), value)


def _expect_bool(name: str, value) -> None:
    _expect(isinstance(value, bool), name, "to be true or false", value)


def _expect_choice(name: str, value, choices) -> None:
    """One of the strings (or None) `choices`."""
    shown = ", ".join("null" if c is None else repr(c) for c in choices)
    _expect(value in choices and (value is None or isinstance(value, str)), name, f"to be one of {shown}", value)
