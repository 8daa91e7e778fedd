"""Stage runners: run one stage of the contract on numpy arrays, whatever executes it.

Every runner checks the feeds against the stage's `StageSpec` before the model runs (names, shapes,
dtypes: `expected unet input 'sample' of shape (2, 4, 16, 32, 32), got ...`) and the outputs after,
so a wrong bundle or a wrong call fails with the contract's words, not deep inside a runtime.

The file-backed runners load every stage file when they are built (`load=True`, the default) and
compare what each file declares (input and output names, shapes, dtypes) with the contract, so a
model file of another shape is one `ValueError` naming the stage, the file, the tensor, the expected
and the found, before the first stage runs rather than deep inside a denoising loop. A file the
runtime cannot load at all is a `ModelFileError` naming it.

- `OnnxRunner`: one onnxruntime `InferenceSession` per stage file.
- `LiteRTRunner`: one LiteRT `Interpreter` per `.tflite` file (`ai-edge-litert`).
- `CallableRunner`: Python callables, e.g. the PyTorch stage modules wrapped by a test.

The runtimes are imported only when a runner is built, so `import runtime_py.runners` needs numpy
alone. Sessions are created once (at construction, or with `load=False` on a stage's first call) and kept.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from i2v_core.bundle import bundle_path
from i2v_core.stages import StageSpec

logger = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]


class MissingRuntimeError(ImportError):
    """The package that executes a model format is not installed."""


class ModelFileError(ValueError):
    """A stage's model file cannot be loaded by its runtime (broken before it was hashed, or not a model)."""


@runtime_checkable
class StageRunner(Protocol):
    """Runs stages by name: `run(name, feeds) -> outputs`, both keyed by the contract's tensor names."""

    specs: Mapping[str, StageSpec]

    def run(self, name: str, feeds: Feeds) -> Feeds: ...


