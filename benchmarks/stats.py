"""Timing loop and summary statistics (torch-free).

A measurement is warm-up calls (not recorded) followed by `repeats` timed calls; the summary keeps
the median and the 10th / 90th percentiles (linear interpolation, as `numpy.percentile`), which are
robust on a noisy shared machine where the mean is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call over `runs` timed calls."""

    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> "LatencyStats":
        if len(samples) == 0:
            raise ValueError("expected at least one timed call, got none")
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        p10, median, p90 = np.percentile(ms, [10, 50, 90])
        return cls(len(ms), float(median), float(p10), float(p90), float(ms.min()), float(ms.max()), float(ms.mean()))

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def time_calls(fn: Callable[[], object], warmup: int, repeats: int, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Call `fn` `warmup` times untimed, then `repeats` times; return each timed call's seconds."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"expected warmup >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(clock() - start)
    return samples
