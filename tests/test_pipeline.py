"""The reference pipeline on the tiny default: shapes, seeding, frame 0 clean, FSP, errors, CLI."""

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from i2v_adapter.generate import main as generate_main
from i2v_adapter.pipeline import I2VPipeline, with_fsp
from i2v_core.media import make_test_card

PROMPT = "a red ball rolls to the right"


@pytest.fixture(scope="module")
def pipe():
    from i2v_core.config import get_preset

    return I2VPipeline.from_preset(get_preset("tiny"))


@pytest.fixture(scope="module")
def image():
    return make_test_card(128, 128)


def test_generates_uint8_frames_deterministically(pipe, image):
    a = pipe(image, PROMPT, num_inference_steps=3, seed=0, progress=False)
    b = pipe(image, PROMPT, num_inference_steps=3, seed=0, progress=False)
    c = pipe(image, PROMPT, num_inference_steps=3, seed=1, progress=False)
    assert a.frames.shape == (8, 128, 128, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)
    assert len(a.timesteps) == 3


@torch.no_grad()
def test_frame_zero_stays_the_clean_image_latent(pipe, image):
    out = pipe(image, PROMPT, num_inference_steps=2, progress=False)
    first = pipe.run_stage("vae_encoder", torch.from_numpy(np.ascontiguousarray(
        (image.astype(np.float32) / 127.5 - 1).transpose(2, 0, 1)[None])))
    assert torch.equal(out.latents[:, :, 0], first)


def test_fsp_strength_and_disable(pipe, image):
    weak = with_fsp(pipe.config.fsp, strength=0.6)
    out = pipe(image, PROMPT, num_inference_steps=5, fsp=weak, progress=False)
    assert len(out.timesteps) == 3
    off = pipe(image, PROMPT, num_inference_steps=2, fsp=with_fsp(pipe.config.fsp, enabled=False), progress=False)
    on = pipe(image, PROMPT, num_inference_steps=2, progress=False)
    assert not np.array_equal(off.frames, on.frames)


def test_long_prompt_is_truncated_with_a_warning(pipe, image, caplog):
    long_prompt = " ".join(["a red ball rolls to the right over green grass"] * 12)
    with caplog.at_level(logging.WARNING):
        out = pipe(image, long_prompt, num_inference_steps=1, progress=False)
    assert out.frames.shape[0] == 8
    assert any("truncat" in r.getMessage() for r in caplog.records)


def test_bad_image_array_is_refused(pipe):
    with pytest.raises(ValueError, match=r"expected an RGB image array of shape \(128, 128, 3\) uint8, got \(64, 64, 3\) uint8"):
        pipe(np.zeros((64, 64, 3), np.uint8), PROMPT, progress=False)
    with pytest.raises(ValueError, match="float32"):
        pipe(np.zeros((128, 128, 3), np.float32), PROMPT, progress=False)


def test_too_many_frames_is_refused(tiny_cfg):
    with pytest.raises(ValueError, match=r"num_frames must be in \[1, 24\].*got 32"):
        tiny_cfg.with_overrides(num_frames=32)


def test_generate_cli_writes_video_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--steps", "2", "--quiet"]
    assert generate_main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"video.mp4", "video.gif", "input.png", "generation.json"}
    assert (out / "video.mp4").stat().st_size > 1000
    record = json.loads((out / "generation.json").read_text())
    assert record["frames"] == [8, 128, 128, 3] and record["steps"] == 2
    assert generate_main(argv) == 2
    assert "exists" in capsys.readouterr().err
    assert generate_main(argv + ["--overwrite"]) == 0


