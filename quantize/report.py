"""Summary tables of a quantized bundle's manifest (torch-free): one row per stage and target, then
the bundle totals and the end-to-end video figures."""

from __future__ import annotations


def summary_rows(manifest: dict) -> list[dict]:
    rows = []
    for stage, record in manifest["stages"].items():
        for target, entry in record["targets"].items():
            p, q = entry["parity"], entry.get("quantization", {})
            corr = p.get("guidance_correlation")
            rows.append(
                {
                    "stage": stage,
                    "target": target,
                    "precision": record.get("precision", manifest.get("precision", "fp32")),
                    "MB": f"{q.get('bytes', 0) / 1e6:.2f}",
                    "x fp32": f"{q['ratio_to_fp32']:.3f}" if "ratio_to_fp32" in q else "-",
                    "weights x fp32": f"{q['weight_ratio_to_fp32']:.3f}" if "weight_ratio_to_fp32" in q else "-",
                    "PSNR dB": f"{p['psnr_db']:.1f}",
                    "max-abs": f"{p['max_abs']:.2e}",
                    "cfg corr": "-" if corr is None else f"{corr:.4f}",
                }
            )
    return rows


def _table(rows: list[dict]) -> list[str]:
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    return lines + ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]


def format_quantized_summary(manifest: dict) -> str:
    """Plain-text table plus totals and end-to-end PSNR, as `python -m quantize.run` prints it."""
    rows = summary_rows(manifest)
    lines = _table(rows) if rows else ["(no stages)"]
    quant = manifest.get("quantization", {})
    for target, size in quant.get("sizes", {}).items():
        lines.append(
            f"{target} total: {size['bytes'] / 1e6:.2f} MB = {size['ratio_to_fp32']:.3f}x fp32 "
            f"(weights {size['weight_ratio_to_fp32']:.3f}x)"
        )
    for target, video in (quant.get("end_to_end") or {}).items():
        lines.append(
            f"{target} end to end vs PyTorch fp32 video: frame PSNR mean {video['psnr_db_mean']:.1f} dB, "
            f"min {video['psnr_db_min']:.1f} dB ({video['frames']} frames)"
        )
    return "\n".join(lines)
