"""`report.md` and the PNG plots from a results dict (torch-free; matplotlib with the Agg backend).

The same renderer serves host runs (`benchmarks.run`) and phone runs (`benchmarks.device`): sections
without data are left out, and every row that was not measured says why.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmarks.estimate import render_estimate
from benchmarks.results import REPORT_NAME, RESULTS_NAME, load_results, write_json
from benchmarks.tables import fmt, mb, table
from i2v_core import cli

logger = logging.getLogger(__name__)

LATENCY_PLOT = "plots/latency.png"
SIZE_PSNR_PLOT = "plots/size_psnr.png"


def _header(results: dict) -> list[str]:
    m, s, p = results["machine"], results["settings"], results["preset"]
    if results["kind"] == "device":
        where = [f"- device: {m.get('model')} ({m.get('soc')}), Android {m.get('android')}, {m.get('abi')}; serial {m.get('serial')}",
                 "- figures from LiteRT's benchmark_model on the phone; the median is its mean where it prints no median"]
    else:
        where = [f"- machine: {m.get('cpu')}, {m.get('cpu_count')} cores, {m.get('memory_gb')} GB; {m.get('platform')}",
                 f"- load average at start: {m.get('load_average')} (a shared machine: compare rows of one run, not runs)"]
    lines = [
        f"# Benchmark: `{p['name']}` ({results['kind']})",
        "",
        f"Created {results['created']}. Preset `{p['name']}`: {p['frames']} frames at {p['height']}x{p['width']}, "
        f"UNet batch {p['guided_batch']} (classifier-free guidance).",
        "",
        *where,
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v),
        "- settings: " + ", ".join(f"{k}={v}" for k, v in s.items() if v is not None),
        "",
    ]
    return lines


def _targets(results: dict) -> list[str]:
    if not results.get("targets"):
        return []
    rows = [[t["name"], fmt(t["value"], 3), fmt(t.get("value_fastest"), 3), f"<= {t['limit']:.2f}",
             {True: "met", False: "NOT met", None: "not measured"}[t["met"]]] for t in results["targets"]]
    return ["## Targets", "", "Judged on the ratio of medians; the ratio of the fastest calls is beside it.", "",
            *table(["target", "measured (median)", "measured (fastest)", "limit", ""], rows)]


def _latency(results: dict) -> list[str]:
    rows = []
    for r in (r for r in results["rows"] if r.get("status") != "skipped"):
        lat = r.get("latency_ms") or {}
        variant = "" if r["variant"] == "adapted" else f" ({r['variant']})"
        rows.append([
            f"`{r['stage']}`{variant}", r["backend"], r["precision"],
            fmt(lat.get("median_ms")), fmt(lat.get("p10_ms")), fmt(lat.get("p90_ms")),
            fmt(lat.get("runs")), mb(r.get("size_bytes")), fmt(r.get("peak_rss_mb"), 0),
            fmt(r.get("first_call_ms"), 1), r.get("reason", "ok") if r.get("status") != "ok" else "ok",
        ])
    note = (
        "Milliseconds per call: median and 10th / 90th percentile of the timed calls after warm-up. Size: the "
        "model files (PyTorch: parameter and buffer bytes). Peak RSS: the high-water mark of the child "
        "process that ran the row (includes the interpreter and libraries, see `baseline_rss_mb` in results.json)."
    )
    header = ["stage", "backend", "precision", "median ms", "p10", "p90", "runs", "size MB", "peak RSS MB", "first call ms", "status"]
    return ["## Latency per stage", "", note, "", *table(header, rows)]


def _ratios(results: dict) -> list[str]:
    out = []
    if results.get("backend_ratios"):
        rows = [[f"`{r['stage']}`", r["backend"], fmt(r["vs_torch"], 3), fmt(r.get("vs_torch_min"), 3)]
                for r in results["backend_ratios"]]
        out += ["## Runtime / PyTorch eager (fp32, same shapes and threads)", "",
                "Ratio of medians, and of the fastest calls (other processes only add time, so on a shared "
                "machine the second is the least disturbed).", "",
                *table(["stage", "backend", "ratio (median)", "ratio (fastest)"], rows)]
    if results.get("adapter_cost"):
        rows = [[c["backend"], fmt(c["base_ms"]), fmt(c["naive_ms"]), fmt(c["fused_ms"]),
                 fmt(c["naive_vs_base"], 3), fmt(c["fused_vs_base"], 3),
                 fmt(c.get("naive_vs_base_min"), 3), fmt(c.get("fused_vs_base_min"), 3)] for c in results["adapter_cost"]]
        out += ["## The adapter's cost (UNet step, fp32)", "",
                "Base: the AnimateDiff T2V UNet without the I2V-Adapter; naive / fused: the adapted UNet with "
                "each first-frame attention variant. Same shapes, same backend. " + _variant_note(results), "",
                *table(["backend", "base ms", "naive ms", "fused ms", "naive / base", "fused / base",
                        "naive / base (fastest)", "fused / base (fastest)"], rows)]
    return out


def _variant_note(results: dict) -> str:
    if any(r.get("same_as") for r in results["rows"]):
        return ("Full size: one row at a time (one model fits in memory), one call each, which is also the "
                "first call (one-off allocation included); the fused row is the stage table's `unet` row.")
    return ("Measured side by side. The fused row and the stage table's `unet` row are the same model measured "
            "in different groups: their difference is the drift of this machine's load between groups.")


def _per_video(results: dict) -> list[str]:
    entries = results.get("per_step") or []
    if not entries:
        return []
    rows = []
    for e in entries:
        video = fmt(e["video_ms"] / 1e3, 2) if e.get("video_ms") is not None else "missing " + ", ".join(e["video_missing"])
        rows.append([e["backend"], e["precision"], fmt(e["step_ms"]), e["steps"], video])
    calls = ", ".join(f"{s} x {n}" for s, n in entries[0]["calls"].items())
    return ["## Per denoising step and per video", "", f"One video: {calls} (one CFG-batched UNet call per step).", "",
            *table(["backend", "precision", "UNet step ms", "steps", "video s"], rows)]


def _sizes(results: dict) -> list[str]:
    sized = [r for r in results["rows"] if r["variant"] == "adapted" and r.get("size_bytes") is not None and r["backend"] != "torch"]
    if not sized:
        return []
    seen, rows = set(), []
    for r in sized:
        key = (r["precision"], r["stage"], r["backend"])
        if key not in seen:
            seen.add(key)
            rows.append([r["precision"], f"`{r['stage']}`", r["backend"], mb(r["size_bytes"]), fmt(r.get("psnr_db"), 1)])
    return ["## Sizes per recipe", "", "PSNR: the bundle's recorded parity of the model against PyTorch fp32 (dB).", "",
            *table(["precision", "stage", "backend", "MB", "PSNR dB"], rows)]


def _unavailable(results: dict) -> list[str]:
    """Rows that were not measured, grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for r in results["rows"]:
        if r.get("status") != "ok":
            variant = "" if r["variant"] == "adapted" else f" ({r['variant']})"
            by_reason.setdefault(r.get("reason", "?"), []).append(f"{r['stage']}{variant} / {r['backend']} / {r['precision']}")
    if not by_reason:
        return []
    return ["## Not measured", "", *[f"- {reason}: {', '.join(which)}" for reason, which in by_reason.items()], ""]


