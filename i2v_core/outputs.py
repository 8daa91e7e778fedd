"""What an output folder may replace, and what it may not touch (standard library only).

- `OutputKind`: what one step writes into its output folder (a bundle, a generation folder, a
  report), recognised by the JSON file it always writes there. `--overwrite` replaces only a folder
  of that kind, or an empty folder: anything else is refused with one error naming the folder and
  what it holds, and nothing is deleted. (`i2v_core.media.atomic_output_dir` applies it.)
- `check_separate`: an output may not be its input, contain it, or be inside it; refused before
  any work, whether or not `--overwrite` is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from i2v_core import PROJECT
from i2v_core.errors import preview_names


@dataclass(frozen=True)
class OutputKind:
    """One step's output folder: `what` it is called in messages, the JSON `marker` file the step
    always writes into it, and whether that file must hold `created_by` starting with the project's
    name (bundles: `manifest.json`)."""

    what: str
    marker: str
    created_by: bool = False

    def describe(self) -> str:
        signed = f" with created_by '{PROJECT} ...'" if self.created_by else ""
        return f"a {self.what} this project wrote ({self.marker}{signed})"

    def not_ours(self, folder: Path) -> str | None:
        """Why `folder` is not an output of this kind (None: it is)."""
        path = folder / self.marker
        if not path.is_file():
            return f"no {self.marker}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return f"{self.marker} is not readable JSON"
        if not isinstance(data, dict):
            return f"{self.marker} is not a JSON object"
        if self.created_by:
            signature = data.get("created_by")
            if not (isinstance(signature, str) and signature.startswith(PROJECT)):
                return f"{self.marker} has created_by {signature!r}"
        return None


def _contents(folder: Path) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())


def check_replaceable(target: Path, kind: OutputKind | None) -> None:
    """An existing `target` may be replaced only if it is an empty folder or an output of `kind`
    (None: only an empty folder); otherwise `FileExistsError` naming it and what it holds."""
    if not target.is_dir():
        raise FileExistsError(f"expected {target} to be a directory to overwrite, found a file")
    held = _contents(target)
    if not held:
        return
    reason = "no output kind given" if kind is None else kind.not_ours(target)
    if reason is None:
        return
    expected = "an empty folder" if kind is None else f"{kind.describe()} or an empty folder"
    raise FileExistsError(
        f"refusing to overwrite {target}: --overwrite replaces only {expected}, and this folder holds "
        f"{preview_names(held)} ({reason}); nothing was deleted"
    )


def check_separate(out: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None], *, name: str = "--out") -> None:
    """`ValueError` if the output `out` is one of `inputs` (flag -> path; None entries skipped),
    contains one, or lies inside one: replacing it would delete an input, writing it would change one."""
    target = Path(out).resolve()
    for flag, path in inputs.items():
        if path is None:
            continue
        source = Path(path).resolve()
        if target == source:
            raise ValueError(f"{name} {out} is the input {flag} {path}: expected an output apart from its input")
        if source.is_relative_to(target):
            raise ValueError(
                f"{name} {out} contains the input {flag} {path}: expected an output outside it "
                "(replacing the output would delete the input)"
            )
        if target.is_relative_to(source):
            raise ValueError(
                f"{name} {out} is inside the input {flag} {path}: expected an output outside it "
                "(writing the output would change the input)"
            )
