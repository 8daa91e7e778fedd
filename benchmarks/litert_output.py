"""Parse the text LiteRT's `benchmark_model` prints (torch-free).

Two layouts exist and a run may print both:

- the TensorFlow Lite benchmark tool's lines (microseconds; an `INFO: ` prefix on newer builds):

      count=50 first=74456 curr=74516 min=73909 max=75323 avg=74481.6 std=268 [p5=... median=... p95=...]
      Inference timings in us: Init: 18738, First inference: 140706, Warmup (avg): 85791.2, Inference (avg): 74481.6
      Peak memory footprint (MB): init=6.44141 overall=64.8633
      (older: "Memory footprint delta from the start of the tool (MB): init=... overall=...";
       newer: "Overall peak memory footprint (MB) via periodic monitoring: ...")

- LiteRT's `CompiledModel` tool's results block (milliseconds):

      Model initialization: 123.45 ms
      Warmup (first):       12.34 ms
      Inference (avg):      10.00 ms (50 runs)
      Inference (min):      9.00 ms
      Inference (max):      12.00 ms
      Peak memory:          30.00 MB

The result is in milliseconds and MB whatever the layout; the summary (`count=`) line with the most
runs is the timed run (the first one is the warm-up).
"""

from __future__ import annotations

import re

_NUM = r"([0-9.]+(?:e[+-]?\d+)?)"
_COUNT = re.compile(rf"count=(\d+) first={_NUM} curr={_NUM} min={_NUM} max={_NUM} avg={_NUM} std={_NUM}"
                    rf"(?: p5={_NUM} median={_NUM} p95={_NUM})?")
_TIMINGS = re.compile(rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, "
                      rf"Warmup \(avg\): {_NUM}, Inference \(avg\): {_NUM}")
_PEAK_MEMORY = (
    re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUM}"),
    re.compile(rf"Peak memory footprint \(MB\): init={_NUM} overall={_NUM}"),
    re.compile(rf"Memory footprint delta from the start of the tool \(MB\): init={_NUM} overall={_NUM}"),
    re.compile(rf"Peak memory:\s+{_NUM} MB"),
)
_LITERT = {
    "init_ms": re.compile(rf"Model initialization:\s+{_NUM} ms"),
    "first_inference_ms": re.compile(rf"Warmup \(first\):\s+{_NUM} ms"),
    "avg_ms": re.compile(rf"Inference \(avg\):\s+{_NUM} ms(?: \((\d+) runs\))?"),
    "min_ms": re.compile(rf"Inference \(min\):\s+{_NUM} ms"),
    "max_ms": re.compile(rf"Inference \(max\):\s+{_NUM} ms"),
}
_ERROR_HINTS = re.compile(r"(ERROR|Error|error|Failed|failed|Aborted|not supported|Segmentation fault)")


class BenchmarkOutputError(ValueError):
    """The output holds no inference timings: the run failed or the tool printed something else."""


def _classic(text: str) -> dict:
    out: dict = {}
    counts = [m for m in _COUNT.finditer(text)]
    if counts:
        m = max(counts, key=lambda c: int(c.group(1)))
        us = [float(g) if g is not None else None for g in m.groups()[1:]]
        out.update(runs=int(m.group(1)), min_ms=us[2] / 1e3, max_ms=us[3] / 1e3, avg_ms=us[4] / 1e3, std_ms=us[5] / 1e3)
        if us[7] is not None:
            out.update(p5_ms=us[6] / 1e3, median_ms=us[7] / 1e3, p95_ms=us[8] / 1e3)
    timings = _TIMINGS.search(text)
    if timings:
        init, first, warm, avg = (float(g) / 1e3 for g in timings.groups())
        out.update(init_ms=init, first_inference_ms=first, warmup_avg_ms=warm)
        out.setdefault("avg_ms", avg)
    return out


def _litert(text: str) -> dict:
    out: dict = {}
    for key, pattern in _LITERT.items():
        m = pattern.search(text)
        if m:
            out[key] = float(m.group(1))
            if key == "avg_ms" and m.group(2):
                out["runs"] = int(m.group(2))
    return out


def _peak_memory(text: str) -> float | None:
    for pattern in _PEAK_MEMORY:
        m = pattern.search(text)
        if m:
            return float(m.groups()[-1])  # the `overall` figure where there are two
    return None


def error_lines(text: str, limit: int = 5) -> list[str]:
    """The output's lines that look like errors (the first `limit`), for a failure message."""
    return [line.strip() for line in text.splitlines() if _ERROR_HINTS.search(line)][:limit]


def parse_benchmark_output(text: str) -> dict:
    """`{avg_ms, min_ms, max_ms, init_ms, first_inference_ms, runs, peak_memory_mb, ...}` from the output.

    Raises `BenchmarkOutputError` (with the error lines found) if no inference timing is present.
    """
    result = {**_litert(text), **{k: v for k, v in _classic(text).items() if v is not None}}
    if "avg_ms" not in result:
        hints = error_lines(text)
        found = "; ".join(hints) if hints else f"last line: {text.strip().splitlines()[-1] if text.strip() else '(no output)'}"
        raise BenchmarkOutputError(f"expected 'Inference timings' / 'Inference (avg)' in benchmark_model output, found none ({found})")
    result["peak_memory_mb"] = _peak_memory(text)
    return result
