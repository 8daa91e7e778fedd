"""Read and verify an export bundle (torch-free: the numpy runtime and the app's tooling use it).

A bundle is a directory: one model file per stage and target (`unet.onnx`, `unet.tflite`, ...; an
ONNX model over 2 GB adds its external-data file `unet.onnx.data`), `tokenizer/` and
`manifest.json`. The manifest's `files` table lists every other file of the bundle with its size and
sha256; `verify_bundle` checks that the directory holds exactly those files, byte for byte.

Every path the manifest names (`check_manifest_paths`: stage files, extra files and chunks, the tokenizer
folder and files, calibration files, and the `files` table itself) must be a POSIX path relative to
the bundle, without `..`, that stays inside the bundle once symlinks are resolved, and, for a file,
is listed in the hashed `files` table. Readers open bundle files only through `bundle_path` (and
`tokenizer_path`), which check exactly that, so a manifest cannot send a reader outside its bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from i2v_core.outputs import OutputKind

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite"}  # one file suffix per export target
BUNDLE_OUTPUT = OutputKind("bundle", MANIFEST_NAME, created_by=True)  # what --overwrite may replace
TOKENIZER_FILES = ("vocab.json", "merges.txt")  # what readers open in the tokenizer folder
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle is missing, malformed, or its files do not match the manifest."""


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (model files can be several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """`{"bytes": ..., "sha256": ...}` of one file, as the manifest's `files` table holds it."""
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def bundle_files(directory: Path) -> list[str]:
    """Every file under `directory` except the manifest, as sorted POSIX relative paths."""
    return sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p != directory / MANIFEST_NAME
    )


