"""`python -m runtime_py.generate` and its pieces: MP4 frame count, size and audio stream (read back
with PyAV), caption pixels inside and only inside its time window, music decoding and synthesis,
and one clear error with nothing written at --out for each kind of bad input, found before any
model runs."""

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import copy_bundle
from PIL import Image

from i2v_core import media
from runtime_py import audio, generate
from runtime_py.overlay import TextOverlay, apply_overlay
from runtime_py.runners import OnnxRunner

PROMPT = "a red ball rolls to the right"
FRAMES, SIZE, FPS = 8, 128, 8  # the tiny preset: 1 s of video


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    return audio.synthesise_track(tmp_path_factory.mktemp("music") / "track.wav", 3.0)


def options(bundle, out, **changes) -> generate.GenerateOptions:
    base = dict(bundle=bundle, out=out, prompt=PROMPT, num_inference_steps=2, progress=False)
    return generate.GenerateOptions(**{**base, **changes})


def read_streams(path: Path) -> dict:
    with av.open(str(path)) as container:
        info = {s.type: s for s in container.streams}
        result = {"types": sorted(info)}
        if "audio" in info:
            a = info["audio"]
            result["audio"] = (a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)
            result["audio_seconds"] = sum(f.samples for f in container.decode(audio=0)) / a.codec_context.sample_rate
    frames = media.read_video(path)
    result["frames"] = frames.shape
    return result


# --- overlay ------------------------------------------------------------------------------------


def text_pixels(frames: np.ndarray, base: np.ndarray) -> np.ndarray:
    """`(F,)` number of pixels that the caption changed by more than 8 levels."""
    return (np.abs(frames.astype(int) - base.astype(int)).max(axis=-1) > 8).sum(axis=(1, 2))


@pytest.mark.parametrize("position,rows", [("top", slice(0, 64)), ("bottom", slice(64, 128))])
def test_caption_only_inside_its_window_and_at_its_position(position, rows):
    base = np.full((FRAMES, SIZE, SIZE, 3), 90, np.uint8)
    caption = TextOverlay("HELLO", position=position, start=0.25, end=0.75, fade=0.1)
    out = apply_overlay(base, caption, FPS)
    counts = text_pixels(out, base)
    # frame i is shown at (i + 0.5) / 8 s: frames 2..5 fall in [0.25, 0.75)
    assert counts[[0, 1, 6, 7]].tolist() == [0, 0, 0, 0]
    assert (counts[2:6] > 100).all(), counts
    other = slice(64, 128) if rows.start == 0 else slice(0, 64)
    assert text_pixels(out[:, rows], base[:, rows])[3] > 100 and text_pixels(out[:, other], base[:, other])[3] == 0
    white = (out[3] > 240).all(axis=-1).sum()
    assert white > 20  # the text itself is white (12 px glyphs), its outline dark
    assert (out[3] < 40).all(axis=-1).sum() > 20


def test_caption_fades_in_and_out():
    base = np.zeros((FRAMES, SIZE, SIZE, 3), np.uint8)
    caption = TextOverlay("FADE", start=0.0, end=1.0, fade=0.5)
    opacity = caption.opacity(FRAMES, FPS)
    np.testing.assert_allclose(opacity, [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125])
    peaks = apply_overlay(base, caption, FPS).max(axis=(1, 2, 3))
    assert peaks[0] < peaks[1] < peaks[3] and peaks[3] == peaks[4] and peaks[7] < peaks[6]


def test_long_caption_wraps_and_fits():
    base = np.zeros((1, 64, 64, 3), np.uint8)
    out = apply_overlay(base, TextOverlay("a much longer caption than fits on one line", size=14), 1)
    cols = np.flatnonzero(out[0].max(axis=(0, 2)) > 0)
    rows = np.flatnonzero(out[0].max(axis=(1, 2)) > 0)
    assert cols.min() > 0 and cols.max() < 63 and rows.min() > 0 and rows.max() < 63


