"""The `__main__` block every long-running CLI shares: logging set up once, here and not in
libraries; SIGTERM unwinding like Ctrl-C, so atomic writers remove their temporary folders."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Sequence

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
