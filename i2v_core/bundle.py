"""Read and verify an export bundle (torch-free: the numpy runtime and the app's tooling use it).

A bundle is a directory: one model file per stage and target (`unet.onnx`, `unet.tflite`, ...; an
ONNX model over 2 GB adds its external-data file `unet.onnx.data`), `tokenizer/` and
`manifest.json`. The manifest's `files` table lists every other file of the bundle with its size and
sha256; `verify_bundle` checks that the directory holds exactly those files, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite"}  # one file suffix per export target
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


def verify_bundle(directory: str | os.PathLike) -> dict:
    """Check every file against the manifest's sizes and sha256; return the manifest.

    Raises `BundleError` naming the file and both hashes on a mismatch, and listing files that are
    missing from the directory or present but not in the manifest.
    """
    root = Path(directory)
    manifest = load_manifest(root)
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