def test_caption_errors_name_the_field():
    with pytest.raises(ValueError, match="text starts at 2.0 s, but the video lasts 1 s"):
        TextOverlay("x", start=2.0).verify(1.0)
    with pytest.raises(ValueError, match="unknown text position 'left': expected one of top, center, bottom"):
        TextOverlay("x", position="left").verify(1.0)
    with pytest.raises(ValueError, match=r"expected text end after its start \(0.5 s\), got 0.2 s"):
        TextOverlay("x", start=0.5, end=0.2).verify(1.0)


# --- music --------------------------------------------------------------------------------------


def test_music_is_resampled_trimmed_and_faded(music, tmp_path):
    track = audio.load_music(music, 1.0, sample_rate=48000)
    assert track.samples.shape == (2, 48000) and track.samples.dtype == np.float32 and track.sample_rate == 48000
    assert np.abs(track.samples[:, :1000]).max() > 0.05
    assert np.abs(track.samples[:, -48:]).max() < 0.01  # faded to silence at the end
    short = audio.load_music(audio.synthesise_track(tmp_path / "short.wav", 0.5), 1.0)
    assert short.samples.shape == (2, 22050)  # kept whole: the video ends in silence


def test_audio_cli_writes_a_wav_once(tmp_path, capsys):
    out = tmp_path / "music.wav"
    assert audio.main(["--out", str(out), "--seconds", "1.5", "--sample-rate", "48000"]) == 0
    track = audio.load_music(out, 10.0, sample_rate=48000, fade=0.0)
    assert track.samples.shape == (2, 72000) and 0.3 < np.abs(track.samples).max() <= 0.41
    assert audio.main(["--out", str(out)]) == 2 and "output already exists" in capsys.readouterr().err


def test_undecodable_music_is_one_clear_error(tmp_path):
    bad = tmp_path / "song.mp3"
    bad.write_bytes(b"this is not an mp3" * 50)
    with pytest.raises(audio.MusicError, match=r"could not decode .*song.mp3 as audio"):
        audio.load_music(bad, 1.0)
    with pytest.raises(audio.MusicError, match="music file not found"):
        audio.load_music(tmp_path / "missing.wav", 1.0)
    with pytest.raises(audio.MusicError, match="expected an audio stream in .*silent.mp4, found none"):
        silent = media.write_video(np.zeros((2, 16, 16, 3), np.uint8), tmp_path / "silent.mp4")
        audio.load_music(silent, 1.0)


# --- generate end to end ------------------------------------------------------------------------


