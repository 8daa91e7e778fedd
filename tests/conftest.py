"""Shared fixtures.

- `tiny_bundle`: the tiny default exported once per test session through the CLI
  (`python -m export.build --target all`: ONNX and TFLite, fp32), shared read-only by every test
  module that needs a bundle; tests that change a bundle work on `copy_bundle(...)`. At the end of the
  session the bundle must still verify (a test that wrote into it fails there). Set
  `I2V_TEST_BUNDLE=DIR` to use a bundle exported beforehand while iterating on tests.
- Lanes: the default lane (`make test`) runs everything but two marks. `slow`: heavy paths of the
  tiny preset (chunked UNet export, sensitivity sweeps, the non-default int8-static recipe, the
  ablation CLI, ...), run with RUN_SLOW_TESTS=1 (`make test-slow`; CI runs both lanes). `large`:
  full-size (SD1.5 architecture) tests, run only with RUN_LARGE_TESTS=1: minutes and about 11 GB.
"""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from i2v_core.bundle import MANIFEST_NAME, SCHEMA_VERSION, bundle_files, file_record, verify_bundle
from i2v_core.config import get_preset
from i2v_core.stages import stage_specs
from i2v_core.tokenizer import CLIPTokenizer

RUN_LARGE = os.environ.get("RUN_LARGE_TESTS") == "1"
RUN_SLOW = os.environ.get("RUN_SLOW_TESTS") == "1"
SKIPS = {
    "large": (RUN_LARGE, "full-size SD1.5 run: set RUN_LARGE_TESTS=1 (minutes, ~11 GB RAM)"),
    "slow": (RUN_SLOW, "heavy tiny-preset path: set RUN_SLOW_TESTS=1 (make test-slow; CI runs it)"),
}


def pytest_collection_modifyitems(config, items):
    for mark, (run, reason) in SKIPS.items():
        if run:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if mark in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def tiny_cfg():
    return get_preset("tiny")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    given = os.environ.get("I2V_TEST_BUNDLE")
    if given:
        yield Path(given)
        return
    from export.build import main as build_main

    out = tmp_path_factory.mktemp("shared") / "tiny"
    assert build_main(["--target", "all", "--out", str(out), "--quiet"]) == 0
    yield out
    verify_bundle(out)  # read-only for every test: a changed file or a stray one fails here


def copy_bundle(source: Path, dest: Path) -> Path:
    """A private copy of a bundle, for tests that break or extend it."""
    return Path(shutil.copytree(source, dest))


def write_stand_in_onnx(path: Path, spec) -> Path:
    """An ONNX model with `spec`'s inputs and outputs (names, shapes, dtypes) whose outputs are zeros:
    it loads and passes the runtime's contract check, and computes nothing."""
    import onnx  # deferred: only the tests that build a hand-made bundle need it
    from onnx import TensorProto, helper

    types = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}
    nodes, initializers = [], []
    for t in spec.outputs:
        initializers.append(helper.make_tensor(f"{t.name}_shape", TensorProto.INT64, [len(t.shape)], list(t.shape)))
        nodes.append(helper.make_node("ConstantOfShape", [f"{t.name}_shape"], [t.name]))
    graph = helper.make_graph(
        nodes, spec.name,
        [helper.make_tensor_value_info(t.name, types[t.dtype], list(t.shape)) for t in spec.inputs],
        [helper.make_tensor_value_info(t.name, types[t.dtype], list(t.shape)) for t in spec.outputs],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_fake_bundle(root, cfg):
    """A hand-made bundle in the layout of `i2v_core.manifest`: manifest, tokenizer and stand-in model
    files for `cfg` (right names, shapes and dtypes, zero outputs: `write_stand_in_onnx`), hashes as
    `i2v_core.bundle` records them."""
    root.mkdir()
    CLIPTokenizer.from_bpe_file().save_pretrained_files(root / "tokenizer")
    stages = {}
    for name, spec in stage_specs(cfg).items():
        write_stand_in_onnx(root / f"{name}.onnx", spec)
        stages[name] = {"io": spec.to_dict(), "targets": {"onnx": {"file": f"{name}.onnx", "extra_files": []}}}
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "preset": {"name": cfg.name, "config": cfg.to_dict()},
        "stages": stages,
        "scheduler": {"class_name": "DDIMScheduler", **cfg.scheduler.to_diffusers()},
        "fsp": dataclasses.asdict(cfg.fsp),
        "sampling": dataclasses.asdict(cfg.sampling),
        "tokenizer": {"directory": "tokenizer"},
        "files": {rel: file_record(root / rel) for rel in bundle_files(root)},
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return root