def test_generate_cli_overwrite_keeps_a_user_folder_and_the_input(tmp_path, capsys):
    user = tmp_path / "holiday"
    user.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(user / "photo.png")
    # --overwrite onto a folder the project did not write: refused, the user's file kept.
    assert generate_main(["--out", str(user), "--steps", "1", "--overwrite", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"error: refusing to overwrite {user}: --overwrite replaces only a generation folder this project wrote "
        "(generation.json) or an empty folder, and this folder holds photo.png (no generation.json); nothing was deleted\n"
    )
    # An output folder holding its own input image would delete it when replaced.
    assert generate_main(["--out", str(user), "--image", str(user / "photo.png"), "--steps", "1", "--overwrite", "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {user} contains the input --image {user / 'photo.png'}")
    assert [p.name for p in user.iterdir()] == ["photo.png"]


@pytest.mark.parametrize("changes, message", [
    (dict(num_inference_steps=0), "expected num_inference_steps >= 1, got 0"),
    (dict(guidance_scale=float("nan")), "expected guidance_scale to be a finite number, got nan"),
    (dict(guidance_scale=float("inf")), "expected guidance_scale to be a finite number, got inf"),
    (dict(seed=-1), "expected seed in [0, 4294967295], got -1"),
    (dict(num_inference_steps=2.5), "expected num_inference_steps to be an integer, got 2.5"),
])
def test_pipeline_refuses_bad_numbers_by_name(pipe, image, changes, message):
    with pytest.raises(ValueError) as err:
        pipe(image, PROMPT, progress=False, **changes)
    assert str(err.value) == message


@pytest.mark.parametrize("flag, value, message", [
    ("--steps", "0", "expected --steps >= 1, got 0"),
    ("--guidance", "nan", "expected --guidance to be a finite number, got nan"),
    ("--guidance", "inf", "expected --guidance to be a finite number, got inf"),
    ("--fps", "0", "expected --fps >= 1, got 0"),
    ("--seed", "-1", "expected --seed in [0, 4294967295], got -1"),
])
def test_generate_cli_numbers_name_the_flag(tmp_path, capsys, flag, value, message):
    assert generate_main(["--out", str(tmp_path / "x"), f"{flag}={value}", "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_generate_cli_shares_the_runtime_flags(tmp_path, capsys, caplog):
    """--test-card (the default; exclusive with --image) and the prompt-length policy of runtime_py.generate."""
    out = tmp_path / "card"
    assert generate_main(["--out", str(out), "--test-card", "--steps", "1", "--quiet"]) == 0
    assert json.loads((out / "generation.json").read_text())["image"] == "built-in test card"
    with pytest.raises(SystemExit) as exit_:
        generate_main(["--out", str(tmp_path / "both"), "--test-card", "--image", "x.png"])
    assert exit_.value.code == 2 and "argument --image: not allowed with argument --test-card" in capsys.readouterr().err

    long_prompt = " ".join(["moves to the right"] * 20)
    assert generate_main(["--out", str(tmp_path / "long"), "--prompt", long_prompt, "--steps", "1", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        "error: prompt is 80 tokens, the text encoder takes at most 75 (77 with start and end tokens); "
        "shorten it or pass --truncate-prompt to cut it with a warning\n"
    )
    assert not (tmp_path / "long").exists()
    with caplog.at_level("WARNING", logger="i2v_core.tokenizer"):
        argv = ["--out", str(tmp_path / "cut"), "--prompt", long_prompt, "--truncate-prompt", "--steps", "1", "--quiet"]
        assert generate_main(argv) == 0
    assert any("prompt is 80 tokens, truncated to 75" in r.getMessage() for r in caplog.records)


def test_generate_cli_reports_missing_image(tmp_path, capsys):
    assert generate_main(["--out", str(tmp_path / "x"), "--image", str(tmp_path / "nope.png"), "--quiet"]) == 2
    assert "nope.png" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_pipeline_with_content_adapter(tiny_cfg, image):
    from i2v_core.config import tiny_image_encoder

    pipe_ip = I2VPipeline.from_preset(tiny_cfg.with_overrides(image_encoder=tiny_image_encoder()))
    assert "image_encoder" in pipe_ip.stages
    out = pipe_ip(image, PROMPT, num_inference_steps=2, progress=False)
    assert out.frames.shape == (8, 128, 128, 3)


def test_explicit_noise_and_mask_replace_the_generator(pipe, image):
    shape = (1, 4, 8, 16, 16)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    mask = (torch.rand(shape, generator=torch.Generator().manual_seed(6)) < 0.5).float()
    a = pipe(image, PROMPT, num_inference_steps=2, seed=0, noise=noise, mask=mask, progress=False)
    b = pipe(image, PROMPT, num_inference_steps=2, seed=123, noise=noise, mask=mask, progress=False)
    assert np.array_equal(a.frames, b.frames)