def test_generate_mp4_with_caption_music_and_gif(bundle, music, tmp_path):
    caption = TextOverlay("HELLO", start=0.25, end=0.75)
    out = tmp_path / "video.mp4"
    result = generate.generate(options(bundle, out, overlay=caption, music=music, gif=True))
    plain = generate.generate(options(bundle, tmp_path / "plain.mp4"))
    assert result.paths == [out, tmp_path / "video.gif"]
    assert result.frames.shape == (FRAMES, SIZE, SIZE, 3)
    counts = text_pixels(result.frames, plain.frames)  # same seed: identical but for the caption
    assert counts[[0, 1, 6, 7]].tolist() == [0, 0, 0, 0] and (counts[2:6] > 50).all(), counts

    streams = read_streams(out)
    assert streams["types"] == ["audio", "video"]
    assert streams["frames"] == (FRAMES, SIZE, SIZE, 3)
    assert streams["audio"] == ("aac", 44100, 2)
    assert streams["audio_seconds"] == pytest.approx(FRAMES / FPS, abs=0.05)
    assert read_streams(tmp_path / "plain.mp4")["types"] == ["video"]
    assert media.read_video(tmp_path / "video.gif").shape[1:] == (SIZE, SIZE, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.mp4", "video.gif", "video.mp4"]  # no temp files


def test_generate_cli_smoke_tflite(bundle, music, tmp_path):
    out = tmp_path / "cli.mp4"
    argv = ["--bundle", str(bundle), "--test-card", "--prompt", PROMPT, "--out", str(out), "--backend", "tflite",
            "--steps", "2", "--scheduler", "euler", "--text", "Hi", "--text-position", "top", "--music", str(music),
            "--music-rate", "48000",
            "--quiet", "--threads", "1"]
    assert generate.main(argv) == 0
    streams = read_streams(out)
    assert streams["frames"] == (FRAMES, SIZE, SIZE, 3) and streams["audio"] == ("aac", 48000, 2)
    assert generate.main(argv) == 2  # exists: refused without --overwrite
    assert generate.main([*argv, "--overwrite", "--no-color-match", "--no-fsp"]) == 0


def test_generate_reads_an_image_file(bundle, tmp_path):
    src = tmp_path / "in.jpg"
    Image.new("RGB", (300, 200), (200, 30, 30)).save(src)
    result = generate.generate(options(bundle, tmp_path / "v.mp4", image=src, color_match=False))
    assert result.frames.shape == (FRAMES, SIZE, SIZE, 3)


# --- bad input: one clear error, no model run, nothing at --out -----------------------------------


@pytest.fixture
def no_model_runs(monkeypatch):
    """Fails the test if a stage model is executed."""
    calls = []
    monkeypatch.setattr(OnnxRunner, "_execute", lambda self, spec, feeds: calls.append(spec.name))
    yield calls
    assert calls == [], f"models ran before the bad input was found: {calls}"


def make_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    if name == "grey16.png":
        Image.new("I;16", (32, 32), 40000).save(path)
    elif name == "garbage.png":
        path.write_bytes(b"\x89PNG not really")
    elif name == "song.m4a":
        path.write_bytes(b"\x00" * 4096)
    return path


BAD_INPUTS = {  # case: (option changes, files to make under tmp_path for them, expected message)
    "image mode": (dict(image="grey16.png"), r"unsupported image mode 'I;16' in .*grey16.png: expected one of RGB"),
    "unreadable image": (dict(image="garbage.png"), r"could not decode .*garbage.png as an image"),
    "missing image": (dict(image="nope.png"), r"input image not found: .*nope.png"),
    "music": (dict(music="song.m4a"), r"could not decode .*song.m4a as audio"),
    "long prompt": (dict(prompt=" ".join(["a red ball"] * 30)),
                    r"prompt is 90 tokens, the text encoder takes at most 75 .*--truncate-prompt"),
    "long negative": (dict(negative_prompt="blurry " * 80), r"prompt is 80 tokens"),
    "caption window": (dict(overlay=TextOverlay("late", start=3.0)), r"text starts at 3.0 s, but the video lasts 1 s"),
    "lcm steps": (dict(scheduler="lcm", num_inference_steps=60), r"expected num_inference_steps in \[1, 50\], got 60"),
    "fsp p": (dict(fsp_p=1.5), r"FSP mask_p must be in \[0, 1\], got 1.5"),
    "suffix": (dict(out="out/video.avi"), r"expected --out to end in .mp4, got 'video.avi'"),
    "zero steps": (dict(num_inference_steps=0), r"^expected num_inference_steps >= 1, got 0$"),
    "nan guidance": (dict(guidance_scale=float("nan")), r"^expected guidance_scale to be a finite number, got nan$"),
    "inf guidance": (dict(guidance_scale=float("inf")), r"^expected guidance_scale to be a finite number, got inf$"),
    "negative seed": (dict(seed=-1), r"^expected seed in \[0, 4294967295\], got -1$"),
    "zero fps": (dict(fps=0), r"^expected fps >= 1, got 0$"),
    "caption nan": (dict(overlay=TextOverlay("x", start=float("nan"))), r"expected text start to be a finite number of seconds, got nan"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_error_before_any_model(bundle, tmp_path, no_model_runs, case):
    changes, message = BAD_INPUTS[case]
    changes = {k: make_file(tmp_path, v) if k in ("image", "music", "out") else v for k, v in changes.items()}
    out = changes.pop("out", tmp_path / "out" / "video.mp4")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        generate.generate(options(bundle, out, gif=True, **changes))
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_non_font_is_refused_before_any_model(bundle, tmp_path, no_model_runs, capsys):
    """A --font that is not a font used to crash with a traceback after every model had run."""
    font = tmp_path / "font.ttf"
    font.write_bytes(b"not a font at all" * 20)
    out = tmp_path / "out" / "video.mp4"
    argv = ["--bundle", str(bundle), "--test-card", "--prompt", PROMPT, "--out", str(out), "--quiet",
            "--text", "Hello", "--font", str(font)]
    assert generate.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: font file {font} cannot be read as a font: expected a TrueType or OpenType file (.ttf, .otf) "
        "(broken file)\n"
    )
    assert not out.parent.exists()


def test_undecodable_music_is_refused_before_any_model(bundle, tmp_path, no_model_runs, capsys):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"this is not an mp3" * 50)
    out = tmp_path / "out" / "video.mp4"
    argv = ["--bundle", str(bundle), "--test-card", "--prompt", PROMPT, "--out", str(out), "--quiet", "--music", str(song)]
    assert generate.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: could not decode {song} as audio") and len(err.splitlines()) == 1, err
    assert not out.parent.exists()


@pytest.fixture(scope="module")
def unet_of_four_frames(tmp_path_factory):
    """unet.onnx and unet.tflite with the contract's input and output names but 4 frames, not 8."""
    import torch

    from export.converters import export_stage
    from i2v_core.config import get_preset
    from i2v_core.stages import stage_specs

    class SameNames(torch.nn.Module):
        def forward(self, sample, timestep, encoder_hidden_states):
            return sample * timestep + encoder_hidden_states.mean()  # (2, 4, 4, 16, 16), every input used

    spec = stage_specs(get_preset("tiny").with_overrides(num_frames=4))["unet"]
    assert spec.inputs[0].shape == (2, 4, 4, 16, 16)
    args = tuple(torch.from_numpy(v) for v in spec.sample_inputs(0).values())
    out = tmp_path_factory.mktemp("unet4")
    for target in ("onnx", "tflite"):
        export_stage(target, SameNames().eval(), spec, args, out, work_dir=out / "_work", progress=False)
    return out


def swap_unet(bundle: Path, dest: Path, source: Path) -> Path:
    """A copy of `bundle` whose unet files are `source`'s, with the manifest's hashes rewritten to match."""
    from i2v_core.bundle import bundle_files, file_record

    swapped = copy_bundle(bundle, dest)
    for suffix in (".onnx", ".tflite"):
        (swapped / f"unet{suffix}").write_bytes((source / f"unet{suffix}").read_bytes())
    manifest = json.loads((swapped / "manifest.json").read_text())
    manifest["files"] = {rel: file_record(swapped / rel) for rel in bundle_files(swapped)}
    (swapped / "manifest.json").write_text(json.dumps(manifest))
    return swapped


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_stage_file_of_another_shape_is_refused_before_any_model(bundle, unet_of_four_frames, tmp_path, backend,
                                                                 monkeypatch, capsys):
    """Same input names, another frame count: one line naming the stage, the file, the tensor, the
    expected and the found, at load time (it used to surface after the denoising loop, from XNNPACK)."""
    from runtime_py.pipeline import RuntimePipeline
    from runtime_py.runners import LiteRTRunner

    swapped = swap_unet(bundle, tmp_path / "bundle", unet_of_four_frames)
    suffix = {"onnx": ".onnx", "tflite": ".tflite"}[backend]
    expected = (
        f"stage unet file {swapped / ('unet' + suffix)} does not match the manifest's stage contract: input 'sample' "
        "expected (2, 4, 8, 16, 16) float32, the file declares (2, 4, 4, 16, 16) float32"
    )
    with pytest.raises(ValueError) as err:
        RuntimePipeline.from_bundle(swapped, backend)
    assert str(err.value) == expected
    calls = []
    for runner in (OnnxRunner, LiteRTRunner):
        monkeypatch.setattr(runner, "_execute", lambda self, spec, feeds: calls.append(spec.name))
    out = tmp_path / "out" / "video.mp4"
    argv = ["--bundle", str(swapped), "--test-card", "--prompt", PROMPT, "--out", str(out), "--quiet", "--backend", backend]
    assert generate.main(argv) == 2
    assert capsys.readouterr().err == f"error: {expected}\n"
    assert calls == [] and not out.parent.exists()


def test_output_inside_the_bundle_or_onto_an_input_is_refused(bundle, tmp_path, no_model_runs, capsys):
    song = tmp_path / "song.mp4"
    song.write_bytes(b"not overwritten")
    cases = [
        (bundle / "video.mp4", [], f"--out {bundle / 'video.mp4'} is inside the input --bundle {bundle}"),
        (song, ["--music", str(song)], f"--out {song} is the input --music {song}"),
    ]
    for out, extra, message in cases:
        argv = ["--bundle", str(bundle), "--test-card", "--prompt", "a ball", "--out", str(out), "--overwrite", "--quiet", *extra]
        assert generate.main(argv) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}: expected an output")
    assert song.read_bytes() == b"not overwritten" and not (bundle / "video.mp4").exists()


