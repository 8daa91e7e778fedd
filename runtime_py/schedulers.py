"""Noise schedulers in numpy: DDIM, Euler and a few-step LCM, step for step as diffusers' classes.

Each scheduler is built from the preset's `SchedulerConfig` (the training schedule) and has the
interface the pipeline needs: `set_timesteps(n)`, `timesteps`, `init_noise_sigma`,
`scale_model_input(sample, t)`, `step(model_output, t, sample, ...) -> prev_sample` and
`add_noise(x, noise, t)`. Defaults are those of `X.from_config(ddim_config)` in diffusers:

- `DDIMScheduler` (`diffusers.DDIMScheduler`): eta 0 (deterministic), "leading" spacing plus
  `steps_offset`, as the official I2V-Adapter inference.
- `EulerScheduler` (`diffusers.EulerDiscreteScheduler`): sigma space, "linspace" spacing, linear
  sigma interpolation, no churn; the model input is scaled by `1 / sqrt(sigma^2 + 1)`.
- `LCMScheduler` (`diffusers.LCMScheduler`): consistency-model boundary scalings, skipping steps of
  a 50-step origin schedule, and fresh noise injected between steps (from a numpy `Generator`, or
  passed in).

Numerics: arithmetic is float32 in diffusers' order of operations, and float64 where diffusers uses
float64 (the cumulative product of alphas, Euler's sigma interpolation). On the same float32
inputs the results agree with diffusers to the last bit or within an ulp or so; torch's float32
`sqrt` is not always correctly rounded, so a coefficient can differ by one ulp (tested: every step
<= 1e-6). Exact agreement matters for Euler, whose samples reach about 100 at the first step, where
float32's own spacing is 7.6e-6.

Every scheduler reads the UNet output as the config's `prediction_type`: the noise (`epsilon`) or
the velocity `sqrt(a_t) eps - sqrt(1 - a_t) x0` (`v_prediction`), in diffusers' formulas.

Letters: shapes are free; the pipeline passes `(B, C, F-1, h, w)` latents (frame 0 is not stepped).
"""

from __future__ import annotations

import numpy as np

from i2v_core.config import SchedulerConfig

SPACINGS = ("leading", "linspace", "trailing")
_F32 = np.float32


def torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """`torch.linspace(start, end, steps, dtype=torch.float32)` on CPU, as `(steps,)` float32.

    torch computes `start + step * i` for the first half and `end - step * (steps - 1 - i)` for the
    second, each rounded once (a fused multiply-add) in float32; this is equal to the bit with torch
    2.13 on x86-64. `np.linspace` rounds differently in about a third of the entries, which moves
    `alphas_cumprod` by up to 4e-7 relative.
    """
    start32, end32 = _F32(start), _F32(end)
    step = (end32 - start32) / _F32(steps - 1)
    i = np.arange(steps)
    lower = i < steps // 2
    k = np.where(lower, i, steps - 1 - i).astype(np.float64)
    base = np.where(lower, float(start32), float(end32))
    # The product of two float32 values is exact in float64, so this is one rounding, as an FMA.
    return (np.where(lower, 1.0, -1.0) * float(step) * k + base).astype(np.float32)


def alphas_cumprod(cfg: SchedulerConfig) -> np.ndarray:
    """`(num_train_timesteps,)` float32 cumulative products of `1 - beta`, as diffusers builds them."""
    n = cfg.num_train_timesteps
    if cfg.beta_schedule == "linear":
        betas = torch_linspace_f32(cfg.beta_start, cfg.beta_end, n)
    elif cfg.beta_schedule == "scaled_linear":
        betas = torch_linspace_f32(cfg.beta_start**0.5, cfg.beta_end**0.5, n) ** 2
    else:
        raise ValueError(f"expected beta_schedule 'linear' or 'scaled_linear', got {cfg.beta_schedule!r}")
    alphas = _F32(1.0) - betas
    # torch's CPU cumprod accumulates float32 in float64 and rounds each entry.
    return np.cumprod(alphas.astype(np.float64)).astype(np.float32)


