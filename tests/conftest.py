"""Shared fixtures.

- `tiny_bundle`: the tiny default exported once per test session through the CLI
  (`python -m export.build --target all`: ONNX and TFLite, fp32), shared read-only by every test
  module that needs a bundle; tests that change a bundle work on `copy_bundle(...)`. At the end of the
  session the bundle must still verify (a test that wrote into it fails there). Set
  `I2V_TEST_BUNDLE=DIR` to use a bundle exported beforehand while iterating on tests.
- Full-size (SD1.5 architecture) tests are marked `large` and run only with RUN_LARGE_TESTS=1:
  they need minutes and about 11 GB of memory.
"""

import os
import shutil
from pathlib import Path

import pytest

from i2v_core.bundle import verify_bundle
from i2v_core.config import get_preset

RUN_LARGE = os.environ.get("RUN_LARGE_TESTS") == "1"


def pytest_collection_modifyitems(config, items):
    if RUN_LARGE:
        return
    skip = pytest.mark.skip(reason="full-size SD1.5 run: set RUN_LARGE_TESTS=1 (minutes, ~11 GB RAM)")
    for item in items:
        if "large" in item.keywords:
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
