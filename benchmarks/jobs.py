"""One measurement = one child process: load one stage on one backend, warm up, time N calls.

Each `Job` runs in its own process started with `spawn`, so one stage's allocations, thread pools
and library state never leak into another measurement, and the child's peak resident memory
(`VmHWM`, the kernel's high-water mark for the process) is that stage's alone, plus the interpreter
and the libraries it imported (reported separately as `baseline_rss_mb`, measured before the load).

Rows that are compared (one stage on every backend; the UNet variants) are measured as a group: all
children load, then take turns, one timed call each per round, so a burst of load from another
process on a shared machine slows every row of the group alike.

Backends:

- `torch`: PyTorch eager (diffusers modules, `torch.no_grad`), built in the child from the preset,
  the stage module exactly as `i2v_adapter.model.stage_modules` defines it (what a user has today).
- `onnx`: onnxruntime CPU sessions on the stage file (a chunked UNet: one per chunk, chained).
- `tflite`: LiteRT interpreter (XNNPACK CPU) through `runtime_py.runners.LiteRTRunner`.

Idle worker threads wait passively unless `spin` is set: with OpenMP's and onnxruntime's default
busy-waiting, a 2-core machine shared with other processes made PyTorch 5-10x and onnxruntime 1.7x
slower (measured here), which would measure the neighbours, not the backend.

The child imports torch only for the `torch` backend. This module is importable without torch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.stats import LatencyStats, time_calls
from i2v_core.bundle import check_inside
from i2v_core.config import AttentionVariant, get_preset
from i2v_core.stages import StageSpec

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "tflite")
BACKEND_LABELS = {"torch": "PyTorch eager", "onnx": "onnxruntime CPU", "tflite": "LiteRT CPU (XNNPACK)"}
# UNet variants for the adapter's cost: the T2V UNet without the adapter, and the adapted UNet with
# each first-frame attention implementation. `adapted` is the preset's own model (its `attention`).
UNET_VARIANTS = ("base", "naive", "fused")
ADAPTED = "adapted"
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class Job:
    """What one child measures: a stage of a preset on a backend (torch builds it; onnx and tflite load it)."""

    stage: str
    backend: str
    precision: str
    preset: str
    spec: dict  # StageSpec.to_dict(): the contract the runner checks feeds and outputs against
    warmup: int
    repeats: int
    threads: int | None = None
    variant: str = ADAPTED
    bundle: str | None = None  # onnx / tflite: the bundle folder and the manifest's record of the stage
    record: dict | None = None
    files: dict | None = None  # the bundle's hashed files table (the runtime opens only files listed there)
    seed: int = 0
    spin: bool = False  # let idle worker threads busy-wait (OpenMP active wait, onnxruntime spinning)
    # An untimed first call before warm-up. Off for full-size presets, where one UNet step takes
    # minutes: the first (and only) call is then the timed one, its one-off costs included.
    first_call: bool = True

    def label(self) -> str:
        extra = "" if self.variant == ADAPTED else f" [{self.variant}]"
        return f"{self.stage}{extra} / {self.backend} / {self.precision}"


def _rss_mb(field: str) -> float | None:
    try:
        match = re.search(rf"{field}:\s+(\d+) kB", _STATUS.read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _torch_stage(job: Job):
    """The PyTorch stage module of `job` (variant applied), and its weight bytes."""
    # deferred on purpose: torch loads in the measuring child only; the parent stays torch-free
    import torch

    from i2v_adapter.model import components as models
    from i2v_adapter.model import stage_modules

    if job.threads is not None:
        torch.set_num_threads(job.threads)
    cfg = get_preset(job.preset)
    if job.variant in ("naive", "fused"):
        cfg = cfg.with_overrides(attention=AttentionVariant(job.variant))
    if job.stage == "unet":
        module = stage_modules.UNetStage(models.build_unet(cfg, with_adapter=job.variant != "base"))
    elif job.stage == "text_encoder":
        module = stage_modules.TextEncoderStage(models.build_text_encoder(cfg))
    elif job.stage == "image_encoder":
        module = stage_modules.ImageEncoderStage(models.build_image_encoder(cfg))
    elif job.stage in ("vae_encoder", "vae_decoder"):
        wrapper = stage_modules.VaeEncoderStage if job.stage == "vae_encoder" else stage_modules.VaeDecoderStage
        module = wrapper(models.build_vae(cfg))
    else:
        raise ValueError(f"unknown stage {job.stage!r}: expected one of text_encoder, image_encoder, vae_encoder, unet, vae_decoder")
    module.eval()
    size = sum(t.numel() * t.element_size() for t in {id(t): t for t in [*module.parameters(), *module.buffers()]}.values())
    return module, size


def _torch_call(job: Job, spec: StageSpec):
    import torch  # deferred: the torch backend's child only

    module, size = _torch_stage(job)
    args = tuple(torch.from_numpy(v) for v in spec.sample_inputs(job.seed).values())

    def call():
        with torch.no_grad():
            return module(*args)

    return call, size


def _onnx_session(job: Job, path: Path, spec: StageSpec):
    """An onnxruntime session on one model file, with thread spinning set by `job.spin`; its inputs
    must be `spec`'s."""
    import onnxruntime as ort  # deferred: the onnx backend's child only

    options = ort.SessionOptions()
    if job.threads is not None:
        options.intra_op_num_threads = job.threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if job.spin else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    found = sorted(i.name for i in session.get_inputs())
    if found != sorted(spec.input_names):
        raise ValueError(f"{path}: expected {spec.name} inputs {spec.input_names} (the stage contract), the model has {found}")
    return session


