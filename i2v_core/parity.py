"""Parity figures between an exported stage and its PyTorch reference, and the gate on them.

Torch-free (numpy only): the runtime measures its own hop with the same functions.

PSNR here is relative to the reference's own range, so it means the same for latents, noise
predictions, text states and images:

    PSNR = 20 * log10(peak / RMSE),  peak = max(ref) - min(ref),  RMSE = sqrt(mean((out - ref)^2))

(peak 1.0 if the reference is constant). An exact match is reported as `PSNR_CAP_DB` rather than
infinity, so manifests stay plain JSON. 60 dB means an RMS error of 0.1% of the range; fp32 exports
land above 100 dB, so anything below 60 dB is a conversion bug, not rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PSNR_CAP_DB = 200.0
FP32_MIN_PSNR_DB = 60.0
MIN_GUIDANCE_CORRELATION = 0.99


class ParityError(RuntimeError):
    """An exported stage does not reproduce its PyTorch reference closely enough."""


def psnr_db(out: np.ndarray, ref: np.ndarray) -> float:
    """PSNR of `out` against `ref` in dB, relative to the peak-to-peak range of `ref` (see module doc)."""
    out64, ref64 = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    if out64.shape != ref64.shape:
        raise ValueError(f"expected output of shape {ref64.shape} to compare, got {out64.shape}")
    rmse = math.sqrt(float(np.mean((out64 - ref64) ** 2)))
    peak = float(ref64.max() - ref64.min()) or 1.0
    if rmse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 20.0 * math.log10(peak / rmse))


def max_abs(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(out, np.float64) - np.asarray(ref, np.float64))))


def guidance_delta(noise_pred: np.ndarray, batch_size: int) -> np.ndarray:
    """Classifier-free-guidance delta `cond - uncond`: `(2B, ...)` -> `(B, ...)` (rows are [uncond, cond])."""
    if noise_pred.shape[0] != 2 * batch_size:
        raise ValueError(f"expected a guided batch of {2 * batch_size} rows, got {noise_pred.shape[0]}")
    return noise_pred[batch_size:] - noise_pred[:batch_size]


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays, flattened (1.0 for two identical constant arrays)."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    if denom == 0.0:
        return 1.0 if np.array_equal(x, y) else 0.0
    return float(x @ y) / denom


@dataclass(frozen=True)
class Parity:
    """Figures for one stage in one runtime; `guidance_correlation` only for the UNet."""

    psnr_db: float
    max_abs: float
    guidance_correlation: float | None = None
    guidance_std: tuple[float, float] | None = None  # (exported, PyTorch) std of cond - uncond

    def to_dict(self) -> dict:
        d = {"psnr_db": round(self.psnr_db, 3), "max_abs": self.max_abs}
        if self.guidance_correlation is not None:
            d["guidance_correlation"] = self.guidance_correlation
            d["guidance_std"] = {"exported": self.guidance_std[0], "pytorch": self.guidance_std[1]}
        return d


def measure(out: np.ndarray, ref: np.ndarray, *, guided_batch_size: int | None = None) -> Parity:
    """Parity of `out` against `ref`; with `guided_batch_size` also the guidance-delta figures."""
    if guided_batch_size is None:
        return Parity(psnr_db(out, ref), max_abs(out, ref))
    d_out, d_ref = guidance_delta(out, guided_batch_size), guidance_delta(ref, guided_batch_size)
    return Parity(
        psnr_db(out, ref),
        max_abs(out, ref),
        correlation(d_out, d_ref),
        (float(d_out.std()), float(d_ref.std())),
    )


def check(parity: Parity, *, stage: str, target: str, min_psnr_db: float = FP32_MIN_PSNR_DB) -> None:
    """Raise `ParityError` with the figures if `parity` is below the gate's thresholds."""
    problems = []
    if parity.psnr_db < min_psnr_db:
        problems.append(f"PSNR {parity.psnr_db:.1f} dB < {min_psnr_db:g} dB (max-abs {parity.max_abs:.3g})")
    corr = parity.guidance_correlation
    if corr is not None and not corr >= MIN_GUIDANCE_CORRELATION:
        exported, pytorch = parity.guidance_std
        problems.append(
            f"guidance delta (cond - uncond) correlation {corr:.4f} < {MIN_GUIDANCE_CORRELATION} "
            f"(std exported {exported:.4g} vs PyTorch {pytorch:.4g})"
        )
    if problems:
        raise ParityError(f"{stage} exported to {target} fails the parity gate: " + "; ".join(problems))
