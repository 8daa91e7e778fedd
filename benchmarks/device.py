"""`python -m benchmarks.device`: run a bundle's TFLite stages on an Android phone with LiteRT's
`benchmark_model`, over adb, and write the same `results.json` / `report.md` as the host benchmark.

    python -m benchmarks.device --bundle bundles/mobile --serial R5CX123 \\
        --benchmark-binary ~/litert/benchmark_model --accelerator npu --dispatch-dir ~/litert/dispatch \\
        --out results/phone

Steps: check the device is online (`adb get-state`), push `benchmark_model` (and the NPU dispatch
libraries) to a folder under /data/local/tmp, then per stage push the model and run

    benchmark_model --graph=<stage>.tflite --num_runs=N --warmup_runs=W [--use_cpu=true |
        --use_gpu=true --use_cpu=false --require_full_delegation=true |
        --use_npu=true --use_cpu=false --require_full_delegation=true
        --dispatch_library_path=<dir> --compiler_plugin_library_path=<dir>]

The exit status travels back in the output (`; echo __exit_status=$?`), since old adb versions drop
it. A stage whose run fails (non-zero status, delegate refused, no timings) becomes an error row
with the tool's error lines; the command then exits 1 after writing the results.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import derive
from benchmarks.litert_output import BenchmarkOutputError, error_lines, parse_benchmark_output
from benchmarks.report import render_markdown
from benchmarks.results import REPORT_NAME, RESULTS_NAME, RESULTS_OUTPUT, SCHEMA, now_utc, versions, write_json
from i2v_core import cli
from i2v_core.bundle import check_inside, load_manifest
from i2v_core.media import atomic_output_dir, check_output_dir
from i2v_core.outputs import check_separate

logger = logging.getLogger("benchmarks.device")

ACCELERATORS = ("npu", "gpu", "cpu")
REMOTE_DIR = "/data/local/tmp/i2v_bench"
BINARY_NAME = "benchmark_model"
_EXIT = re.compile(r"__exit_status=(\d+)")
_PROPS = {"model": "ro.product.model", "soc": "ro.soc.model", "android": "ro.build.version.release", "abi": "ro.product.cpu.abi"}


class DeviceError(RuntimeError):
    """adb or the device failed in a way that stops the whole run (device offline, push failed)."""


@dataclass(frozen=True)
class DeviceOptions:
    bundle: Path
    serial: str
    benchmark_binary: Path
    out: Path
    accelerator: str = "npu"
    dispatch_dir: Path | None = None
    stages: tuple[str, ...] | None = None
    num_runs: int = 50
    warmup_runs: int = 5
    remote_dir: str = REMOTE_DIR
    adb: str = "adb"
    timeout_s: float = 900.0
    overwrite: bool = False


class Adb:
    """`adb -s SERIAL ...` calls with errors that name the command and what adb printed."""

    def __init__(self, adb: str, serial: str, timeout_s: float):
        self.adb, self.serial, self.timeout_s = adb, serial, timeout_s

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.adb, "-s", self.serial, *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        except FileNotFoundError:
            raise DeviceError(f"adb not found: expected the `{self.adb}` executable on PATH (Android platform-tools)") from None
        except subprocess.TimeoutExpired:
            raise DeviceError(f"`{shlex.join(cmd)}` did not finish in {self.timeout_s:.0f} s") from None
        if check and done.returncode != 0:
            raise DeviceError(f"`{shlex.join(cmd)}` failed with status {done.returncode}: {(done.stderr or done.stdout).strip()}")
        return done

    def shell(self, command: str) -> tuple[int, str]:
        """Run `command` on the device; its exit status (from the echoed marker) and its output."""
        done = self("shell", f"{command}; echo __exit_status=$?", check=False)
        text = done.stdout + done.stderr
        found = _EXIT.findall(text)
        status = int(found[-1]) if found else (done.returncode or 255)
        return status, _EXIT.sub("", text)


def check_options(options: DeviceOptions) -> dict:
    """Check every input before adb runs; return the bundle's manifest."""
    if options.accelerator not in ACCELERATORS:
        raise ValueError(f"unknown accelerator {options.accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    if not Path(options.benchmark_binary).is_file():
        raise FileNotFoundError(f"benchmark binary not found: {options.benchmark_binary}")
    if options.accelerator == "npu" and options.dispatch_dir is None:
        raise ValueError("--accelerator npu needs --dispatch-dir (the vendor's LiteRT dispatch libraries)")
    if options.dispatch_dir is not None and not Path(options.dispatch_dir).is_dir():
        raise FileNotFoundError(f"dispatch directory not found: {options.dispatch_dir}")
    check_separate(options.out, {"--bundle": options.bundle, "--benchmark-binary": options.benchmark_binary,
                                 "--dispatch-dir": options.dispatch_dir})
    check_output_dir(options.out, overwrite=options.overwrite, kind=RESULTS_OUTPUT)
    manifest = load_manifest(options.bundle)
    tflite = [s for s, r in manifest["stages"].items() if "tflite" in r.get("targets", {})]
    if not tflite:
        raise ValueError(f"bundle {options.bundle}: expected TFLite models (export with --target tflite), found targets {manifest.get('targets')}")
    unknown = [s for s in (options.stages or ()) if s not in tflite]
    if unknown:
        raise ValueError(f"stage(s) {unknown} have no TFLite model in {options.bundle}: expected some of {tflite}")
    return manifest


def device_info(adb: Adb) -> dict:
    """Fail unless the device is online; its model, SoC and Android version."""
    state = adb("get-state", check=False)
    found = (state.stdout.strip() or state.stderr.strip() or f"status {state.returncode}")
    if state.returncode != 0 or found != "device":
        raise DeviceError(f"expected device {adb.serial!r} in state 'device', found: {found}")
    info = {"serial": adb.serial}
    for key, prop in _PROPS.items():
        status, text = adb.shell(f"getprop {prop}")
        info[key] = text.strip() if status == 0 else None
    return info


def _stage_files(bundle: Path, manifest: dict, stage: str, accelerator: str) -> list[str]:
    """The stage's model files: on the NPU its ahead-of-time compiled model when the bundle has one."""
    targets = manifest["stages"][stage]["targets"]
    target = "tflite_mediatek" if accelerator == "npu" and "tflite_mediatek" in targets else "tflite"
    entry = targets[target]
    files = [entry["file"], *entry.get("extra_files", [])]
    for rel in files:  # pushed to the phone: never a file outside the bundle
        check_inside(bundle, rel, f"stage {stage} target {target} file")
    return files


def _flags(options: DeviceOptions, remote_dispatch: str | None) -> list[str]:
    """benchmark_model flags (litert/tools/benchmark_litert_model.h). NPU and GPU runs require full
    delegation, so a graph the accelerator cannot take fails instead of timing a CPU fallback."""
    flags = [f"--num_runs={options.num_runs}", f"--warmup_runs={options.warmup_runs}"]
    if options.accelerator == "gpu":
        flags += ["--use_gpu=true", "--use_cpu=false", "--require_full_delegation=true"]
    elif options.accelerator == "npu":
        flags += ["--use_npu=true", "--use_cpu=false", "--require_full_delegation=true",
                  f"--dispatch_library_path={remote_dispatch}", f"--compiler_plugin_library_path={remote_dispatch}"]
    else:
        flags.append("--use_cpu=true")
    return flags


def prepare(adb: Adb, options: DeviceOptions) -> str | None:
    """Push the tool (and the dispatch libraries); return the remote dispatch folder, if any."""
    remote = options.remote_dir
    adb("shell", f"mkdir -p {shlex.quote(remote)}")
    adb("push", str(options.benchmark_binary), f"{remote}/{BINARY_NAME}")
    adb("shell", f"chmod 755 {shlex.quote(remote)}/{BINARY_NAME}")
    if options.dispatch_dir is None:
        return None
    remote_dispatch = f"{remote}/dispatch"
    adb("shell", f"mkdir -p {shlex.quote(remote_dispatch)}")
    for lib in sorted(p for p in Path(options.dispatch_dir).iterdir() if p.is_file()):
        adb("push", str(lib), f"{remote_dispatch}/{lib.name}")
    return remote_dispatch


def run_stage(adb: Adb, options: DeviceOptions, manifest: dict, stage: str, remote_dispatch: str | None) -> dict:
    """Push one stage's model, run `benchmark_model` on it, and return its row."""
    files = _stage_files(Path(options.bundle), manifest, stage, options.accelerator)
    for rel in files:
        adb("push", str(Path(options.bundle) / rel), f"{options.remote_dir}/{Path(rel).name}")
    remote = shlex.quote(options.remote_dir)
    env = f"LD_LIBRARY_PATH={shlex.quote(remote_dispatch)} ADSP_LIBRARY_PATH={shlex.quote(remote_dispatch)} " if remote_dispatch else ""
    command = f"cd {remote} && {env}./{BINARY_NAME} --graph={shlex.quote(Path(files[0]).name)} {' '.join(_flags(options, remote_dispatch))}"
    row = {"stage": stage, "backend": f"litert-{options.accelerator}", "precision": manifest.get("precision", "fp32"),
           "variant": "adapted", "size_bytes": sum((Path(options.bundle) / f).stat().st_size for f in files),
           "command": command}
    status, text = adb.shell(command)
    if status != 0:
        hints = "; ".join(error_lines(text)) or text.strip()[-300:]
        return {**row, "status": "error", "reason": f"benchmark_model exited with status {status}: {hints}"}
    try:
        parsed = parse_benchmark_output(text)
    except BenchmarkOutputError as err:
        return {**row, "status": "error", "reason": str(err)}
    latency = {"runs": parsed.get("runs"), "median_ms": parsed.get("median_ms"), "p10_ms": None, "p90_ms": None,
               "min_ms": parsed.get("min_ms"), "max_ms": parsed.get("max_ms"), "mean_ms": parsed["avg_ms"]}
    return {**row, "status": "ok", "latency_ms": latency, "init_ms": parsed.get("init_ms"),
            "first_call_ms": parsed.get("first_inference_ms"), "peak_rss_mb": parsed.get("peak_memory_mb"),
            "benchmark_model": parsed}


def _results(options: DeviceOptions, manifest: dict, info: dict, rows: list[dict], created: str) -> dict:
    cfg = manifest["preset"]["config"]
    measured = [r for r in rows if r.get("status") == "ok"]
    steps = manifest.get("sampling", {}).get("num_inference_steps", 25)
    return {
        "schema": SCHEMA, "kind": "device", "created": created,
        "machine": info,
        "versions": versions(),
        "settings": {"bundle": str(options.bundle), "accelerator": options.accelerator, "num_runs": options.num_runs,
                     "warmup_runs": options.warmup_runs, "dispatch_dir": str(options.dispatch_dir) if options.dispatch_dir else None},
        "preset": {"name": manifest["preset"]["name"], "frames": cfg["num_frames"], "height": cfg["height"],
                   "width": cfg["width"], "guided_batch": 2 * cfg.get("batch_size", 1), "steps": steps},
        "rows": rows,
        "per_step": derive.per_step_and_video(measured, list(manifest["stages"]), cfg["num_frames"], steps),
        "notes": sorted(f"{r['stage']} / {r['backend']}: {r['reason']}" for r in rows if r.get("status") != "ok"),
    }


def run_device(options: DeviceOptions) -> dict:
    """Check, push, run every TFLite stage, write the outputs; return the results dict."""
    manifest = check_options(options)
    stages = [s for s, r in manifest["stages"].items() if "tflite" in r["targets"] and (not options.stages or s in options.stages)]
    adb = Adb(options.adb, options.serial, options.timeout_s)
    created = now_utc()
    info = device_info(adb)
    logger.info("device %s: %s (%s), Android %s", options.serial, info.get("model"), info.get("soc"), info.get("android"))
    remote_dispatch = prepare(adb, options)
    rows = []
    for i, stage in enumerate(stages, 1):
        logger.info("[%d/%d] %s on %s ...", i, len(stages), stage, options.accelerator)
        row = run_stage(adb, options, manifest, stage, remote_dispatch)
        logger.info("[%d/%d] %s: %s", i, len(stages), stage,
                    f"avg {row['latency_ms']['mean_ms']:.2f} ms" if row["status"] == "ok" else row["reason"])
        rows.append(row)
    results = _results(options, manifest, info, rows, created)
    with atomic_output_dir(options.out, overwrite=options.overwrite, kind=RESULTS_OUTPUT) as out:
        write_json(out / RESULTS_NAME, results)
        (out / REPORT_NAME).write_text(render_markdown(results), encoding="utf-8")
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("--bundle", type=Path, required=True, help="bundle folder with TFLite models")
    p.add_argument("--serial", required=True, help="the phone's adb serial (`adb devices`)")
    p.add_argument("--benchmark-binary", type=Path, required=True, help="LiteRT benchmark_model built for the phone (arm64)")
    p.add_argument("--accelerator", choices=ACCELERATORS, default="npu", help="default: npu")
    p.add_argument("--dispatch-dir", type=Path, help="folder of the vendor's LiteRT dispatch libraries (npu)")
    p.add_argument("--stages", help="comma-separated stages (default: every TFLite stage)")
    p.add_argument("--num-runs", type=int, default=50)
    p.add_argument("--warmup-runs", type=int, default=5)
    p.add_argument("--remote-dir", default=REMOTE_DIR, help=f"folder on the phone (default: {REMOTE_DIR})")
    p.add_argument("--adb", default="adb", help="adb executable (default: adb on PATH)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip()) if args.stages else None
    options = DeviceOptions(bundle=args.bundle, serial=args.serial, benchmark_binary=args.benchmark_binary, out=args.out,
                            accelerator=args.accelerator, dispatch_dir=args.dispatch_dir, stages=stages,
                            num_runs=args.num_runs, warmup_runs=args.warmup_runs, remote_dir=args.remote_dir,
                            adb=args.adb, overwrite=args.overwrite)

    def command() -> int:
        results = run_device(options)
        failed = [r for r in results["rows"] if r["status"] != "ok"]
        for r in failed:
            print(f"error: {r['stage']}: {r['reason']}", file=sys.stderr)
        print(f"results: {args.out}")
        return 1 if failed else 0

    return cli.run(command, user_errors=(DeviceError,))


if __name__ == "__main__":
    cli.entry(main, loggers=("benchmarks",))