def _onnx_call(job: Job, spec: StageSpec, feeds: dict):
    """One stage call on onnxruntime: a single file, or a chunked UNet's chunks run in order over one
    dictionary of named tensors (as `runtime_py.runners` chains them), each with its own session."""
    entry = job.record["targets"]["onnx"]
    parts = entry.get("chunks") or [{"name": spec.name, "io": job.spec, "file": entry["file"]}]
    chain = []
    for part in parts:
        part_spec = StageSpec.from_dict(part["name"], part["io"])
        path = check_inside(job.bundle, part["file"], f"stage {spec.name} target onnx file")
        chain.append((part_spec, _onnx_session(job, path, part_spec)))

    def call():
        named = dict(feeds)
        for part_spec, session in chain:
            outputs = session.run(part_spec.output_names, {n: named[n] for n in part_spec.input_names})
            named.update(zip(part_spec.output_names, outputs))
        return [named[n] for n in spec.output_names]

    return call


def _runtime_call(job: Job, spec: StageSpec):
    from runtime_py.runners import bundle_runner  # deferred: loads onnxruntime / LiteRT in the child

    if job.bundle is None or job.record is None:
        raise ValueError(f"{job.label()}: expected a bundle and its stage record for backend {job.backend!r}, got none")
    feeds = spec.sample_inputs(job.seed)
    if job.backend == "onnx":
        return _onnx_call(job, spec, feeds), None
    # LiteRT (XNNPACK) through the runtime's own runner (chunked models included).
    manifest = {"stages": {spec.name: job.record}, "files": job.files or {}}
    runner = bundle_runner(job.bundle, manifest, job.backend, threads=job.threads)
    return (lambda: runner.run(spec.name, feeds)), None


def _serve(conn, job: Job) -> None:
    """Child side: load the stage, answer `("calls", n)` with n call times, `("stop",)` with the peak RSS."""
    try:
        # Before torch loads libgomp: on a shared machine, spinning OpenMP threads that lose their
        # core make every parallel region wait for a descheduled spinner (5-10x slower here).
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE" if job.spin else "PASSIVE"
        spec = StageSpec.from_dict(job.stage, job.spec)
        if job.backend == "torch":
            import torch  # noqa: F401  (imported before the baseline, so the baseline includes it)
        baseline = _rss_mb("VmRSS")
        start = time.perf_counter()
        call, size = _torch_call(job, spec) if job.backend == "torch" else _runtime_call(job, spec)
        loaded = time.perf_counter()
        first = None
        if job.first_call:  # session creation, lazy initialisation, allocation: not a timed call
            call()
            first = round((time.perf_counter() - loaded) * 1e3, 3)
        conn.send(("ok", {"load_s": round(loaded - start, 3), "first_call_ms": first,
                          "baseline_rss_mb": _round(baseline), "module_bytes": size}))
        while True:
            command = conn.recv()
            if command[0] == "calls":
                conn.send(("ok", time_calls(call, 0, command[1])))
            else:
                conn.send(("ok", {"peak_rss_mb": _round(_rss_mb("VmHWM"))}))
                return
    except Exception as err:  # reported to the parent, which turns it into an error row
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


class WorkerError(RuntimeError):
    """A measurement child failed: an exception in it (message passed on) or its death."""


class Worker:
    """A spawned child process holding one loaded stage; the parent asks it for timed calls."""

    def __init__(self, job: Job):
        self.job = job
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, job), daemon=True)
        self._process.start()
        child.close()

    def _reply(self):
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(timeout=5)
            raise WorkerError(f"the child process died (exit code {self._process.exitcode}; out of memory?)") from None
        if status != "ok":
            raise WorkerError(payload)
        return payload

    def loaded(self) -> dict:
        """Wait for the load and the first call; their figures."""
        return self._reply()

    def calls(self, n: int) -> list[float]:
        self._conn.send(("calls", n))
        return self._reply()

    def stop(self) -> dict:
        self._conn.send(("stop",))
        result = self._reply()
        self._process.join(timeout=30)
        return result

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        self._conn.close()


def _row(job: Job) -> dict:
    return {"stage": job.stage, "backend": job.backend, "precision": job.precision, "variant": job.variant}


def measure_group(jobs: list[Job], warmup: int, repeats: int, progress=None) -> list[dict]:
    """Measure `jobs` side by side: one child each, all loaded, then `repeats` rounds of one call per
    child in rotating order, so load drift on a shared machine hits every row alike and ratios hold.

    A child that fails becomes a row with `status: error` and a reason; the others go on.
    """
    rows, workers = [_row(j) for j in jobs], []
    for row, job in zip(rows, jobs):
        if progress:
            progress(f"loading {job.label()}")
        worker = Worker(job)
        try:
            row.update(worker.loaded())
            if warmup:
                worker.calls(warmup)
            workers.append((row, worker, []))
        except WorkerError as err:
            row.update(status="error", reason=str(err))
            worker.kill()
    for r in range(repeats):
        for i in range(len(workers)):
            row, worker, samples = workers[(i + r) % len(workers)]
            if "reason" in row:
                continue
            try:
                samples.extend(worker.calls(1))
            except WorkerError as err:
                row.update(status="error", reason=str(err))
    for row, worker, samples in workers:
        if "reason" not in row:
            try:
                row.update(worker.stop(), status="ok", latency_ms=LatencyStats.from_seconds(samples).to_dict())
            except WorkerError as err:
                row.update(status="error", reason=str(err))
        worker.kill()
    return rows
