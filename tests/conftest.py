"""Shared fixtures. Full-size (SD1.5 architecture) tests are marked `large` and run only with
RUN_LARGE_TESTS=1: they need minutes and about 11 GB of memory."""

import os

import pytest

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
