"""One tiny exported bundle (ONNX + TFLite, fp32) per test session, shared by the runtime test files.

Exporting it takes about a minute on 2 cores, so it is made once per process (not once per test
file) in a temporary folder removed at exit. Set `RUNTIME_TEST_BUNDLE=DIR` to use a bundle exported
beforehand (`python -m export.build --target all --out DIR`) while iterating on the tests.
"""

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path


@functools.lru_cache(maxsize=1)
def tiny_bundle() -> Path:
    given = os.environ.get("RUNTIME_TEST_BUNDLE")
    if given:
        return Path(given)
    from export.exporter import ExportOptions, export_bundle

    root = Path(tempfile.mkdtemp(prefix="runtime_tests_"))
    atexit.register(shutil.rmtree, root, True)
    export_bundle(ExportOptions(out=root / "tiny"))
    return root / "tiny"


def copy_bundle(dest: Path) -> Path:
    """A private copy of the tiny bundle, for tests that break it."""
    return Path(shutil.copytree(tiny_bundle(), dest))
