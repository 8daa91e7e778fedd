"""The `__main__` block every long-running CLI shares: logging set up once, here and not in
libraries; SIGTERM unwinding like Ctrl-C, so atomic writers remove their temporary folders."""

from __future__ import annotations

import logging
import runpy
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_main(main: Callable[[], int], *, verbose_loggers: Sequence[str]) -> None:
    """Configure logging (WARNING; INFO for `verbose_loggers` unless `--quiet` is given), make
    SIGTERM raise `KeyboardInterrupt`, run `main()` and exit with its code."""
    # Converters log to the root logger at INFO (per-op lowering notes): keep those at WARNING.
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt="%H:%M:%S")
    if "--quiet" not in sys.argv[1:]:
        for name in verbose_loggers:
            logging.getLogger(name).setLevel(logging.INFO)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())


def parse_lora(spec: str) -> tuple[Path, float]:
    """`--lora PATH[:SCALE]` (scale 1.0 when left out), the same syntax in every CLI."""
    path, _, scale = spec.rpartition(":") if ":" in spec else (spec, "", "1.0")
    try:
        return Path(path), float(scale)
    except ValueError:
        raise ValueError(f"--lora expects PATH or PATH:SCALE with a number, got {spec!r}") from None


def forward(old: str, new: str) -> None:
    """Run `python -m new` in place of `python -m old`, a command that moved; says so on stderr."""
    print(f"note: `python -m {old}` is now `python -m {new}`; the old name forwards there", file=sys.stderr)
    runpy.run_module(new, run_name="__main__", alter_sys=True)
