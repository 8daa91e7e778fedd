"""Every path a manifest names stays inside its bundle and is hashed: `verify_bundle` refuses a
manifest that points elsewhere with one error naming the path and why, and the runtime opens bundle
files only through the same checks, even unverified. Hand-made bundles (`conftest.write_fake_bundle`):
no model is exported or run."""

import json
import shutil

import pytest
from conftest import write_fake_bundle

from i2v_core.bundle import MANIFEST_NAME, BundleError, bundle_files, file_record, verify_bundle
from i2v_core.config import get_preset
from runtime_py.pipeline import RuntimePipeline


@pytest.fixture
def bundle(tmp_path):
    return write_fake_bundle(tmp_path / "bundle", get_preset("tiny"))


def edit_manifest(bundle, change, *, rehash: bool = False) -> dict:
    """Apply `change(manifest)` to the bundle's manifest; `rehash`: recompute the files table first."""
    path = bundle / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if rehash:
        manifest["files"] = {rel: file_record(bundle / rel) for rel in bundle_files(bundle)}
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def unet_entry(manifest) -> dict:
    return manifest["stages"]["unet"]["targets"]["onnx"]


def refused(bundle, message: str) -> None:
    """`verify_bundle` and the unverified runtime both refuse the bundle with exactly `message`."""
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert str(err.value) == message
    with pytest.raises(BundleError) as err:
        RuntimePipeline.from_bundle(bundle, "onnx", verify=False)
    assert str(err.value) == message


def test_the_fake_bundle_verifies_and_loads(bundle):
    pytest.importorskip("onnxruntime")
    verify_bundle(bundle)
    pipe = RuntimePipeline.from_bundle(bundle, "onnx", verify=False)
    assert pipe.runner.files["unet"] == bundle / "unet.onnx"


def test_dot_dot_points_outside(bundle):
    (bundle.parent / "x.onnx").write_bytes(b"outside")
    edit_manifest(bundle, lambda m: unet_entry(m).update(file="../x.onnx"))
    refused(bundle, "stage unet target onnx file '../x.onnx' points outside the bundle")


def test_absolute_path_is_refused(bundle):
    outside = bundle.parent / "x.onnx"
    outside.write_bytes(b"outside")
    edit_manifest(bundle, lambda m: unet_entry(m).update(file=str(outside)))
    refused(bundle, f"stage unet target onnx file '{outside}' is an absolute path: expected a path relative to the bundle")


def test_symlink_out_of_the_bundle_is_refused(bundle):
    # Same bytes, so the hashes match: only the resolved path gives it away.
    outside = bundle.parent / "elsewhere.onnx"
    shutil.copyfile(bundle / "unet.onnx", outside)
    (bundle / "unet.onnx").unlink()
    (bundle / "unet.onnx").symlink_to(outside)
    refused(bundle, f"stage unet target onnx file 'unet.onnx' points outside the bundle (it resolves to {outside})")


def test_file_not_in_the_hashed_table_is_refused(bundle):
    shutil.copyfile(bundle / "unet.onnx", bundle / "other.onnx")
    edit_manifest(bundle, lambda m: unet_entry(m).update(file="other.onnx"))
    refused(bundle, "stage unet target onnx file 'other.onnx' is not in the manifest's hashed files table")


def test_extra_and_chunk_files_are_checked(bundle):
    edit_manifest(bundle, lambda m: unet_entry(m).update(extra_files=["../unet.onnx.data"]))
    refused(bundle, "stage unet target onnx extra file '../unet.onnx.data' points outside the bundle")
    chunk = {"name": "unet.chunk0", "file": "/tmp/c0.onnx", "io": {"inputs": [], "outputs": []}, "extra_files": []}
    edit_manifest(bundle, lambda m: unet_entry(m).update(extra_files=[], chunks=[chunk]))
    with pytest.raises(BundleError, match=r"^stage unet target onnx chunk unet.chunk0 file '/tmp/c0.onnx' is an absolute path"):
        verify_bundle(bundle)


def test_tokenizer_directory_outside_the_bundle_is_refused(bundle):
    shutil.copytree(bundle / "tokenizer", bundle.parent / "tok")
    edit_manifest(bundle, lambda m: m["tokenizer"].update(directory="../tok"))
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert str(err.value) == "tokenizer directory '../tok' points outside the bundle"
    # The runtime's own path to the tokenizer (stage files are fine here): the same refusal.
    with pytest.raises(BundleError) as err:
        RuntimePipeline.from_bundle(bundle, "onnx", verify=False)
    assert str(err.value) == "tokenizer directory '../tok' points outside the bundle"


def test_tokenizer_directory_symlinked_outside_is_refused(bundle):
    outside = bundle.parent / "tok"
    shutil.move(bundle / "tokenizer", outside)
    (bundle / "tokenizer").symlink_to(outside, target_is_directory=True)
    edit_manifest(bundle, lambda m: None, rehash=True)  # the table lists tokenizer/* with the right hashes
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert str(err.value) == f"tokenizer directory 'tokenizer' points outside the bundle (it resolves to {outside})"


def test_calibration_and_files_table_paths_are_checked(bundle):
    edit_manifest(bundle, lambda m: m.update(quantization={"calibration": {"files": ["../calibration/unet.npz"]}}))
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert str(err.value) == "calibration file '../calibration/unet.npz' points outside the bundle"
    edit_manifest(bundle, lambda m: (m.pop("quantization"), m["files"].update({"../stray.bin": {"bytes": 1, "sha256": "0"}})))
    with pytest.raises(BundleError) as err:
        verify_bundle(bundle)
    assert str(err.value) == "files table entry '../stray.bin' points outside the bundle"
