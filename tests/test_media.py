"""Image input, video and image output, atomic writes (`i2v_core.media`)."""

import errno
import logging
import os
import time

import numpy as np
import pytest
from PIL import Image

from i2v_core import media
from i2v_core.bundle import BUNDLE_OUTPUT
from i2v_core.outputs import OutputKind, check_separate


def moving_gradient(frames: int = 8, height: int = 64, width: int = 64) -> np.ndarray:
    """`(F, H, W, 3)` uint8: smooth colour waves that drift right by 3 px a frame."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = []
    for t in range(frames):
        phase = 2 * np.pi * (xx + 3 * t) / width
        rgb = np.stack([0.5 + 0.35 * np.sin(phase), 0.2 + 0.6 * yy / height, 0.5 + 0.35 * np.cos(phase)], -1)
        out.append(np.round(rgb * 255))
    return np.stack(out).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def palette_frames(frames: int = 6, size: int = 32) -> np.ndarray:
    """`(F, size, size, 3)` uint8 in four flat colours, a red square moving one step a frame."""
    out = np.zeros((frames, size, size, 3), np.uint8)
    out[:, :, : size // 2] = (0, 0, 255)
    out[:, :, size // 2 :] = (0, 255, 0)
    for t in range(frames):
        out[t, 4:12, 2 + 3 * t : 10 + 3 * t] = (255, 0, 0)
        out[t, -3:, -3:] = (255, 255, 255)
    return out


KIND = OutputKind("test output", "marker.json")


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- video -------------------------------------------------------------------------------------------


def test_mp4_round_trip(tmp_path):
    frames = moving_gradient()
    path = media.write_video(frames, tmp_path / "clip.mp4", fps=8)
    assert path == tmp_path / "clip.mp4"
    assert listing(tmp_path) == ["clip.mp4"]  # no temporary file left next to it
    back = media.read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert psnr(back, frames) > 30.0


def test_gif_round_trip_is_exact_for_few_colours(tmp_path):
    frames = palette_frames()
    path = media.write_video(frames, tmp_path / "clip.gif", fps=10)
    np.testing.assert_array_equal(media.read_video(path), frames)
    with Image.open(path) as img:
        assert img.info["loop"] == 0
        assert img.info["duration"] == 100
        assert img.n_frames == len(frames)


def test_gif_merges_repeated_frames_but_keeps_timing(tmp_path):
    frames = palette_frames(4)[[0, 1, 1, 2]]
    path = media.write_video(frames, tmp_path / "clip.gif", fps=10)
    back = media.read_video(path)
    np.testing.assert_array_equal(back, frames[[0, 1, 3]])
    with Image.open(path) as img:
        durations = []
        for i in range(img.n_frames):
            img.seek(i)
            durations.append(img.info["duration"])
    assert durations == [100, 200, 100]


@pytest.mark.parametrize("height,width", [(63, 65), (33, 32), (1, 1)])
def test_odd_sizes(tmp_path, height, width):
    frames = moving_gradient(4, height, width)
    frames[:, 0, 0, 0] = np.arange(4) * 40  # keep 1x1 frames distinct (GIF merges repeats)
    gif = media.read_video(media.write_video(frames, tmp_path / "odd.gif"))
    assert gif.shape == frames.shape
    mp4 = media.read_video(media.write_video(frames, tmp_path / "odd.mp4"))
    # yuv420p: padded up to even sizes by repeating the last row / column.
    assert mp4.shape == (4, height + height % 2, width + width % 2, 3)
    if height > 1:
        assert psnr(mp4[:, :height, :width], frames) > 30.0


def test_write_video_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "clip.mp4"
    media.write_video(moving_gradient(8), path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        media.write_video(moving_gradient(3), path)
    assert path.read_bytes() == before
    media.write_video(moving_gradient(3), path, overwrite=True)
    assert media.read_video(path).shape[0] == 3
    assert listing(tmp_path) == ["clip.mp4"]


def test_write_video_rejects_bad_frames_with_shapes_in_message(tmp_path):
    bad = np.zeros((8, 64, 64), np.float32)
    with pytest.raises(ValueError) as err:
        media.write_video(bad, tmp_path / "clip.mp4")
    assert str(err.value) == "expected frames of shape (F, H, W, 3) uint8, got (8, 64, 64) float32"
    with pytest.raises(ValueError, match=r"got \(2, 8, 8, 3\) int64"):
        media.write_video(np.zeros((2, 8, 8, 3), np.int64), tmp_path / "clip.gif")
    with pytest.raises(ValueError, match="at least one frame"):
        media.write_video(np.zeros((0, 8, 8, 3), np.uint8), tmp_path / "clip.gif")
    assert listing(tmp_path) == []


def test_write_video_rejects_unknown_suffix_and_bad_settings(tmp_path):
    frames = moving_gradient(2, 16, 16)
    with pytest.raises(ValueError, match=r"unsupported video suffix '\.avi'.*expected one of \.mp4, \.gif"):
        media.write_video(frames, tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="expected fps to be a positive integer, got 0"):
        media.write_video(frames, tmp_path / "clip.gif", fps=0)
    with pytest.raises(ValueError, match=r"expected crf to be an integer in \[0, 51\], got 60"):
        media.write_video(frames, tmp_path / "clip.mp4", crf=60)
    assert listing(tmp_path) == []


def test_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_writer(frames, path, fps):
        path.write_bytes(b"GIF89a half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(media, "_write_gif", broken_writer)
    with pytest.raises(RuntimeError, match="disk full"):
        media.write_video(moving_gradient(2, 16, 16), tmp_path / "clip.gif")
    assert listing(tmp_path) == []


def test_read_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="video not found"):
        media.read_video(tmp_path / "nope.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="could not decode .*junk.mp4 as a video"):
        media.read_video(tmp_path / "junk.mp4")
    (tmp_path / "junk.gif").write_bytes(b"not a gif")
    with pytest.raises(ValueError, match="could not decode .*junk.gif as a GIF"):
        media.read_video(tmp_path / "junk.gif")


# --- atomic writes ----------------------------------------------------------------------------------


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_output_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "report.json"
    with media.atomic_output_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".report.json.")
        assert tmp.suffix == ".json" and tmp.exists() and not target.exists()
        tmp.write_text("{}")
    assert target.read_text() == "{}"
    assert listing(target.parent) == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_atomic_output_path_cleans_up_on_error_and_refuses_existing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(KeyError):
        with media.atomic_output_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise KeyError("boom")
    assert listing(tmp_path) == []

    media.atomic_write_bytes(target, b"first")
    ran = False
    with pytest.raises(FileExistsError, match="out.bin"):
        with media.atomic_output_path(target):
            ran = True
    assert not ran  # refused before any work was done
    assert media.atomic_write_bytes(target, b"second", overwrite=True) == target
    assert target.read_bytes() == b"second"
    with pytest.raises(IsADirectoryError, match="found a directory"):
        media.atomic_write_bytes(tmp_path, b"x", overwrite=True)
    assert listing(tmp_path) == ["out.bin"]


def test_atomic_output_dir(tmp_path):
    target = tmp_path / "bundle"
    with media.atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "b.txt").write_text("two")
        assert not target.exists()
    assert (target / "nested" / "b.txt").read_text() == "two"

    with pytest.raises(FileExistsError, match="already exists"):
        with media.atomic_output_dir(target):
            pass
    (target / "marker.json").write_text("{}")  # now an output of KIND: --overwrite may replace it
    with pytest.raises(RuntimeError):
        with media.atomic_output_dir(target, overwrite=True, kind=KIND) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("export failed")
    assert listing(target) == ["a.txt", "marker.json", "nested"]  # untouched by the failed overwrite

    with media.atomic_output_dir(target, overwrite=True, kind=KIND) as tmp:
        (tmp / "new.txt").write_text("new")
    assert listing(target) == ["new.txt"]
    assert listing(tmp_path) == ["bundle"]

    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="to be a directory"):
        with media.atomic_output_dir(tmp_path / "file", overwrite=True):
            pass


def test_full_disk_while_writing_names_the_output_and_leaves_nothing(tmp_path):
    """ENOSPC from a write (which names no path) or about a temporary file: the error names the
    output, and no temporary folder or file is left."""
    target = tmp_path / "bundle"
    with pytest.raises(OSError) as err:
        with media.atomic_output_dir(target) as tmp:
            (tmp / "unet.onnx").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (err.value.errno, err.value.filename) == (errno.ENOSPC, str(target))
    with pytest.raises(PermissionError) as err:
        with media.atomic_output_dir(target) as tmp:
            raise OSError(errno.EACCES, "Permission denied", str(tmp / "tokenizer" / "vocab.json"))
    assert err.value.filename == str(target / "tokenizer" / "vocab.json")
    with pytest.raises(OSError) as err:
        with media.atomic_output_path(tmp_path / "video.mp4"):
            raise OSError(errno.EROFS, "Read-only file system")
    assert err.value.filename == str(tmp_path / "video.mp4")
    source = tmp_path / "input.png"
    with pytest.raises(PermissionError) as err:  # about an input: named as it is
        with media.atomic_output_dir(target):
            raise PermissionError(errno.EACCES, "Permission denied", str(source))
    assert err.value.filename == str(source)
    assert listing(tmp_path) == []


def _aged(folder, hours: float):
    then = time.time() - hours * 3600
    os.utime(folder, (then, then))
    return folder


def test_stale_temporary_folders_are_removed_at_the_next_run(tmp_path, caplog):
    """Only `.NAME.<8 hex>.tmp` folders over an hour old and held by no writer; nothing else."""
    stale = tmp_path / ".bundle.1a2b3c4d.tmp"
    stale.mkdir()
    (stale / "unet.onnx").write_bytes(b"half")
    _aged(stale, 2)
    fresh = tmp_path / ".bundle.0000abcd.tmp"
    fresh.mkdir()
    lookalikes = [".bundle.1a2b3c4d.tmp.keep", ".bundle.1A2B3C4D.tmp", ".bundle.1a2b3c.tmp", "bundle.1a2b3c4d.tmp",
                  ".bundle.1a2b3c4d.old"]
    for name in lookalikes:
        (tmp_path / name).mkdir()
        _aged(tmp_path / name, 2)
    (tmp_path / ".file.1a2b3c4d.tmp").write_text("a file, not a folder")
    _aged(tmp_path / ".file.1a2b3c4d.tmp", 2)
    held = tmp_path / ".other.5e6f7a8b.tmp"
    held.mkdir()
    _aged(held, 2)
    lock = media._hold(held)  # a writer in another run still works there
    try:
        with caplog.at_level(logging.INFO, logger="i2v_core.media"):
            with media.atomic_output_dir(tmp_path / "new") as tmp:
                (tmp / "x").write_text("x")
    finally:
        os.close(lock)
    assert listing(tmp_path) == sorted(
        [*lookalikes, ".bundle.0000abcd.tmp", ".file.1a2b3c4d.tmp", ".other.5e6f7a8b.tmp", "new"]
    )
    assert f"removed 1 stale temporary folders of interrupted runs: {stale}" in caplog.text


def test_stale_temporary_folder_is_named_where_it_cannot_be_checked(tmp_path, monkeypatch, caplog):
    stale = tmp_path / ".bundle.1a2b3c4d.tmp"
    stale.mkdir()
    _aged(stale, 3)
    monkeypatch.setattr(media, "_lock", lambda fd, blocking: None)  # no locks here (e.g. Windows)
    with caplog.at_level(logging.WARNING, logger="i2v_core.media"):
        assert media.sweep_stale_temp_dirs(tmp_path) == []
    assert stale.is_dir()
    assert caplog.messages == [
        "stale temporary folders of interrupted runs, over 60 min old (remove them if no run is writing there): "
        f"{stale}"
    ]


def test_overwrite_replaces_only_our_output_or_an_empty_folder(tmp_path):
    """A user's folder is never deleted: one error naming it and what it holds, every file kept."""
    user = tmp_path / "photos"
    user.mkdir()
    (user / "holiday.jpg").write_bytes(b"precious")
    expected = (
        f"refusing to overwrite {user}: --overwrite replaces only a bundle this project wrote (manifest.json with "
        "created_by 'i2v-adapter-mobile ...') or an empty folder, and this folder holds holiday.jpg (no manifest.json); "
        "nothing was deleted"
    )
    for check in (
        lambda: media.check_output_dir(user, overwrite=True, kind=BUNDLE_OUTPUT),
        lambda: media.atomic_output_dir(user, overwrite=True, kind=BUNDLE_OUTPUT).__enter__(),
    ):
        with pytest.raises(FileExistsError) as err:
            check()
        assert str(err.value) == expected
        assert listing(user) == ["holiday.jpg"] and (user / "holiday.jpg").read_bytes() == b"precious"
    assert listing(tmp_path) == ["photos"]  # no temporary folder left behind

    # A manifest.json someone else wrote is not ours either; nor is any folder without a kind.
    (user / "manifest.json").write_text('{"created_by": "another tool"}')
    with pytest.raises(FileExistsError, match=r"holds holiday.jpg, manifest.json \(manifest.json has created_by 'another tool'\)"):
        media.check_output_dir(user, overwrite=True, kind=BUNDLE_OUTPUT)
    with pytest.raises(FileExistsError, match=r"replaces only an empty folder, .*\(no output kind given\)"):
        media.check_output_dir(user, overwrite=True)
    assert listing(user) == ["holiday.jpg", "manifest.json"]

    # Ours (created_by "i2v-adapter-mobile ..."), or empty: replaced.
    (user / "manifest.json").write_text('{"created_by": "i2v-adapter-mobile 0.1.0 export.build"}')
    with media.atomic_output_dir(user, overwrite=True, kind=BUNDLE_OUTPUT) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert listing(user) == ["manifest.json"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with media.atomic_output_dir(empty, overwrite=True) as tmp:
        (tmp / "x.txt").write_text("x")
    assert listing(empty) == ["x.txt"]


def test_outputs_keep_clear_of_their_inputs(tmp_path):
    bundle = tmp_path / "bundles" / "tiny"
    bundle.mkdir(parents=True)
    with pytest.raises(ValueError) as err:
        check_separate(bundle, {"--bundle": bundle})
    assert str(err.value) == f"--out {bundle} is the input --bundle {bundle}: expected an output apart from its input"
    with pytest.raises(ValueError) as err:
        check_separate(bundle.parent, {"--bundle": bundle})
    assert str(err.value) == (
        f"--out {bundle.parent} contains the input --bundle {bundle}: expected an output outside it "
        "(replacing the output would delete the input)"
    )
    with pytest.raises(ValueError) as err:
        check_separate(bundle / "q", {"--image": None, "--bundle": bundle})
    assert str(err.value) == (
        f"--out {bundle / 'q'} is inside the input --bundle {bundle}: expected an output outside it "
        "(writing the output would change the input)"
    )
    check_separate(tmp_path / "bundles" / "tiny-w8a16", {"--bundle": bundle})  # a sibling is fine


def test_write_image_round_trip_and_suffix(tmp_path):
    image = palette_frames(1)[0]
    path = media.write_image(image, tmp_path / "input.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    with pytest.raises(FileExistsError):
        media.write_image(image, path)
    with pytest.raises(ValueError, match=r"unsupported image suffix '\.xyz'"):
        media.write_image(image, tmp_path / "input.xyz")


# --- image input ------------------------------------------------------------------------------------


def test_load_image_missing_and_directory(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(media.ImageInputError) as err:
        media.load_image(missing, height=64, width=64)
    assert str(err.value) == f"input image not found: {missing}"
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(media.ImageInputError, match="input image is not a file"):
        media.load_image(tmp_path, height=64, width=64)


def test_load_image_corrupt_and_truncated(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not an image")
    with pytest.raises(media.ImageInputError, match=f"could not decode {junk} as an image: "):
        media.load_image(junk, height=64, width=64)

    good = tmp_path / "good.png"
    Image.fromarray(moving_gradient(1)[0]).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(media.ImageInputError, match="could not decode .*truncated.png as an image"):
        media.load_image(truncated, height=64, width=64)


@pytest.mark.parametrize(
    "mode,suffix,value",
    [("I;16", ".png", 40000), ("F", ".tiff", 0.5)],
)
def test_load_image_refuses_high_depth_modes(tmp_path, mode, suffix, value):
    path = tmp_path / f"deep{suffix}"
    Image.new(mode, (16, 16), value).save(path)
    with pytest.raises(media.ImageInputError) as err:
        media.load_image(path, height=16, width=16)
    assert str(err.value).startswith(f"unsupported image mode '{mode}' in {path}: expected one of RGB, RGBA, L, LA, P")


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :16] = (255, 0, 0, 0)  # fully transparent
    rgba[:, 16:32] = (255, 0, 0, 128)  # half-transparent red
    rgba[:, 32:] = (0, 0, 255, 255)  # opaque blue
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = media.load_image(path, height=64, width=64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out[:, :16] == 255).all()
    np.testing.assert_allclose(out[:, 16:32].reshape(-1, 3), [[255, 127, 127]] * (64 * 16), atol=1)
    assert (out[:, 32:] == (0, 0, 255)).all()


def test_grey_alpha_and_palette_transparency(tmp_path):
    la = Image.new("LA", (8, 8), (0, 0))  # transparent black -> white
    la.paste((0, 255), (0, 0, 4, 8))  # opaque black on the left
    out = media.image_to_array(la, height=8, width=8)
    assert (out[:, :4] == 0).all() and (out[:, 4:] == 255).all()

    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([10, 20, 30, 200, 0, 0] + [0] * 762)
    pal.paste(1, (0, 0, 8, 4))
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    out = media.load_image(path, height=8, width=8)
    assert (out[:4] == (200, 0, 0)).all() and (out[4:] == 255).all()


@pytest.mark.parametrize("transpose", [False, True])
def test_centre_crop_keeps_the_middle(tmp_path, transpose):
    # 200 wide x 100 tall: red | white | black | blue quarters. The 64x64 result must be the
    # middle 100x100 square (white | black), with no trace of red or blue.
    wide = np.zeros((100, 200, 3), np.uint8)
    wide[:, :50] = (255, 0, 0)
    wide[:, 50:100] = 255
    wide[:, 150:] = (0, 0, 255)
    image = wide.transpose(1, 0, 2).copy() if transpose else wide
    path = tmp_path / "layout.png"
    Image.fromarray(image).save(path)
    out = media.load_image(path, height=64, width=64).astype(int)
    out = out.transpose(1, 0, 2) if transpose else out
    assert np.abs(out[..., 0] - out[..., 2]).max() <= 1  # grey only: neither red nor blue survived
    assert (out[:, :29] >= 250).all() and (out[:, 35:] <= 5).all()


def test_non_square_target_and_upscale_warning(tmp_path, caplog):
    path = tmp_path / "small.png"
    Image.fromarray(moving_gradient(1, 20, 30)[0]).save(path)
    with caplog.at_level(logging.WARNING, logger="i2v_core.media"):
        out = media.load_image(path, height=48, width=96)
    assert out.shape == (48, 96, 3)
    assert "upscaling its 30x15 centre crop to 96x48" in caplog.text


def test_exif_orientation_and_cmyk(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = (255, 0, 0)
    image[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate 90 degrees clockwise: the left half ends up on top
    path = tmp_path / "rotated.png"
    Image.fromarray(image).save(path, exif=exif)
    out = media.load_image(path, height=40, width=20)
    assert (out[:18] == (255, 0, 0)).all() and (out[22:] == (0, 0, 255)).all()

    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # full magenta + yellow = red
    assert (media.image_to_array(cmyk, height=8, width=8) == (255, 0, 0)).all()


def test_image_to_array_argument_errors():
    with pytest.raises(TypeError, match="expected a PIL.Image.Image, got ndarray"):
        media.image_to_array(np.zeros((8, 8, 3), np.uint8), height=8, width=8)
    with pytest.raises(ValueError, match="expected height to be a positive integer, got 0"):
        media.image_to_array(Image.new("RGB", (8, 8)), height=0, width=8)