def render_markdown(results: dict) -> str:
    lines = _header(results) + _targets(results) + _latency(results) + _ratios(results) + _per_video(results) + _sizes(results)
    if results.get("estimate"):
        lines += render_estimate(results["estimate"])
    lines += _unavailable(results)
    plots = results.get("plots") or {}
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({path})" if path else f"- {name}: {why}" for name, (path, why) in plots.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _latency_plot(results: dict, path: Path) -> None:
    import matplotlib  # deferred: plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: plots only

    rows = [r for r in results["rows"] if r.get("status") == "ok" and r["variant"] == "adapted"]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    series = list(dict.fromkeys((r["backend"], r["precision"]) for r in rows))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(stages)), 4))
    for i, (backend, precision) in enumerate(series):
        xs, ys = [], []
        for j, stage in enumerate(stages):
            for r in rows:
                if (r["stage"], r["backend"], r["precision"]) == (stage, backend, precision):
                    xs.append(j + i * width)
                    ys.append(r["latency_ms"]["median_ms"])
        ax.bar(xs, ys, width, label=f"{backend} {precision}")
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(stages))], stages)
    ax.set_yscale("log")
    ax.set_ylabel("median ms per call (log)")
    ax.set_title(f"{results['preset']['name']}: latency per stage and backend")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _size_psnr_plot(results: dict, path: Path) -> bool:
    """One panel per stage: model size against PSNR, colour by recipe, marker by backend."""
    import matplotlib  # deferred: plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: plots only

    points = [r for r in results["rows"] if r.get("psnr_db") is not None and r.get("size_bytes") and r["variant"] == "adapted"]
    if not any(r["precision"] != "fp32" for r in points):
        return False
    stages = list(dict.fromkeys(r["stage"] for r in points))
    precisions = list(dict.fromkeys(r["precision"] for r in points))
    colours = {p: f"C{i}" for i, p in enumerate(precisions)}
    markers = {"onnx": "o", "tflite": "^"}
    fig, axes = plt.subplots(1, len(stages), figsize=(3.2 * len(stages), 3.4), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        for r in (r for r in points if r["stage"] == stage):
            ax.scatter(r["size_bytes"] / 1e6, min(r["psnr_db"], 100), c=colours[r["precision"]],
                       marker=markers.get(r["backend"], "s"), s=36)
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("MB", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("PSNR vs PyTorch fp32, dB (capped at 100)", fontsize=8)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=p) for p, c in colours.items()]
    handles += [plt.Line2D([], [], color="gray", marker=m, linestyle="", label=b) for b, m in markers.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def write_outputs(results: dict, out: Path) -> None:
    """Plots, `results.json` and `report.md` of `results` into the folder `out`."""
    results["plots"] = write_plots(results, out)
    write_json(out / RESULTS_NAME, results)
    (out / REPORT_NAME).write_text(render_markdown(results), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.report DIR`: write the report and plots again from DIR/results.json."""

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("folder", type=Path, help="a benchmark output folder (with results.json)")
    args = parser.parse_args(argv)

    def command() -> None:
        results = load_results(args.folder)
        write_outputs(results, args.folder)
        print(f"wrote {args.folder}/report.md and plots/")

    return cli.run(command)


def write_plots(results: dict, out: Path) -> dict[str, tuple[str | None, str | None]]:
    """Write the plots under `out/plots/`; return name -> (relative path, None) or (None, why not)."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    plots: dict[str, tuple[str | None, str | None]] = {}
    if any(r.get("status") == "ok" for r in results["rows"]):
        _latency_plot(results, out / LATENCY_PLOT)
        plots["latency per stage and backend"] = (LATENCY_PLOT, None)
    else:
        plots["latency per stage and backend"] = (None, "no measured rows")
    if _size_psnr_plot(results, out / SIZE_PSNR_PLOT):
        plots["size vs PSNR per recipe"] = (SIZE_PSNR_PLOT, None)
    else:
        plots["size vs PSNR per recipe"] = (None, "no quantized bundle with PSNR figures in this run (fp32 only)")
    return plots


if __name__ == "__main__":
    cli.entry(main, loggers=("benchmarks",))
