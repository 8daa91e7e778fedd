"""Wall time and peak resident memory of one block of work (torch-free).

Peak RSS per block: on Linux the process high-water mark (`VmHWM`) is reset by writing `5` to
`/proc/self/clear_refs`, so each block reports its own peak (which includes whatever the process
already holds, e.g. the models). Elsewhere it falls back to the process-lifetime peak from
`getrusage`, and says so in `rss_scope`.
"""

from __future__ import annotations

import ctypes
import gc
import re
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Usage:
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rss_scope: str = "block"  # "block" (reset before it) or "process" (lifetime peak)
    parity_seconds: float | None = None  # the part of `seconds` spent running the parity check, if set

    def to_dict(self) -> dict:
        d = {"seconds": round(self.seconds, 3), "peak_rss_mb": round(self.peak_rss_mb, 1), "rss_scope": self.rss_scope}
        if self.parity_seconds is not None:
            d["parity_seconds"] = round(self.parity_seconds, 3)
        return d


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, kB on Linux


@contextmanager
def usage() -> Iterator[Usage]:
    """Measure the block: `with usage() as u: ...`, then `u.seconds`, `u.peak_rss_mb`."""
    result = Usage(rss_scope="block" if _reset_peak() else "process")
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        result.peak_rss_mb = _peak_mb()


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc `malloc_trim`), so the peak of the
    next block is not the sum of everything freed before it. A no-op where there is no glibc."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
