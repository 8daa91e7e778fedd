"""`python -m export.npu_report BUNDLE`: check a bundle's .tflite files against what LiteRT's MediaTek
compiler plugin takes onto the NPU.

    python -m export.npu_report bundles/tiny                      # the report on stdout
    python -m export.npu_report bundles/tiny --soc mt6991 --out reports/tiny-npu --json

A MediaTek NPU runs only the ops its plugin knows; anything else is cut out of the NPU partition and
runs on the phone's CPU, with a copy across at every cut. Per file: the op histogram, the op count
against a per-graph limit, ops the plugin does not take (by op code, by composite name, or because a
tensor has a type the plugin lacks), composites and their attributes, int16 activations that are not
per-tensor, float activations inside a quantized graph, QUANTIZE / DEQUANTIZE counts and weight bytes;
then a verdict per file and for the bundle. What the plugin takes is data
(`export/data/mediatek_npu.json`, with the upstream repository, paths and commit it was read from).

Torch-free: the flatbuffers are read with the TFLite schema that `ai-edge-litert` ships.
"""

from __future__ import annotations

import argparse
import json
import mmap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ai_edge_litert import schema_py_generated as schema
from flatbuffers import flexbuffers

from i2v_core import cli
from i2v_core.bundle import MANIFEST_NAME, bundle_path, load_manifest
from i2v_core.media import atomic_write_bytes

DATA_PATH = Path(__file__).resolve().parent / "data" / "mediatek_npu.json"
REPORT_MD, REPORT_JSON = "npu_report.md", "npu_report.json"
DEFAULT_SOC = "mt6989"

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


class NotNpuCleanError(RuntimeError):
    """`--require-clean` and the bundle has a file the NPU would not take whole."""


@dataclass(frozen=True)
class NpuTarget:
    """What one vendor's compiler plugin takes: op names, composite names, SoC names, where it was read."""

    supported_ops: frozenset[str]
    composites: frozenset[str]
    soc_models: dict[str, str]
    default_max_ops: int
    source: dict
    notes: dict = field(default_factory=dict)

    def soc(self, name: str) -> str:
        """`name` if the plugin knows that SoC; `ValueError` listing the ones it knows otherwise."""
        if name not in self.soc_models:
            raise ValueError(f"unknown SoC {name!r}: expected one of {', '.join(self.soc_models)}")
        return name


def load_target(path: Path = DATA_PATH) -> NpuTarget:
    """The MediaTek plugin's data; every op name is checked against the TFLite schema."""
    data = json.loads(path.read_text(encoding="utf-8"))
    ops = frozenset(data["supported_ops"].values())
    unknown = sorted(ops - set(_OP_NAMES.values()))
    if unknown:
        raise ValueError(f"{path}: op names {unknown} are not TFLite builtin operators")
    reports = data.get("field_reports", {})
    return NpuTarget(
        supported_ops=ops,
        composites=frozenset(data["composites"]),
        soc_models=dict(data["soc_models"]),
        default_max_ops=int(reports.get("max_ops_per_graph", 4000)),
        source=data["source"],
        notes={k: v for k, v in reports.items() if isinstance(v, str)},
    )


# --- reading one flatbuffer -------------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    type: str
    constant: bool
    scales: int  # quantization scales: 0 none, 1 per-tensor, > 1 per-channel
    nonzero_zero_points: bool


def _tensor(t, model) -> _Tensor:
    buf = model.Buffers(t.Buffer()) if t.Buffer() > 0 else None
    constant = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
    q = t.Quantization()
    scales = q.ScaleLength() if q is not None else 0
    nonzero = q is not None and any(q.ZeroPoint(i) != 0 for i in range(q.ZeroPointLength()))
    return _Tensor(t.Name().decode(), _TYPE_NAMES.get(t.Type(), str(t.Type())), constant, scales, nonzero)


def type_problem(t: _Tensor) -> str | None:
    """Why the plugin has no Neuron type for this tensor (`neuron_utils.cc`, GetNeuronTensorType), or None."""
    if t.type in ("FLOAT32", "FLOAT16", "BOOL", "UINT8"):
        return None
    if t.type == "INT32":
        return "int32 per-channel with non-zero zero points" if t.scales > 1 and t.nonzero_zero_points else None
    if t.type in ("INT16", "UINT16"):
        return None if t.scales == 1 else f"{t.type.lower()} not per-tensor quantized ({t.scales} scales)"
    if t.type in ("INT8", "INT4"):
        return None if t.scales >= 1 else f"{t.type.lower()} without quantization"
    if t.type == "INT64":
        return None if t.constant else "int64 activation (only int64 constants are taken, as int32)"
    return f"{t.type.lower()} tensor"