class CheckedRunner:
    """Base of the runners: contract checks around `_execute`, which subclasses implement."""

    def __init__(self, specs: Mapping[str, StageSpec]):
        self.specs = dict(specs)

    def spec(self, name: str) -> StageSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise ValueError(f"unknown stage {name!r}: this runner has stages {sorted(self.specs)}") from None

    def run(self, name: str, feeds: Feeds) -> Feeds:
        """Check `feeds`, run stage `name`, check and return its outputs in contract order."""
        spec = self.spec(name)
        spec.check_inputs(feeds)
        outputs = self._execute(spec, {k: np.ascontiguousarray(feeds[k]) for k in spec.input_names})
        spec.check_outputs(outputs)
        return {n: outputs[n] for n in spec.output_names}

    def _execute(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        raise NotImplementedError


def _stage_files(specs: Mapping[str, StageSpec], files: Mapping[str, str | os.PathLike]) -> dict[str, Path]:
    unknown = sorted(set(files) - set(specs))
    if unknown:
        raise ValueError(f"model files given for unknown stages {unknown}; stages are {sorted(specs)}")
    paths = {name: Path(p) for name, p in files.items()}
    missing = sorted(f"{name}: {p}" for name, p in paths.items() if not p.is_file())
    if missing:
        raise FileNotFoundError(f"stage model files not found: {missing}")
    return paths


def _require(module: str, package: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingRuntimeError(
            f"{what} needs the `{package}` package ({err}); install it with `pip install {package}`"
        ) from err


def _check_names(stage: str, role: str, expected: list[str], found: list[str], path: Path) -> None:
    if sorted(expected) != sorted(found):
        raise ValueError(f"{path}: expected {stage} {role}s {expected} (the stage contract), the model has {found}")


Declared = dict[str, tuple[tuple[int | None, ...], str | None]]  # tensor name -> (shape, None: dynamic; dtype)


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_declared_io(spec: StageSpec, role: str, declared: Declared, path: Path) -> None:
    """Each `role` (`input`, `output`) tensor of the contract against what the model file declares.

    A dynamic dimension in the file (None) matches any size; a dtype the runtime does not report
    (None) is not compared. Raises one `ValueError`: `stage unet file .../unet.onnx does not match the
    manifest's stage contract: input 'sample' expected (2, 4, 8, 16, 16) float32, the file declares
    (2, 4, 4, 16, 16) float32`."""
    tensors = spec.inputs if role == "input" else spec.outputs
    for tensor in tensors:
        if tensor.name not in declared:
            continue  # names are checked on their own (`_check_names`), with the lists of both sides
        shape, dtype = declared[tensor.name]
        same_shape = len(shape) == len(tensor.shape) and all(d is None or d == e for d, e in zip(shape, tensor.shape))
        if not same_shape or (dtype is not None and dtype != tensor.dtype):
            raise ValueError(
                f"stage {spec.name} file {path} does not match the manifest's stage contract: {role} "
                f"'{tensor.name}' expected {_shape_text(tensor.shape)} {tensor.dtype}, the file declares "
                f"{_shape_text(shape)} {dtype or 'of unknown dtype'}"
            )


class FileRunner(CheckedRunner):
    """Shared by the file-backed runners: one model per stage file, all loaded and checked against
    the contract at construction (`load=False`: each on its stage's first call).

    A stage may instead be a chain of chunk models (`chunks[stage]`: their specs in run order, named
    `<stage>.chunk<i>`, with files under those names): they run in order over one dictionary of named
    tensors, from the stage inputs to the stage outputs (see `export.chunking`).
    """

    def __init__(
        self,
        specs: Mapping[str, StageSpec],
        files: Mapping[str, str | os.PathLike],
        threads: int | None,
        chunks: Mapping[str, list[StageSpec]] | None = None,
        load: bool = True,
    ):
        super().__init__(specs)
        if threads is not None and threads < 1:
            raise ValueError(f"expected threads >= 1 (or None for the runtime's default), got {threads}")
        self.chunks = {name: list(c) for name, c in (chunks or {}).items()}
        unknown = sorted(set(self.chunks) - set(self.specs))
        if unknown:
            raise ValueError(f"chunks given for unknown stages {unknown}; stages are {sorted(self.specs)}")
        self.chunk_specs = {c.name: c for chain in self.chunks.values() for c in chain}
        self.files = _stage_files({**self.specs, **self.chunk_specs}, files)
        self.threads = threads
        self._models: dict[str, Any] = {}
        if load:  # subclasses set their runtime options before calling this constructor
            self.load_all()

    def load_all(self) -> None:
        """Load every stage (and chunk) file now and check each against the contract (names, shapes,
        dtypes), in stage order; the first mismatch raises."""
        for name, spec in self.specs.items():
            for part in self.chunks.get(name) or [spec]:
                if part.name in self.files:
                    self._model(part)

    def _execute(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        if spec.name not in self.chunks:
            return self._run_file(spec, feeds)
        env = dict(feeds)
        for chunk in self.chunks[spec.name]:
            missing = [n for n in chunk.input_names if n not in env]
            if missing:
                raise ValueError(f"{chunk.name} reads {missing}, which no earlier chunk of {spec.name} writes")
            chunk.check_inputs({n: env[n] for n in chunk.input_names})
            out = self._run_file(chunk, {n: env[n] for n in chunk.input_names})
            chunk.check_outputs(out)
            env.update(out)
        return {n: env[n] for n in spec.output_names}

    def _run_file(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        raise NotImplementedError

    def _model(self, spec: StageSpec):
        if spec.name not in self._models:
            if spec.name not in self.files:
                raise ValueError(f"no model file for stage {spec.name!r}; files are given for {sorted(self.files)}")
            path = self.files[spec.name]
            logger.debug("loading %s from %s", spec.name, path)
            try:
                model, declared = self._load(spec, path)
            except (ValueError, MissingRuntimeError):
                raise  # the contract's own checks, already in its words
            except Exception as err:  # what a runtime raises for a file it cannot parse has no common type
                raise ModelFileError(
                    f"stage {spec.name} file {path} cannot be loaded by {type(self).__name__}: {type(err).__name__}: {err}"
                ) from err
            for role, found in zip(("input", "output"), declared):
                check_declared_io(spec, role, found, path)
            self._models[spec.name] = model
        return self._models[spec.name]

    def _load(self, spec: StageSpec, path: Path) -> tuple[Any, tuple[Declared, Declared]]:
        """The loaded model and what its file declares: (inputs, outputs) by contract name."""
        raise NotImplementedError


# onnxruntime's type strings -> numpy dtype names (as the contract writes them)
_ONNX_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


def _onnx_declared(args) -> Declared:
    return {
        a.name: (tuple(d if isinstance(d, int) else None for d in (a.shape or [])), _ONNX_DTYPES.get(a.type))
        for a in args
    }


def _tflite_declared(details) -> Declared:
    """LiteRT tensor details (a list, or a signature runner's dict by name) -> `Declared`."""
    items = details.items() if isinstance(details, Mapping) else ((_tflite_name(d["name"]), d) for d in details)
    declared = {}
    for name, d in items:
        shape = d.get("shape_signature", d["shape"])
        declared[name] = (tuple(None if int(x) < 0 else int(x) for x in shape), np.dtype(d["dtype"]).name)
    return declared


def _single_output(spec: StageSpec, declared: Declared) -> Declared:
    """A single-output stage takes the model's single output whatever its name (as `_match_outputs`)."""
    if len(spec.outputs) == 1 and len(declared) == 1 and spec.output_names[0] not in declared:
        return {spec.output_names[0]: next(iter(declared.values()))}
    return declared


class OnnxRunner(FileRunner):
    """onnxruntime sessions (CPU by default); `threads` sets intra-op threads (None: onnxruntime's choice)."""

    def __init__(
        self,
        specs: Mapping[str, StageSpec],
        files: Mapping[str, str | os.PathLike],
        *,
        threads: int | None = None,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        chunks: Mapping[str, list[StageSpec]] | None = None,
        load: bool = True,
    ):
        self.ort = _require("onnxruntime", "onnxruntime", "OnnxRunner")
        self.providers = list(providers)
        super().__init__(specs, files, threads, chunks, load)

    def _load(self, spec: StageSpec, path: Path):
        options = self.ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        session = self.ort.InferenceSession(str(path), options, providers=self.providers)
        _check_names(spec.name, "input", spec.input_names, [i.name for i in session.get_inputs()], path)
        _check_names(spec.name, "output", spec.output_names, [o.name for o in session.get_outputs()], path)
        return session, (_onnx_declared(session.get_inputs()), _onnx_declared(session.get_outputs()))

    def _run_file(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        values = self._model(spec).run(spec.output_names, feeds)
        return dict(zip(spec.output_names, values))


def _tflite_name(name: str) -> str:
    """`serving_default_sample:0` -> `sample`: tensor names as converters write them, to contract names."""
    name = name.split(":")[0]
    return name.removeprefix("serving_default_")


class LiteRTRunner(FileRunner):
    """LiteRT interpreters (`ai_edge_litert.interpreter.Interpreter`), inputs matched by name.

    With a signature in the model (litert-torch writes `serving_default`), the signature runner is
    used; without one, input and output tensors are matched by name (converter prefixes and `:0`
    suffixes stripped). A single-output stage takes the model's single output whatever its name.
    """

    def __init__(
        self,
        specs: Mapping[str, StageSpec],
        files: Mapping[str, str | os.PathLike],
        *,
        threads: int | None = None,
        signature: str = "serving_default",
        chunks: Mapping[str, list[StageSpec]] | None = None,
        load: bool = True,
    ):
        self.litert = _require("ai_edge_litert.interpreter", "ai-edge-litert", "LiteRTRunner")
        self.signature = signature
        super().__init__(specs, files, threads, chunks, load)

    def _load(self, spec: StageSpec, path: Path):
        interpreter = self.litert.Interpreter(model_path=str(path), num_threads=self.threads)
        signatures = interpreter.get_signature_list()
        if signatures:
            key = self.signature if self.signature in signatures else next(iter(signatures))
            if len(signatures) > 1 and key != self.signature:
                raise ValueError(f"{path}: expected signature {self.signature!r}, the model has {sorted(signatures)}")
            _check_names(spec.name, "input", spec.input_names, list(signatures[key]["inputs"]), path)
            runner = interpreter.get_signature_runner(key)
            declared = (_tflite_declared(runner.get_input_details()), _tflite_declared(runner.get_output_details()))
            return ("signature", runner, None), (declared[0], _single_output(spec, declared[1]))
        interpreter.allocate_tensors()
        inputs = {_tflite_name(d["name"]): d["index"] for d in interpreter.get_input_details()}
        _check_names(spec.name, "input", spec.input_names, list(inputs), path)
        outputs = {_tflite_name(d["name"]): d["index"] for d in interpreter.get_output_details()}
        declared = (_tflite_declared(interpreter.get_input_details()), _tflite_declared(interpreter.get_output_details()))
        return ("tensors", interpreter, (inputs, outputs)), (declared[0], _single_output(spec, declared[1]))

    def _run_file(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        kind, model, extra = self._model(spec)
        if kind == "signature":
            found = model(**feeds)
        else:
            inputs, outputs = extra
            for name, value in feeds.items():
                model.set_tensor(inputs[name], value)
            model.invoke()
            found = {name: model.get_tensor(index) for name, index in outputs.items()}
        return _match_outputs(spec, found, self.files[spec.name])


def _match_outputs(spec: StageSpec, found: Feeds, path: Path) -> Feeds:
    if all(n in found for n in spec.output_names):
        return found
    if len(spec.outputs) == 1 and len(found) == 1:
        return {spec.output_names[0]: next(iter(found.values()))}
    raise ValueError(f"{path}: expected {spec.name} outputs {spec.output_names}, the model returned {sorted(found)}")


class CallableRunner(CheckedRunner):
    """Stages as Python callables: `fn(*inputs)` in contract order -> an array (one output), a
    sequence of arrays in contract order, or a dict by output name."""

    def __init__(self, specs: Mapping[str, StageSpec], fns: Mapping[str, Callable[..., Any]]):
        super().__init__(specs)
        unknown = sorted(set(fns) - set(self.specs))
        if unknown:
            raise ValueError(f"callables given for unknown stages {unknown}; stages are {sorted(self.specs)}")
        self.fns = dict(fns)

    def _execute(self, spec: StageSpec, feeds: Feeds) -> Feeds:
        if spec.name not in self.fns:
            raise ValueError(f"no callable for stage {spec.name!r}; callables are given for {sorted(self.fns)}")
        result = self.fns[spec.name](*(feeds[n] for n in spec.input_names))
        if isinstance(result, Mapping):
            return dict(result)
        if isinstance(result, (list, tuple)):
            if len(result) != len(spec.outputs):
                raise ValueError(f"{spec.name}: expected outputs {spec.output_names}, got {len(result)} arrays")
            return dict(zip(spec.output_names, result))
        if len(spec.outputs) != 1:
            raise ValueError(f"{spec.name}: expected outputs {spec.output_names}, the callable returned one array")
        return {spec.output_names[0]: result}


RUNNERS: dict[str, type[FileRunner]] = {"onnx": OnnxRunner, "tflite": LiteRTRunner}


def bundle_backend(manifest: dict, backend: str | None = None) -> str:
    """`backend`, or (None) the bundle's own: its one target, or `onnx` among several."""
    if backend is not None:
        return backend
    targets = manifest.get("targets")
    if not targets:  # older or hand-made manifests: the targets every stage has
        per_stage = [set(record.get("targets", {})) for record in manifest["stages"].values()]
        targets = sorted(set.intersection(*per_stage)) if per_stage else []
    if len(targets) == 1:
        return targets[0]
    if "onnx" in targets:
        return "onnx"
    raise ValueError(f"the bundle has targets {list(targets)}: expected a backend chosen among them (--backend)")


def bundle_runner(
    directory: str | os.PathLike, manifest: dict, backend: str, *, threads: int | None = None, load: bool = True
) -> FileRunner:
    """The runner for `backend` (`onnx`, `tflite`) over a bundle's stage files, specs from its manifest;
    with `load`, every file loaded and checked against the contract now (see the module doc).

    Every file is resolved through `i2v_core.bundle.bundle_path`: inside the bundle and hashed, or a
    `BundleError` naming it (extra files too, which the runtime opens beside the model)."""
    if backend not in RUNNERS:
        raise ValueError(f"unknown backend {backend!r}: expected one of {', '.join(RUNNERS)}")
    specs, files, chunks = {}, {}, {}
    for name, record in manifest["stages"].items():
        targets = record.get("targets", {})
        if backend not in targets:
            raise ValueError(
                f"bundle {directory}: stage {name!r} has no {backend!r} model (targets: {sorted(targets)})"
            )
        specs[name] = StageSpec.from_dict(name, record["io"])
        entry = targets[backend]
        where = f"stage {name} target {backend}"
        for rel in entry.get("extra_files") or []:
            bundle_path(directory, manifest, rel, f"{where} extra file")
        if entry.get("chunks"):
            chunks[name] = [StageSpec.from_dict(c["name"], c["io"]) for c in entry["chunks"]]
            for c in entry["chunks"]:
                files[c["name"]] = bundle_path(directory, manifest, c["file"], f"{where} chunk {c['name']} file")
                for rel in c.get("extra_files") or []:
                    bundle_path(directory, manifest, rel, f"{where} chunk {c['name']} extra file")
        else:
            files[name] = bundle_path(directory, manifest, entry["file"], f"{where} file")
    return RUNNERS[backend](specs, files, threads=threads, chunks=chunks, load=load)
