"""The one CLI shape (`i2v_core.cli`): which errors are the user's (one line, exit 2), which are
failures (exit 1), and which keep their traceback."""

import errno

import pytest

from i2v_core import cli, media


def _raise(err: BaseException):
    def call():
        raise err

    return call


@pytest.mark.parametrize(
    "code, strerror, line",
    [
        (errno.ENOSPC, "No space left on device",
         "error: no space left on device (ENOSPC): /out/b/unet.onnx: free space on that disk or write somewhere else"),
        (errno.EDQUOT, "Disk quota exceeded",
         "error: disk quota exceeded (EDQUOT): /out/b/unet.onnx: free space within your quota or write somewhere else"),
        (errno.EROFS, "Read-only file system",
         "error: read-only file system (EROFS): /out/b/unet.onnx: the file system is read-only: write somewhere else"),
        (errno.EACCES, "Permission denied",
         "error: permission denied (EACCES): /out/b/unet.onnx: check the path's permissions or write somewhere else"),
        (errno.EPERM, "Operation not permitted",
         "error: operation not permitted (EPERM): /out/b/unet.onnx: check the path's permissions or write somewhere else"),
    ],
)
def test_os_errors_a_user_can_fix_are_one_line_and_exit_2(code, strerror, line, capsys):
    assert cli.run(_raise(OSError(code, strerror, "/out/b/unet.onnx"))) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_other_os_errors_keep_their_traceback(capsys):
    with pytest.raises(OSError, match="Input/output error"):
        cli.run(_raise(OSError(errno.EIO, "Input/output error", "/out/b")))
    with pytest.raises(ConnectionResetError):  # an OSError subclass with an errno outside the list
        cli.run(_raise(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")))
    assert capsys.readouterr().err == ""


def test_user_errors_and_failures_keep_their_codes(capsys):
    assert cli.run(_raise(ValueError("expected a, got b"))) == 2
    assert cli.run(_raise(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.png"))) == 2
    assert cli.run(_raise(RuntimeError("gate")), failures=(RuntimeError,)) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: expected a, got b",
        "error: [Errno 2] No such file or directory: 'x.png'",
        "failed: gate",
    ]


def test_full_disk_while_writing_an_output_folder(tmp_path, capsys):
    """ENOSPC in the middle of a step's atomic write: one line naming the output, exit 2, nothing left."""
    out = tmp_path / "bundle"

    def export():
        with media.atomic_output_dir(out) as tmp:
            with open(tmp / "unet.onnx", "wb") as f:
                f.write(b"first half")
                raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write() reports it

    assert cli.run(export) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: no space left on device (ENOSPC): {out}: free space on that disk or write somewhere else"
    ]
    assert list(tmp_path.iterdir()) == []