CLI_NUMBERS = {  # flag and value: the one error line, naming the flag
    ("--steps", "0"): "expected --steps >= 1, got 0",
    ("--guidance", "nan"): "expected --guidance to be a finite number, got nan",
    ("--guidance", "inf"): "expected --guidance to be a finite number, got inf",
    ("--guidance", "-1"): "expected --guidance >= 0, got -1",
    ("--fps", "0"): "expected --fps >= 1, got 0",
    ("--seed", "-1"): "expected --seed in [0, 4294967295], got -1",
    ("--seed", "4294967296"): "expected --seed in [0, 4294967295], got 4294967296",
}


@pytest.mark.parametrize("flag, value", list(CLI_NUMBERS))
def test_cli_numbers_name_the_flag(bundle, tmp_path, no_model_runs, capsys, flag, value):
    out = tmp_path / "video.mp4"
    argv = ["--bundle", str(bundle), "--test-card", "--prompt", PROMPT, "--out", str(out), "--quiet", f"{flag}={value}"]
    assert generate.main(argv) == 2
    assert capsys.readouterr().err == f"error: {CLI_NUMBERS[flag, value]}\n"
    assert not out.exists()


def test_backend_defaults_to_the_bundles_own_target(bundle, tmp_path, no_model_runs):
    """A TFLite-only bundle runs on LiteRT without --backend; a bundle with both keeps onnx."""
    from i2v_core.bundle import bundle_files, file_record
    from runtime_py.runners import LiteRTRunner

    only = copy_bundle(bundle, tmp_path / "tflite-only")
    manifest = json.loads((only / "manifest.json").read_text())
    for record in manifest["stages"].values():
        record["targets"].pop("onnx")
    for path in only.glob("*.onnx"):
        path.unlink()
    manifest["targets"] = ["tflite"]
    manifest["files"] = {rel: file_record(only / rel) for rel in bundle_files(only)}
    (only / "manifest.json").write_text(json.dumps(manifest))
    prep = generate.prepare(options(only, tmp_path / "v.mp4"))
    assert isinstance(prep.pipe.runner.runner, LiteRTRunner)
    assert isinstance(generate.prepare(options(bundle, tmp_path / "v.mp4")).pipe.runner.runner, OnnxRunner)
    with pytest.raises(ValueError, match=r"stage 'text_encoder' has no 'onnx' model \(targets: \['tflite'\]\)"):
        generate.prepare(options(only, tmp_path / "v.mp4", backend="onnx"))


