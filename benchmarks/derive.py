"""Figures derived from the measured rows (torch-free): per denoising step, per video, ratios, targets.

One video (the reference pipeline, `i2v_adapter.pipeline` / `runtime_py.pipeline`) calls:

    text_encoder x 2 (prompt and negative prompt) [+ image_encoder x 1]
    + vae_encoder x 1 (the input image) + unet x steps (one CFG-batched call per step)
    + vae_decoder x F (one frame per call)

Scheduler arithmetic, FSP and colour matching are numpy work of milliseconds and are not counted.
"""

from __future__ import annotations

from benchmarks.jobs import ADAPTED, BACKENDS

# Targets of issue 7, written into the report (never asserted in tests).
TARGET_ONNX_VS_TORCH = 0.70  # onnxruntime fp32 UNet step <= 0.7x PyTorch eager
TARGET_FUSED_VS_BASE = 1.10  # fused adapted UNet <= 1.10x the base T2V UNet


def calls_per_video(stages: list[str], num_frames: int, steps: int) -> dict[str, int]:
    """How many times one video calls each stage."""
    counts = {"text_encoder": 2, "image_encoder": 1, "vae_encoder": 1, "unet": steps, "vae_decoder": num_frames}
    return {s: counts[s] for s in stages if s in counts}


def median_of(rows: list[dict], stage: str, backend: str, precision: str, variant: str = ADAPTED, key: str = "median_ms") -> float | None:
    """The median ms (or `key`) of the matching measured row, None if it was not measured (or failed).

    Phone rows from `benchmark_model` may carry only the mean: then the mean stands in for the median."""
    for row in rows:
        if (row["stage"], row["backend"], row["precision"], row["variant"]) == (stage, backend, precision, variant):
            if row.get("status") != "ok":
                return None
            latency = row["latency_ms"]
            if latency.get(key) is None and key == "median_ms":
                return latency.get("mean_ms")
            return latency.get(key)
    return None


def per_step_and_video(rows: list[dict], video_stages: list[str], num_frames: int, steps: int) -> list[dict]:
    """One entry per backend and precision that has a UNet figure: the step's ms, and the video's
    when every stage of `video_stages` (all stages of the preset) was measured; else the missing ones."""
    counts = calls_per_video(video_stages, num_frames, steps)
    combos = dict.fromkeys((r["backend"], r["precision"]) for r in rows if r["variant"] == ADAPTED)
    out = []
    for backend, precision in combos:
        step = median_of(rows, "unet", backend, precision)
        if step is None:
            continue
        parts = {s: median_of(rows, s, backend, precision) for s in counts}
        missing = [s for s, v in parts.items() if v is None]
        entry = {"backend": backend, "precision": precision, "step_ms": step, "steps": steps, "calls": counts}
        if missing:
            entry.update(video_ms=None, video_missing=missing)
        else:
            entry["video_parts_ms"] = {s: parts[s] * n for s, n in counts.items()}
            entry["video_ms"] = sum(entry["video_parts_ms"].values())
        out.append(entry)
    return out


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def adapter_cost(rows: list[dict]) -> list[dict]:
    """Per backend: base, naive and fused UNet step ms and the adapted / base ratios, of the medians
    and (`*_min`) of the fastest calls: on a shared machine other processes only ever add time, so the
    ratio of minima is the one least disturbed by them."""
    out = []
    for backend in BACKENDS:
        ms = {v: median_of(rows, "unet", backend, "fp32", v) for v in ("base", "naive", "fused")}
        fastest = {v: median_of(rows, "unet", backend, "fp32", v, key="min_ms") for v in ("base", "naive", "fused")}
        if all(v is None for v in ms.values()):
            continue
        out.append({
            "backend": backend,
            **{f"{v}_ms": m for v, m in ms.items()},
            "naive_vs_base": _ratio(ms["naive"], ms["base"]),
            "fused_vs_base": _ratio(ms["fused"], ms["base"]),
            "naive_vs_base_min": _ratio(fastest["naive"], fastest["base"]),
            "fused_vs_base_min": _ratio(fastest["fused"], fastest["base"]),
        })
    return out


def backend_ratios(rows: list[dict], stages: list[str]) -> list[dict]:
    """Each runtime backend's fp32 median over PyTorch eager's, per stage."""
    out = []
    for stage in stages:
        torch_ms = median_of(rows, stage, "torch", "fp32")
        for backend in ("onnx", "tflite"):
            r = _ratio(median_of(rows, stage, backend, "fp32"), torch_ms)
            if r is not None:
                fastest = _ratio(median_of(rows, stage, backend, "fp32", key="min_ms"),
                                 median_of(rows, stage, "torch", "fp32", key="min_ms"))
                out.append({"stage": stage, "backend": backend, "vs_torch": r, "vs_torch_min": fastest})
    return out


def targets(rows: list[dict], cost: list[dict]) -> list[dict]:
    """The issue's targets with the measured value and whether it is met (None: not measured)."""
    onnx_vs_torch = _ratio(median_of(rows, "unet", "onnx", "fp32"), median_of(rows, "unet", "torch", "fp32"))
    fastest = _ratio(median_of(rows, "unet", "onnx", "fp32", key="min_ms"), median_of(rows, "unet", "torch", "fp32", key="min_ms"))
    out = [{
        "name": "onnxruntime fp32 UNet step / PyTorch eager",
        "limit": TARGET_ONNX_VS_TORCH,
        "value": onnx_vs_torch,
        "value_fastest": fastest,
        "met": None if onnx_vs_torch is None else onnx_vs_torch <= TARGET_ONNX_VS_TORCH,
    }]
    for entry in cost:
        value = entry["fused_vs_base"]
        out.append({
            "name": f"fused adapted UNet / base T2V UNet ({entry['backend']})",
            "limit": TARGET_FUSED_VS_BASE,
            "value": value,
            "value_fastest": entry.get("fused_vs_base_min"),
            "met": None if value is None else value <= TARGET_FUSED_VS_BASE,
        })
    return out
