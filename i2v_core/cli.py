"""The one shape of every command-line entry point.

    def main(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)              # argparse
        options = Options(out=args.out, ...)                # -> a typed options dataclass
        return cli.run(lambda: library_call(options))       # -> one library call

    if __name__ == "__main__":
        cli.entry(main, loggers=("export",))

`run` turns a user error (bad input, missing file, refused overwrite: `USER_ERRORS` plus the
command's own) into one line on stderr and exit code 2, and a failed gate (`failures`, e.g. a
parity floor) into one line and exit code 1. `entry` is the only place logging is configured:
WARNING everywhere, INFO for the command's own loggers unless `--quiet`; SIGTERM unwinds like
Ctrl-C, so atomic writers remove their temporary folders, and an interrupt exits 130 with one line.
"""

from __future__ import annotations

import logging
import runpy
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from i2v_core import values

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a user can fix: bad values, missing or existing paths, permissions. Anything else is a bug
# and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
)


def run(call: Callable[[], int | None], *, user_errors: tuple[type[BaseException], ...] = (),
        failures: tuple[type[BaseException], ...] = ()) -> int:
    """`call()`'s exit code (None: 0); `failures` -> 1 and `USER_ERRORS + user_errors` -> 2, each
    with one line on stderr."""
    try:
        code = call()
    except failures as err:
        print(f"failed: {err}", file=sys.stderr)
        return 1
    except (*USER_ERRORS, *user_errors) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
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
    """Raise `IMPORT_NOISE`'s loggers to ERROR unless the user has set a level for them. Called by
    the `__init__` of each package that imports torch, because the messages come while importing;
    this project's own loggers and all handlers are left to `entry`."""
    for name in IMPORT_NOISE:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.ERROR)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def entry(main: Callable[[], int], *, loggers: Sequence[str]) -> None:
    """The `__main__` block: configure logging, make SIGTERM raise `KeyboardInterrupt`, run `main()`
    and exit with its code (130 after an interrupt)."""
    configure_logging(loggers, quiet="--quiet" in sys.argv[1:])
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
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
    values.sampling(steps, guidance, seed, names=("--steps", "--guidance", "--seed"))
    if fps is not None:
        values.integer(fps, "--fps", minimum=1)


def forward(old: str, new: str) -> None:
    """Run `python -m new` in place of `python -m old`, a command that moved; says so on stderr."""
    print(f"note: `python -m {old}` is now `python -m {new}`; the old name forwards there", file=sys.stderr)
    runpy.run_module(new, run_name="__main__", alter_sys=True)