def spaced_timesteps(num_steps: int, num_train_timesteps: int, spacing: str, steps_offset: int = 0) -> np.ndarray:
    """`(num_steps,)` float64 timesteps, descending, for diffusers' `timestep_spacing` modes.

    "leading" and "trailing" are whole numbers; "linspace" is left unrounded (DDIM rounds it, Euler
    interpolates between training steps).
    """
    if spacing == "linspace":
        return np.linspace(0, num_train_timesteps - 1, num_steps)[::-1].copy()
    if spacing == "leading":
        ratio = num_train_timesteps // num_steps
        return (np.arange(0, num_steps) * ratio).round()[::-1] + steps_offset
    if spacing == "trailing":
        return np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / num_steps)) - 1
    raise ValueError(f"expected timestep_spacing in {SPACINGS}, got {spacing!r}")


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


class Scheduler:
    """What the pipeline uses; variance-preserving defaults (`add_noise`, no input scaling)."""

    name = ""
    prediction_types: tuple[str, ...] = ("epsilon", "v_prediction")  # what the UNet's output may be

    def __init__(self, cfg: SchedulerConfig | None = None):
        cfg = cfg or SchedulerConfig()
        if cfg.prediction_type not in self.prediction_types:
            kinds = " or ".join(repr(k) for k in self.prediction_types)
            raise ValueError(f"{type(self).__name__} supports prediction_type {kinds}, got {cfg.prediction_type!r}")
        self.config = cfg
        self.alphas_cumprod = alphas_cumprod(cfg)
        self.final_alpha_cumprod = _F32(1.0) if cfg.set_alpha_to_one else self.alphas_cumprod[0]
        self.num_inference_steps: int | None = None
        self.timesteps = np.zeros(0, dtype=np.int64)
        self._step_index: int | None = None

    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the initial noise (pure-noise start)."""
        return 1.0

    def _check_num_steps(self, num_steps: int, limit: int | None = None) -> None:
        limit = limit or self.config.num_train_timesteps
        if not 1 <= num_steps <= limit:
            raise ValueError(f"{type(self).__name__}: expected num_inference_steps in [1, {limit}], got {num_steps}")
        self.num_inference_steps = num_steps
        self._step_index = None

    def _require_timesteps(self) -> None:
        if self.num_inference_steps is None:
            raise ValueError(f"{type(self).__name__}: call set_timesteps(n) before stepping")

    def index_for_timestep(self, t) -> int:
        """Position of `t` in `timesteps` (the second match if repeated, as diffusers does)."""
        matches = np.nonzero(self.timesteps == t)[0]
        if matches.size == 0:
            raise ValueError(f"{type(self).__name__}: timestep {t} is not in the schedule {self.timesteps.tolist()}")
        return int(matches[1] if matches.size > 1 else matches[0])

    def _current_index(self, t) -> int:
        """diffusers' stateful step index: found from the first timestep, then counted."""
        if self._step_index is None:
            self._step_index = self.index_for_timestep(t)
        return self._step_index

    def scale_model_input(self, sample: np.ndarray, t) -> np.ndarray:
        return sample

    def add_noise(self, x: np.ndarray, noise: np.ndarray, t) -> np.ndarray:
        """`sqrt(a_t) * x + sqrt(1 - a_t) * noise` (forward diffusion to timestep `t`)."""
        a_t = self.alphas_cumprod[int(np.asarray(t).reshape(-1)[0])]
        return np.sqrt(a_t) * _f32(x) + np.sqrt(_F32(1.0) - a_t) * _f32(noise)

    @property
    def _velocity(self) -> bool:
        return self.config.prediction_type == "v_prediction"

    def _predict_original(self, output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """`x0 = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)`, or `sqrt(a_t) x_t - sqrt(1 - a_t) v`, clipped
        to [-1, 1] if the config says so."""
        a_t = self.alphas_cumprod[t]
        if self._velocity:
            x0 = np.sqrt(a_t) * sample - np.sqrt(_F32(1.0) - a_t) * output
        else:
            x0 = (sample - np.sqrt(_F32(1.0) - a_t) * output) / np.sqrt(a_t)
        return np.clip(x0, -1.0, 1.0) if self.config.clip_sample else x0

    def _predict_noise(self, output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """The noise: the output itself, or `sqrt(a_t) v + sqrt(1 - a_t) x_t`."""
        if not self._velocity:
            return output
        a_t = self.alphas_cumprod[t]
        return np.sqrt(a_t) * output + np.sqrt(_F32(1.0) - a_t) * sample

    def _alpha_prev(self, prev_t: int) -> np.float32:
        return self.alphas_cumprod[prev_t] if prev_t >= 0 else self.final_alpha_cumprod


class DDIMScheduler(Scheduler):
    """Deterministic DDIM (eta 0) over `timestep_spacing` timesteps (default "leading")."""

    name = "ddim"

    def __init__(self, cfg: SchedulerConfig | None = None, *, timestep_spacing: str = "leading"):
        super().__init__(cfg)
        self.timestep_spacing = timestep_spacing

    def set_timesteps(self, num_inference_steps: int) -> None:
        self._check_num_steps(num_inference_steps)
        cfg = self.config
        ts = spaced_timesteps(num_inference_steps, cfg.num_train_timesteps, self.timestep_spacing, cfg.steps_offset)
        self.timesteps = (ts.round() if self.timestep_spacing == "linspace" else ts).astype(np.int64)

    def step(self, model_output: np.ndarray, t, sample: np.ndarray, *, generator=None, noise=None) -> np.ndarray:
        """`x_{t-1}` from `x_t` and the UNet's output (the noise, or with `v_prediction` the velocity
        `sqrt(a_t) eps - sqrt(1 - a_t) x0`). Deterministic: `generator` and `noise` are unused."""
        self._require_timesteps()
        t = int(t)
        output, sample = _f32(model_output), _f32(sample)
        prev_t = t - self.config.num_train_timesteps // self.num_inference_steps
        a_prev = self._alpha_prev(prev_t)
        x0, eps = self._predict_original(output, t, sample), self._predict_noise(output, t, sample)
        return np.sqrt(a_prev) * x0 + np.sqrt(_F32(1.0) - a_prev) * eps


class EulerScheduler(Scheduler):
    """Euler in sigma space (`x = x0 + sigma * eps`), diffusers' `EulerDiscreteScheduler` defaults."""

    name = "euler"

    def __init__(self, cfg: SchedulerConfig | None = None, *, timestep_spacing: str = "linspace"):
        super().__init__(cfg)
        self.timestep_spacing = timestep_spacing
        ac = self.alphas_cumprod
        self.train_sigmas = np.sqrt((_F32(1.0) - ac) / ac)  # (T,) float32, sigma of each training step
        self.sigmas = np.zeros(1, dtype=np.float32)

    @property
    def init_noise_sigma(self) -> float:
        top = self.sigmas.max()
        if self.timestep_spacing in ("linspace", "trailing"):
            return float(top)
        return float(np.sqrt(top * top + _F32(1.0)))

    def set_timesteps(self, num_inference_steps: int) -> None:
        self._check_num_steps(num_inference_steps)
        cfg = self.config
        ts = spaced_timesteps(num_inference_steps, cfg.num_train_timesteps, self.timestep_spacing, cfg.steps_offset)
        ts = ts.astype(np.float32)
        sigmas = np.interp(ts, np.arange(cfg.num_train_timesteps), self.train_sigmas)  # float64, as diffusers
        self.sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)  # (n + 1,): ends at sigma 0
        self.timesteps = ts

    def _sigma(self, t) -> np.float32:
        self._require_timesteps()
        return self.sigmas[self._current_index(float(t))]

    def scale_model_input(self, sample: np.ndarray, t) -> np.ndarray:
        """`sample / sqrt(sigma^2 + 1)`: the variance-preserving input the UNet was trained on."""
        sigma = self._sigma(t)
        return _f32(sample) / np.sqrt(sigma * sigma + _F32(1.0))

    def step(self, model_output: np.ndarray, t, sample: np.ndarray, *, generator=None, noise=None) -> np.ndarray:
        """One Euler step from `sigma_i` to `sigma_{i+1}`; advances the step index. No churn, so
        `generator` and `noise` are unused."""
        sigma = self._sigma(t)
        i = self._step_index
        output, sample = _f32(model_output), _f32(sample)
        if self._velocity:  # the UNet saw sample / sqrt(sigma^2 + 1), the variance-preserving sample
            x0 = output * (-sigma / (sigma**2 + _F32(1.0)) ** _F32(0.5)) + sample / (sigma**2 + _F32(1.0))
        else:
            x0 = sample - sigma * output
        derivative = (sample - x0) / sigma
        prev = sample + derivative * (self.sigmas[i + 1] - sigma)
        self._step_index = i + 1
        return prev

    def add_noise(self, x: np.ndarray, noise: np.ndarray, t) -> np.ndarray:
        """`x + sigma_t * noise` at the schedule's timestep `t`."""
        self._require_timesteps()
        sigma = self.sigmas[self.index_for_timestep(float(np.asarray(t).reshape(-1)[0]))]
        return _f32(x) + _f32(noise) * sigma


class LCMScheduler(Scheduler):
    """Latent consistency sampling: few steps on a skipping schedule, noise re-injected between steps.

    `original_inference_steps` is the distillation schedule (every `T / 50`-th step);
    `timestep_scaling` sets the boundary-condition scalings `c_skip`, `c_out`.
    """

    name = "lcm"
    SIGMA_DATA = 0.5

    def __init__(
        self, cfg: SchedulerConfig | None = None, *, original_inference_steps: int = 50, timestep_scaling: float = 10.0
    ):
        super().__init__(cfg)
        self.original_inference_steps = original_inference_steps
        self.timestep_scaling = timestep_scaling

    def set_timesteps(self, num_inference_steps: int) -> None:
        original = self.original_inference_steps
        train = self.config.num_train_timesteps
        if original > train:
            raise ValueError(f"LCMScheduler: original_inference_steps {original} exceeds {train} training timesteps")
        self._check_num_steps(num_inference_steps, limit=original)
        k = train // original
        origin = (np.arange(1, original + 1) * k - 1)[::-1]  # (original,) descending
        picks = np.floor(np.linspace(0, original, num=num_inference_steps, endpoint=False)).astype(np.int64)
        self.timesteps = origin[picks].astype(np.int64)

    def boundary_scalings(self, t: int) -> tuple[np.float32, np.float32]:
        """`(c_skip, c_out)` at timestep `t`, in float32 as diffusers computes them for a tensor `t`."""
        scaled = _F32(t) * _F32(self.timestep_scaling)
        denom = scaled * scaled + _F32(self.SIGMA_DATA**2)
        return _F32(self.SIGMA_DATA**2) / denom, scaled / np.sqrt(denom)

    def step(
        self,
        model_output: np.ndarray,
        t,
        sample: np.ndarray,
        *,
        generator: np.random.Generator | None = None,
        noise: np.ndarray | None = None,
    ) -> np.ndarray:
        """Denoise to the consistency estimate, then re-noise to the next timestep (not after the last).

        The injected noise is `noise` if given, else `generator.standard_normal` (float32).
        """
        self._require_timesteps()
        t = int(t)
        i = self._current_index(t)
        prev_t = int(self.timesteps[i + 1]) if i + 1 < len(self.timesteps) else t
        eps, sample = _f32(model_output), _f32(sample)
        c_skip, c_out = self.boundary_scalings(t)
        denoised = c_out * self._predict_original(eps, t, sample) + c_skip * sample
        self._step_index = i + 1
        if i == self.num_inference_steps - 1:
            return denoised
        if noise is None:
            if generator is None:
                raise ValueError("LCMScheduler.step needs `generator` or `noise` for the noise between steps")
            noise = generator.standard_normal(eps.shape, dtype=np.float32)
        elif noise.shape != eps.shape:
            raise ValueError(f"expected LCM step noise of shape {eps.shape}, got {noise.shape}")
        a_prev = self._alpha_prev(prev_t)
        return np.sqrt(a_prev) * denoised + np.sqrt(_F32(1.0) - a_prev) * _f32(noise)


SCHEDULERS: dict[str, type[Scheduler]] = {"ddim": DDIMScheduler, "euler": EulerScheduler, "lcm": LCMScheduler}


def make_scheduler(name: str, cfg: SchedulerConfig | None = None, **options) -> Scheduler:
    """A scheduler by name (`ddim`, `euler`, `lcm`) for the training schedule `cfg`."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}: expected one of {', '.join(SCHEDULERS)}") from None
    return cls(cfg, **options)