def _composite(op) -> tuple[str, dict, int]:
    """Name, attributes and decomposition subgraph of a STABLEHLO_COMPOSITE operator."""
    table = op.BuiltinOptions2()
    if op.BuiltinOptions2Type() != schema.BuiltinOptions2.StableHLOCompositeOptions or table is None:
        return "?", {}, -1
    options = schema.StableHLOCompositeOptions()
    options.Init(table.Bytes, table.Pos)
    attributes: dict = {}
    if options.CompositeAttributesLength():
        raw = options.CompositeAttributesAsNumpy().tobytes()
        try:
            attributes = flexbuffers.Loads(raw)
        except (ValueError, IndexError, TypeError):  # not a flexbuffer map: say how big it is instead
            attributes = {"undecoded_bytes": len(raw)}
        attributes = {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in dict(attributes).items()}
    return options.Name().decode(), attributes, options.DecompositionSubgraphIndex()


def _weight_bytes(model) -> int:
    total = 0
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        total += b.Size() if b.Offset() > 1 else b.DataLength()  # > 2 GB files keep data after the flatbuffer
    return total


@dataclass
class FileReport:
    """One .tflite file against the target. `ops` counts the executed subgraphs (not decompositions)."""

    file: str
    stage: str
    ops: int = 0
    subgraphs: int = 0
    histogram: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)  # op (or composite) name -> count
    rejected: dict[str, int] = field(default_factory=dict)  # "OP: reason" -> count (supported op, bad tensor)
    composites: list[dict] = field(default_factory=list)  # {name, attributes, supported, count}
    type_problems: dict[str, int] = field(default_factory=dict)  # reason -> tensors
    int16_not_per_tensor: list[str] = field(default_factory=list)
    quantized: bool = False
    float_activations: int = 0  # in a quantized graph: float tensors between ops (not its inputs, outputs)
    quantize_ops: int = 0
    dequantize_ops: int = 0
    weight_bytes: int = 0
    max_ops: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict:
        d = {k: v for k, v in vars(self).items()}
        d["clean"] = self.clean
        return d


def _check_op(op, name: str, tensors: list[_Tensor], target: NpuTarget, report: FileReport, composites: Counter) -> None:
    """Count `op` as not taken (op code or composite name) or rejected (a tensor type the plugin lacks)."""
    if name == "STABLEHLO_COMPOSITE":
        cname, attributes, _ = _composite(op)
        composites[(cname, json.dumps(attributes, sort_keys=True))] += 1
        if cname not in target.composites:
            key = f"STABLEHLO_COMPOSITE {cname}"
            report.unsupported[key] = report.unsupported.get(key, 0) + 1
            return
    elif name not in target.supported_ops:
        report.unsupported[name] = report.unsupported.get(name, 0) + 1
        return
    indices = [op.Inputs(i) for i in range(op.InputsLength())] + [op.Outputs(i) for i in range(op.OutputsLength())]
    problems = sorted({p for i in indices if i >= 0 and (p := type_problem(tensors[i]))})
    for p in problems:
        key = f"{name}: {p}"
        report.rejected[key] = report.rejected.get(key, 0) + 1


def analyze_file(path: Path, target: NpuTarget, *, stage: str = "", max_ops: int | None = None) -> FileReport:
    """The report of one .tflite file (read through mmap, weights never copied)."""
    report = FileReport(file=str(path), stage=stage or path.stem, max_ops=max_ops or target.default_max_ops)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] != b"TFL3":
            raise ValueError(f"{path}: expected a TFLite flatbuffer (identifier TFL3), found {head[4:8]!r}")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with buf:
        model = schema.Model.GetRootAs(buf, 0)
        _fill(report, model, target)
        del model  # the reader holds views into the map: drop them before it closes
    return report