def load_manifest(directory: str | os.PathLike) -> dict:
    """The bundle's `manifest.json` as a dict; `BundleError` if absent, unreadable or a newer schema."""
    root = Path(directory)
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"expected a bundle directory, found {'a file' if root.exists() else 'nothing'} at {root}")
    if not path.is_file():
        raise BundleError(f"expected {MANIFEST_NAME} in bundle {root}, not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BundleError(f"could not read {path}: {err}") from err
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise BundleError(f"{path}: expected schema_version in [1, {SCHEMA_VERSION}], found {version!r}")
    for key in ("preset", "stages", "files"):
        if key not in manifest:
            raise BundleError(f"{path}: expected a {key!r} entry, not found")
    return manifest


def _escape_reason(root: Path, rel: object) -> str | None:
    """Why `rel` is not a safe path inside the bundle `root` (None: it is)."""
    if not isinstance(rel, str) or not rel:
        return f"is not a path: expected a non-empty relative path, found {type(rel).__name__} {rel!r}"
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return "is an absolute path: expected a path relative to the bundle"
    if "\\" in rel:
        return "contains a backslash: expected a POSIX path relative to the bundle"
    if ".." in PurePosixPath(rel).parts:
        return "points outside the bundle"
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return f"points outside the bundle (it resolves to {resolved})"
    return None


def check_inside(directory: str | os.PathLike, rel: object, what: str) -> Path:
    """`directory / rel` after checking that `rel` is relative, has no `..` and stays inside the
    bundle once symlinks are resolved; `BundleError` naming `what`, the path and why otherwise."""
    root = Path(directory)
    reason = _escape_reason(root, rel)
    if reason is not None:
        raise BundleError(f"{what} {rel!r} {reason}")
    return root / rel


def bundle_path(directory: str | os.PathLike, manifest: dict, rel: object, what: str) -> Path:
    """The path of a bundle file the manifest names, checked (see `check_inside`) and listed in the
    hashed `files` table. Every reader opens bundle files through this."""
    path = check_inside(directory, rel, what)
    files = manifest.get("files")
    if not isinstance(files, dict) or rel not in files:
        raise BundleError(f"{what} {rel!r} is not in the manifest's hashed files table")
    return path


def tokenizer_path(directory: str | os.PathLike, manifest: dict, name: str) -> Path:
    """A file of the bundle's tokenizer folder (`vocab.json`, `merges.txt`), checked like `bundle_path`."""
    folder = _tokenizer_directory(manifest)
    check_inside(directory, folder, "tokenizer directory")
    return bundle_path(directory, manifest, f"{folder}/{name}", "tokenizer file")


def _tokenizer_directory(manifest: dict) -> object:
    tokenizer = manifest.get("tokenizer")
    if not isinstance(tokenizer, dict) or "directory" not in tokenizer:
        raise BundleError(f"{MANIFEST_NAME}: expected a 'tokenizer' entry with a 'directory', found {tokenizer!r}")
    return tokenizer["directory"]


def _listed(value: object, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BundleError(f"{MANIFEST_NAME}: expected {what} to be a list of paths, found {value!r}")
    return value


def _target_paths(stage: str, target: str, entry: dict) -> list[tuple[str, object]]:
    where = f"stage {stage} target {target}"
    if not isinstance(entry, dict):
        raise BundleError(f"{MANIFEST_NAME}: expected {where} to be an object, found {entry!r}")
    paths = [(f"{where} file", entry.get("file"))]
    paths += [(f"{where} extra file", rel) for rel in _listed(entry.get("extra_files"), f"{where} extra_files")]
    for chunk in _listed(entry.get("chunks"), f"{where} chunks"):
        name = chunk.get("name") if isinstance(chunk, dict) else None
        if name is None:
            raise BundleError(f"{MANIFEST_NAME}: expected {where} chunks to be objects with a name, found {chunk!r}")
        paths.append((f"{where} chunk {name} file", chunk.get("file")))
        paths += [(f"{where} chunk {name} extra file", rel) for rel in _listed(chunk.get("extra_files"), f"{name} extra_files")]
    return paths


def manifest_paths(manifest: dict) -> list[tuple[str, object]]:
    """`(what, path)` for every file path the manifest names outside its `files` table and the
    tokenizer: each stage target's file, extra files and chunk files, and the calibration files."""
    stages = manifest.get("stages")
    if not isinstance(stages, dict):
        raise BundleError(f"{MANIFEST_NAME}: expected 'stages' to be an object, found {stages!r}")
    paths = []
    for stage, record in stages.items():
        targets = record.get("targets", {}) if isinstance(record, dict) else None
        if not isinstance(targets, dict):
            raise BundleError(f"{MANIFEST_NAME}: expected stage {stage} to have a 'targets' object, found {record!r}")
        for target, entry in targets.items():
            paths += _target_paths(stage, target, entry)
    calibration = (manifest.get("quantization") or {}).get("calibration") or {}
    paths += [("calibration file", rel) for rel in _listed(calibration.get("files"), "quantization.calibration.files")]
    return paths


def _check_tokenizer(directory: Path, manifest: dict) -> None:
    """The folder inside the bundle; its listed files inside the folder and hashed; vocab and merges hashed."""
    folder = _tokenizer_directory(manifest)
    check_inside(directory, folder, "tokenizer directory")
    for rel in _listed(manifest["tokenizer"].get("files"), "tokenizer.files"):
        bundle_path(directory, manifest, rel, "tokenizer file")
        if not str(rel).startswith(f"{folder}/"):
            raise BundleError(f"tokenizer file {rel!r} is not inside the tokenizer directory {folder!r}")
    for name in TOKENIZER_FILES:
        bundle_path(directory, manifest, f"{folder}/{name}", "tokenizer file")


def check_manifest_paths(directory: str | os.PathLike, manifest: dict) -> None:
    """Every path the manifest names is inside the bundle and, for a file, in the `files` table;
    every `files` table entry is inside the bundle. `BundleError` naming the first that is not, and why."""
    root = Path(directory)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{MANIFEST_NAME}: expected 'files' to be an object of path -> record, found {files!r}")
    for what, rel in manifest_paths(manifest):
        bundle_path(root, manifest, rel, what)
    if manifest.get("tokenizer") is not None:
        _check_tokenizer(root, manifest)
    for rel in files:
        check_inside(root, rel, "files table entry")


def verify_bundle(directory: str | os.PathLike) -> dict:
    """Check the manifest's paths (`check_manifest_paths`), then every file against the manifest's
    sizes and sha256; return the manifest.

    Raises `BundleError` naming a path that leaves the bundle or is not hashed, the file and both
    hashes on a mismatch, and listing files that are missing from the directory or present but not
    in the manifest.
    """
    root = Path(directory)
    manifest = load_manifest(root)
    check_manifest_paths(root, manifest)
    listed = manifest["files"]
    present = set(bundle_files(root))
    missing = sorted(set(listed) - present)
    unexpected = sorted(present - set(listed))
    if missing or unexpected:
        raise BundleError(
            f"bundle {root} does not match its manifest: missing files {missing}, files not in the manifest {unexpected}"
        )
    for rel, expected in listed.items():
        path = root / rel
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise BundleError(f"{path}: expected {expected['bytes']} bytes (manifest), found {size}")
        found = sha256_file(path)
        if found != expected["sha256"]:
            raise BundleError(f"{path}: sha256 mismatch: manifest has {expected['sha256']}, file has {found}")
    return manifest
