"""Exceptions shared across the package (torch-free)."""

from __future__ import annotations

import errno
import os


class CheckpointError(ValueError):
    """A checkpoint file or folder does not match the model: bad keys, shapes, layout or file."""


def preview_names(items: list[str], limit: int = 6) -> str:
    """`a, b, c, ... (N more)`: enough names to act on, without flooding the message."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


# OS errors a user can fix by choosing another place or freeing room: errno name -> what to do. Any
# other OSError is a bug (or a broken machine) and keeps its traceback.
_USER_ERRNO_ADVICE = {
    "ENOSPC": "free space on that disk or write somewhere else",
    "EDQUOT": "free space within your quota or write somewhere else",
    "EROFS": "the file system is read-only: write somewhere else",
    "EACCES": "check the path's permissions or write somewhere else",
    "EPERM": "check the path's permissions or write somewhere else",
}
USER_OS_ERRNOS: dict[int, tuple[str, str]] = {
    getattr(errno, name): (name, advice) for name, advice in _USER_ERRNO_ADVICE.items() if hasattr(errno, name)
}


def is_user_os_error(err: BaseException) -> bool:
    """An `OSError` whose errno is in `USER_OS_ERRNOS` (full disk, quota, read-only, permissions)."""
    return isinstance(err, OSError) and err.errno in USER_OS_ERRNOS


def os_error_message(err: OSError) -> str:
    """One line for a user-fixable `OSError`: what happened, to which path, what to do.

    `[Errno 28] No space left on device: '/out/b/unet.onnx'` -> `no space left on device (ENOSPC):
    /out/b/unet.onnx: free space on that disk or write somewhere else`. (The atomic writers of
    `i2v_core.media` name the output path where the system call named none, or a temporary one.)"""
    name, advice = USER_OS_ERRNOS[err.errno]
    what = (err.strerror or os.strerror(err.errno)).lower()
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    where = f": {' -> '.join(paths)}" if paths else " (the path was not reported)"
    return f"{what} ({name}){where}: {advice}"
