"""The one shape of every command-line entry point.

    def main(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)              # argparse
        options = Options(out=args.out, ...)                # -> a typed options dataclass
        return cli.run(lambda: library_call(options))       # -> one library call

    if __name__ == "__main__":
        cli.entry(main, loggers=("export",))

`run` turns a user error (bad input, missing file, refused overwrite: `USER_ERRORS` plus the
command's own; an `OSError` a user can fix, by errno: full disk, quota, read-only file system,
permissions, see `i2v_core.errors.USER_OS_ERRNOS`) into one line on stderr and exit code 2, and a
failed gate (`failures`, e.g. a parity floor) into one line and exit code 1. `entry` is the only
place logging is configured: WARNING everywhere, INFO for the command's own loggers unless
`--quiet`; SIGINT and SIGTERM unwind as `KeyboardInterrupt`, so atomic writers remove their
temporary folders, and an interrupt exits 130 with one line.

An interrupt is also recorded: a `KeyboardInterrupt` that a library swallows (raised inside a
garbage-collector callback, or wrapped in another exception by a lazy import) still ends the
command. Long steps call `check_interrupted()` between units of work (the exporter after each
conversion), and whatever the command raises after an interrupt exits 130 as the interrupt.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from i2v_core import values
from i2v_core.errors import is_user_os_error, os_error_message

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a user can fix: bad values, missing or existing paths, permissions. Anything else is a bug
# and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
)


def run(call: Callable[[], int | None], *, user_errors: tuple[type[BaseException], ...] = (),
        failures: tuple[type[BaseException], ...] = ()) -> int:
    """`call()`'s exit code (None: 0); `failures` -> 1, and `USER_ERRORS + user_errors` or a
    user-fixable `OSError` (by errno) -> 2, each with one line on stderr. After an interrupt
    (`interrupted()`), anything raised is the interrupt: `KeyboardInterrupt`."""
    try:
        code = call()
    except (*failures, *USER_ERRORS, *user_errors, OSError) as err:
        if interrupted():
            raise KeyboardInterrupt(f"interrupted ({type(err).__name__} raised after the interrupt)") from err
        if isinstance(err, failures):
            print(f"failed: {err}", file=sys.stderr)
            return 1
        if is_user_os_error(err):
            print(f"error: {os_error_message(err)}", file=sys.stderr)
            return 2
        if isinstance(err, (*USER_ERRORS, *user_errors)):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise  # any other OSError is a bug or a broken machine: keep its traceback
    return 0 if code is None else int(code)


def configure_logging(loggers: Sequence[str], *, quiet: bool = False) -> None:
    """WARNING for everything, INFO for `loggers` (the command's own packages) unless `quiet`.

    `__main__` counts as one of them: under `python -m package.module` the module's own
    `logging.getLogger(__name__)` is `__main__`, outside the package's logger."""
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, datefmt="%H:%M:%S")
    for name in (*loggers, "__main__"):
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.INFO)


# Third-party loggers that print at import time, before any `__main__` can configure logging: torchao
# (pulled in by diffusers, transformers and litert-torch) cannot load its CUDA-only kernels on a CPU
# machine and registers enums through a deprecated torch API.
IMPORT_NOISE = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao")


def quiet_import_noise() -> None:
    """Raise `IMPORT_NOISE`'s loggers to ERROR unless the user has set a level for them (through
    `before_heavy_imports`, because the messages come while importing); this project's own loggers
    and all handlers are left to `entry`."""
    for name in IMPORT_NOISE:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.ERROR)


def before_heavy_imports() -> None:
    """Called by the `__init__` of each package that imports torch, before those imports:
    `quiet_import_noise()`, and, when the package is being started as a command
    (`python -m package.module`), interrupts handled from the start: Ctrl-C or SIGTERM while the
    command is still importing ends it at once with the one line `interrupted` and exit code 130
    (nothing has been written yet), not with a traceback from inside some library's import."""
    quiet_import_noise()
    # `python -m package.module` imports the package before running the module, meanwhile argv[0] is
    # "-m"; any other program (pytest, a notebook) imports this package with its own argv[0].
    if sys.argv[:1] == ["-m"] and threading.current_thread() is threading.main_thread():
        _install_interrupts()


class _Signals:
    """The signal that interrupted this process, if any, and whether `entry` is running the
    command (a signal is process-wide state)."""

    received: int | None = None
    running: bool = False


def _interrupt(signum, frame):
    _Signals.received = signum
    if not _Signals.running:  # still importing: nothing to unwind, and a traceback helps nobody
        print("interrupted", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)
    raise KeyboardInterrupt(f"signal {signum}")


def _install_interrupts() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    sys.unraisablehook = _drop_swallowed_interrupt


def interrupted() -> bool:
    """True once SIGINT or SIGTERM arrived in a process started through `entry`."""
    return _Signals.received is not None


def check_interrupted() -> None:
    """Raise `KeyboardInterrupt` if an interrupt arrived but its exception was swallowed on the way
    (litert-torch's conversion runs garbage-collector callbacks, where Python drops exceptions).
    Call it between units of long work; outside `entry` it never raises."""
    if interrupted():
        raise KeyboardInterrupt(f"signal {_Signals.received}")


def _drop_swallowed_interrupt(unraisable) -> None:
    # A KeyboardInterrupt raised where Python cannot propagate it (a `__del__`, a gc callback) is
    # recorded by `_interrupt` and honoured by `check_interrupted`; its traceback is noise.
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and interrupted():
        return
    sys.__unraisablehook__(unraisable)


def entry(main: Callable[[], int], *, loggers: Sequence[str]) -> None:
    """The `__main__` block: configure logging, make SIGINT and SIGTERM raise (and record)
    `KeyboardInterrupt`, run `main()` and exit with its code; 130 after an interrupt, with the one
    line `interrupted`, whatever a library raised once it was interrupted."""
    configure_logging(loggers, quiet="--quiet" in sys.argv[1:])
    _install_interrupts()
    _Signals.running = True
    try:
        code = main()
    except Exception:
        if not interrupted():
            raise
        # A library turned the interrupt into another exception (a lazy import's RuntimeError).
        print("interrupted", file=sys.stderr)
        code = 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    else:
        if interrupted():  # swallowed, and no check came after it: the work is complete
            print("note: interrupted after the work was done; its output is complete", file=sys.stderr)
    sys.exit(code)


def parse_lora(spec: str) -> tuple[Path, float]:
    """`--lora PATH[:SCALE]` (scale 1.0 when left out), the same syntax in every CLI."""
    path, _, scale = spec.rpartition(":") if ":" in spec else (spec, "", "1.0")
    try:
        return Path(path), float(scale)
    except ValueError:
        raise ValueError(f"--lora expects PATH or PATH:SCALE with a number, got {spec!r}") from None


def check_sampling_flags(*, steps: int | None, guidance: float | None, seed: int, fps: int | None = None) -> None:
    """The numeric flags every generating CLI shares, named by flag: `--steps` >= 1, `--guidance`
    finite and >= 0, `--seed` in [0, 2**32 - 1], `--fps` >= 1 (None: the default, not checked)."""
    values.sampling(steps, guidance, seed, fps, names=("--steps", "--guidance", "--seed", "--fps"))


def forward(old: str, new: str) -> None:
    """Run `python -m new` in place of `python -m old`, a command that moved; says so on stderr."""
    print(f"note: `python -m {old}` is now `python -m {new}`; the old name forwards there", file=sys.stderr)
    runpy.run_module(new, run_name="__main__", alter_sys=True)