def _fill(report: FileReport, model, target: NpuTarget) -> None:
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(_OP_NAMES.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN"))
    graphs = [model.Subgraphs(i) for i in range(model.SubgraphsLength())]
    decompositions = set()
    for g in graphs:
        for j in range(g.OperatorsLength()):
            op = g.Operators(j)
            if codes[op.OpcodeIndex()] == "STABLEHLO_COMPOSITE":
                decompositions.add(_composite(op)[2])
    histogram: Counter = Counter()
    composites: Counter = Counter()
    types: Counter = Counter()
    for index, g in enumerate(graphs):
        if index in decompositions:
            continue
        report.subgraphs += 1
        tensors = [_tensor(g.Tensors(i), model) for i in range(g.TensorsLength())]
        for t in tensors:
            if (p := type_problem(t)) is not None:
                types[p] += 1
            if t.type == "INT16" and not t.constant and t.scales != 1:
                report.int16_not_per_tensor.append(t.name)
        # the graph's own inputs and outputs may stay float (QUANTIZE / DEQUANTIZE at the edges)
        edges = {g.Inputs(i) for i in range(g.InputsLength())} | {g.Outputs(i) for i in range(g.OutputsLength())}
        activations = [t for i, t in enumerate(tensors) if not t.constant and i not in edges]
        quantized = any(t.scales and t.type in ("INT8", "INT16", "UINT8", "INT4") for t in activations)
        report.quantized |= quantized
        if quantized:
            report.float_activations += sum(t.type in ("FLOAT32", "FLOAT16") for t in activations)
        for j in range(g.OperatorsLength()):
            op = g.Operators(j)
            name = codes[op.OpcodeIndex()]
            histogram[name] += 1
            _check_op(op, name, tensors, target, report, composites)
    report.ops = sum(histogram.values())
    report.histogram = dict(histogram.most_common())
    report.composites = [
        {"name": n, "attributes": json.loads(a), "supported": n in target.composites, "count": c}
        for (n, a), c in sorted(composites.items())
    ]
    report.type_problems = dict(types.most_common())
    report.quantize_ops, report.dequantize_ops = histogram["QUANTIZE"], histogram["DEQUANTIZE"]
    report.weight_bytes = _weight_bytes(model)
    report.reasons = _reasons(report)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _reasons(r: FileReport) -> list[str]:
    reasons = []
    if r.ops > r.max_ops:
        reasons.append(f"{r.ops} ops, more than the {r.max_ops} one compiled graph may hold")
    if r.unsupported:
        listed = ", ".join(f"{n} x{c}" for n, c in sorted(r.unsupported.items()))
        reasons.append(f"{_count(sum(r.unsupported.values()), 'op')} the plugin does not take: {listed}")
    if r.rejected:
        listed = ", ".join(f"{n} x{c}" for n, c in sorted(r.rejected.items()))
        reasons.append(f"{_count(sum(r.rejected.values()), 'op')} rejected for their tensor types: {listed}")
    if r.int16_not_per_tensor:
        reasons.append(f"{_count(len(r.int16_not_per_tensor), 'int16 activation')} not per-tensor quantized")
    if r.float_activations:
        reasons.append(f"{_count(r.float_activations, 'float activation')} inside a quantized graph (ops left in float)")
    return reasons


# --- the bundle -------------------------------------------------------------------------------------------


def tflite_files(path: Path) -> list[tuple[str, Path]]:
    """`(stage, file)` for every .tflite model of a bundle (chunks by chunk name), or of one .tflite file."""
    if path.is_file():
        if path.suffix != ".tflite":
            raise ValueError(f"expected a bundle directory or a .tflite file, got {path}")
        return [(path.stem, path)]
    if not path.exists():
        raise FileNotFoundError(f"bundle not found: {path}")
    manifest = load_manifest(path)
    found = []
    for stage, record in manifest["stages"].items():
        entry = record.get("targets", {}).get("tflite")
        if entry is None:
            continue
        for chunk in entry.get("chunks") or [{"name": stage, "file": entry["file"]}]:
            found.append((chunk["name"], bundle_path(path, manifest, chunk["file"], f"stage {stage} target tflite file")))
    if not found:
        raise ValueError(f"bundle {path} has no tflite files (targets: {manifest.get('targets')}): export with --target tflite")
    return found


@dataclass(frozen=True)
class ReportOptions:
    bundle: Path
    soc: str = DEFAULT_SOC
    max_ops: int | None = None  # None: the target's default
    out: Path | None = None
    overwrite: bool = False


def npu_report(options: ReportOptions, target: NpuTarget | None = None) -> dict:
    """The report of every .tflite file of `options.bundle` as a JSON-ready dict."""
    target = target or load_target()
    soc = target.soc(options.soc)
    if options.max_ops is not None and options.max_ops < 1:
        raise ValueError(f"expected --max-ops-per-file >= 1, got {options.max_ops}")
    max_ops = options.max_ops or target.default_max_ops
    files = [analyze_file(p, target, stage=s, max_ops=max_ops) for s, p in tflite_files(Path(options.bundle))]
    reasons = [f"{Path(f.file).name}: {r}" for f in files for r in f.reasons]
    return {
        "bundle": str(options.bundle),
        "soc": {"name": soc, "marketing_name": target.soc_models[soc]},
        "max_ops_per_file": max_ops,
        "plugin": target.source,
        "notes": target.notes,
        "files": [f.to_dict() for f in files],
        "clean": not reasons,
        "reasons": reasons,
    }


def format_markdown(report: dict) -> str:
    """The report as Markdown: a summary table, then each file's histogram and findings."""
    soc = report["soc"]
    src = report["plugin"]
    lines = [
        f"# MediaTek NPU report: {report['bundle']}",
        "",
        f"SoC {soc['name']}{' (' + soc['marketing_name'] + ')' if soc['marketing_name'] else ''}; "
        f"op limit {report['max_ops_per_file']} per file; plugin ops from {src['repository']} at {src['commit'][:12]} "
        f"({src['paths']['supported_ops']}).",
        "",
        f"**Bundle: {'clean' if report['clean'] else 'not clean'}**",
        "",
        "| file | ops | RESHAPE | TRANSPOSE | not taken | weights MB | quantized | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for f in report["files"]:
        h = f["histogram"]
        off = sum(f["unsupported"].values()) + sum(f["rejected"].values())
        lines.append(
            f"| {Path(f['file']).name} | {f['ops']} | {h.get('RESHAPE', 0)} | {h.get('TRANSPOSE', 0)} | {off} | "
            f"{f['weight_bytes'] / 1e6:.2f} | {'yes' if f['quantized'] else 'no'} | {'clean' if f['clean'] else 'not clean'} |"
        )
    for f in report["files"]:
        lines += ["", f"## {f['stage']} ({Path(f['file']).name})", ""]
        lines += [f"- {r}" for r in f["reasons"]] or ["- clean"]
        lines.append("- ops: " + ", ".join(f"{n} {c}" for n, c in f["histogram"].items()))
        for c in f["composites"]:
            taken = "taken" if c["supported"] else "not taken"
            lines.append(f"- composite {c['name']} x{c['count']} ({taken}): {json.dumps(c['attributes'], sort_keys=True)}")
        if f["type_problems"]:
            lines.append("- tensor types the plugin lacks: " + ", ".join(f"{k} x{v}" for k, v in f["type_problems"].items()))
        if f["quantized"] or f["quantize_ops"] or f["dequantize_ops"]:
            lines.append(
                f"- QUANTIZE {f['quantize_ops']}, DEQUANTIZE {f['dequantize_ops']}, "
                f"float activations {f['float_activations']}"
            )
    if report["notes"]:
        lines += ["", "Notes:"] + [f"- {k}: {v}" for k, v in report["notes"].items()]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path, *, bundle: Path, overwrite: bool = False) -> list[Path]:
    """`npu_report.md` and `npu_report.json` into `out` (created); refuses to overwrite unless asked."""
    out = Path(out)
    if (out / MANIFEST_NAME).exists() or (bundle.is_dir() and out.resolve() == bundle.resolve()):
        raise ValueError(f"--out {out} is a bundle: its manifest lists every file, write the report beside it")
    paths = [out / REPORT_MD, out / REPORT_JSON]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"report already exists: {', '.join(existing)} (pass --overwrite to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(paths[0], format_markdown(report).encode("utf-8"), overwrite=overwrite)
    atomic_write_bytes(paths[1], (json.dumps(report, indent=2) + "\n").encode("utf-8"), overwrite=overwrite)
    return paths


def run_report(options: ReportOptions) -> dict:
    """`npu_report`, written to `options.out` if given."""
    report = npu_report(options)
    if options.out is not None:
        write_report(report, options.out, bundle=Path(options.bundle), overwrite=options.overwrite)
    return report


def require_clean(report: dict) -> None:
    """`NotNpuCleanError` with every reason unless the report is clean."""
    if not report["clean"]:
        raise NotNpuCleanError(f"{report['bundle']} is not NPU-clean: " + "; ".join(report["reasons"]))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m export.npu_report", description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="bundle directory (its tflite files) or one .tflite file")
    p.add_argument("--soc", default=DEFAULT_SOC, help=f"MediaTek SoC, e.g. mt6989, mt6991 (default: {DEFAULT_SOC})")
    p.add_argument("--max-ops-per-file", type=int, metavar="N",
                   help="ops one compiled graph may hold (default: 4000, under the ~4,500 reported on mt6989)")
    p.add_argument("--out", type=Path, help=f"folder to write {REPORT_MD} and {REPORT_JSON} into (default: print only)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report in --out")
    p.add_argument("--require-clean", action="store_true", help="exit 1 unless every file is NPU-clean")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of Markdown")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = ReportOptions(
        bundle=args.bundle, soc=args.soc, max_ops=args.max_ops_per_file, out=args.out,
        overwrite=args.overwrite,
    )

    def report() -> None:
        result = run_report(options)
        if not args.quiet:
            print(json.dumps(result, indent=2) if args.json else format_markdown(result).rstrip("\n"))
        if args.require_clean:
            require_clean(result)

    return cli.run(report, failures=(NotNpuCleanError,))


if __name__ == "__main__":
    cli.entry(main, loggers=("export",))