def test_over_long_prompt_can_be_truncated_with_a_warning(bundle, tmp_path, caplog):
    long_prompt = " ".join(["a red ball"] * 30)
    with caplog.at_level("WARNING", logger="i2v_core.tokenizer"):
        result = generate.generate(options(bundle, tmp_path / "v.mp4", prompt=long_prompt, truncate_prompt=True))
    assert result.frames.shape == (FRAMES, SIZE, SIZE, 3)
    assert any("prompt is 90 tokens, truncated to 75" in r.getMessage() for r in caplog.records)


def break_bundle(bundle: Path, how: str) -> str:
    """Damage a copy of the bundle; return the error expected from loading it."""
    if how == "missing file":
        (bundle / "unet.onnx").unlink()
        return r"does not match its manifest: missing files \['unet.onnx'\]"
    if how == "corrupt file":
        data = bytearray((bundle / "vae_decoder.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bundle / "vae_decoder.onnx").write_bytes(bytes(data))
        return r"vae_decoder.onnx: sha256 mismatch: manifest has [0-9a-f]{64}, file has [0-9a-f]{64}"
    if how == "truncated file":
        (bundle / "text_encoder.tflite").write_bytes((bundle / "text_encoder.tflite").read_bytes()[:1000])
        return r"text_encoder.tflite: expected \d+ bytes \(manifest\), found 1000"
    if how == "hash mismatch":
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["files"]["unet.tflite"]["sha256"] = "0" * 64
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        return r"unet.tflite: sha256 mismatch: manifest has 0{64}"
    if how == "no manifest":
        (bundle / "manifest.json").unlink()
        return r"expected manifest.json in bundle .*, not found"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing file", "corrupt file", "truncated file", "hash mismatch", "no manifest"])
def test_broken_bundle_is_one_clear_error(bundle, tmp_path, how, capsys):
    broken = copy_bundle(bundle, tmp_path / "bundle")
    message = break_bundle(broken, how)
    out = tmp_path / "out" / "video.mp4"
    rc = generate.main(["--bundle", str(broken), "--test-card", "--prompt", PROMPT, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert not out.exists() and not out.parent.exists()


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_model_broken_before_hashing_is_named(bundle, tmp_path, backend, capsys):
    """A manifest written over a damaged model passes the sha256 check; the runtime's failure is still
    one error line naming the stage and the file: onnxruntime refuses it when the runner loads every
    file, LiteRT (whose flatbuffer loads and allocates) only when the stage runs."""
    from i2v_core.bundle import file_record

    broken = copy_bundle(bundle, tmp_path / "bundle")
    name = f"unet.{backend}"
    data = bytearray((broken / name).read_bytes())
    data[100:400] = bytes(300)
    (broken / name).write_bytes(bytes(data))
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"][name] = file_record(broken / name)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "video.mp4"
    rc = generate.main(["--bundle", str(broken), "--backend", backend, "--test-card", "--prompt", PROMPT,
                        "--out", str(out), "--steps", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    expected = {
        "onnx": f"error: stage unet file {broken / name} cannot be loaded by OnnxRunner: ",
        "tflite": f"error: stage unet ({broken / name}) failed in the runtime: ",
    }[backend]
    assert rc == 2 and len(err) == 1 and err[0].startswith(expected), err
    assert not out.exists()


def test_missing_bundle_directory(tmp_path, capsys):
    rc = generate.main(["--bundle", str(tmp_path / "nothing"), "--test-card", "--prompt", "x", "--out", str(tmp_path / "v.mp4")])
    assert rc == 2 and "expected a bundle directory, found nothing at" in capsys.readouterr().err


def test_failure_while_writing_leaves_nothing(bundle, tmp_path, monkeypatch):
    """The MP4 is complete before the GIF fails: neither is renamed into place."""
    real = media.write_video

    def failing(frames, path, **kwargs):
        if str(path).endswith(".gif"):
            raise OSError("disk full")
        return real(frames, path, **kwargs)

    monkeypatch.setattr(generate.media, "write_video", failing)
    with pytest.raises(OSError, match="disk full"):
        generate.generate(options(bundle, tmp_path / "v.mp4", gif=True))
    assert list(tmp_path.iterdir()) == []


def test_runtime_modules_import_no_torch():
    code = (
        "import sys\n"
        # evaluation.verify is not here: it compares against PyTorch, in the evaluation layer
        "import runtime_py.generate, runtime_py.overlay, runtime_py.audio, runtime_py.metrics, runtime_py.report\n"
        "print(','.join(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing runtime_py imported {out.stdout.strip()}"
