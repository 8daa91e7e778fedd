"""The ablation's held-out set and motion-direction check, and the trained-weights architecture guard."""

import json

import numpy as np
import pytest
import torch

from evaluation.ablation import (
    ERROR_TIMESTEPS,
    HELD_OUT_SEED,
    held_out_clips,
    held_out_set,
    markdown_table,
    motion_direction_ok,
    summarise,
)
from i2v_adapter.checkpoints import shipped
from i2v_adapter.model.components import build_components
from i2v_adapter.training.data import SyntheticClips
from i2v_core.config import get_preset


def test_direction_check_accepts_true_motion_and_rejects_the_opposite():
    clips = SyntheticClips(40, num_frames=8, height=128, width=128, seed=HELD_OUT_SEED)
    opposite = {"right": "left", "left": "right", "up": "down", "down": "up"}
    moving = [i for i in range(40) if clips.spec(i).motion in opposite][:6]
    assert len(moving) == 6
    for i in moving:
        frames, motion = clips[i][0], clips.spec(i).motion
        assert motion_direction_ok(frames, motion) is True, clips[i][1]
        assert motion_direction_ok(frames, opposite[motion]) is False, clips[i][1]
    still = np.repeat(clips[moving[0]][0][:1], 8, axis=0)  # (8, H, W, 3): no motion at all
    assert motion_direction_ok(still, "right") is False
    assert motion_direction_ok(clips[moving[0]][0], "grow") is None  # not a translation: not judged


def test_held_out_set_and_table():
    items = held_out_set(3, get_preset("tiny"))
    clips = SyntheticClips(3, num_frames=8, height=128, width=128, seed=HELD_OUT_SEED, captions="motion")
    assert [p for _, p, _ in items] == [clips[i][1] for i in range(3)]
    assert all(np.array_equal(img, clips[i][0][0]) for i, (img, _, _) in enumerate(items))
    rows = [dict(flow_score=1.0, warping_error=0.01, first_frame_ssim=0.5, first_frame_psnr_db=20.0, direction_ok=True),
            dict(flow_score=3.0, warping_error=0.03, first_frame_ssim=0.7, first_frame_psnr_db=22.0, direction_ok=None)]
    s = summarise(rows)
    assert s["flow_score"] == 2.0 and s["direction_accuracy"] == 1.0 and s["direction_judged"] == 1
    table = markdown_table({"adapter": s}, 2)
    assert "| adapter | 2.000 | 0.02000 | 0.600 | 21.00 | 1 of 1 |" in table
    half = summarise(rows + [dict(rows[0], direction_ok=False)])
    assert half["direction_judged"] == 2 and "| 1 of 2 |" in markdown_table({"adapter": half}, 3)  # a count, not a fraction


def test_weights_load_only_onto_their_architecture(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cfg = get_preset("tiny").with_overrides(num_frames=4)
    components = build_components(cfg)
    shipped.write_weights_folder(components, tmp_path / "tiny")
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path)
    assert shipped.has_shipped_weights("tiny") and shipped.uses_shipped_weights(cfg)
    assert shipped.uses_shipped_weights(get_preset("tiny"))  # frame count is not architecture
    record = json.loads((tmp_path / "tiny" / "preset.json").read_text())
    record["vae"]["norm_num_groups"] = 2
    (tmp_path / "tiny" / "preset.json").write_text(json.dumps(record))
    assert not shipped.uses_shipped_weights(cfg)  # trained for another VAE: never loaded onto this one
    assert not shipped.uses_shipped_weights(get_preset("mobile"))
    other = build_components(cfg.with_overrides(seed=5))
    shipped.load_shipped(other)  # explicit load: keys and shapes match, fp16 values upcast
    for (name, p), q in zip(components.unet.named_parameters(), other.unet.parameters()):
        assert torch.equal(p.detach().half().float(), q), name


def test_default_loads_shipped_weights_and_bundles_record_them(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    trained = build_components(cfg.with_overrides(seed=7))  # stands in for trained weights
    shipped.write_weights_folder(trained, tmp_path / "tiny")
    seeded = build_components(cfg)
    record_random = {"source": "embedded-default", "seed": 0}  # a bundle exported before weights shipped
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path)
    default = shipped.default_components(cfg)  # the shipped files, upcast from fp16
    w = dict(default.vae.named_parameters())["decoder.conv_out.weight"]
    assert torch.equal(w, dict(trained.vae.named_parameters())["decoder.conv_out.weight"].half().float())
    assert not torch.equal(w, dict(seeded.vae.named_parameters())["decoder.conv_out.weight"])
    record = {"source": "embedded-default", "seed": 0, "trained": shipped.shipped_record(cfg)}
    assert set(record["trained"]["sha256"]) == {f"{p}.safetensors" for p in shipped.PARTS}
    rebuilt = shipped.build_recorded(cfg, record)
    assert torch.equal(dict(rebuilt.vae.named_parameters())["decoder.conv_out.weight"], w)
    with pytest.raises(ValueError, match="exported from the tiny preset's seeded random weights, but .* trained weights"):
        shipped.build_recorded(cfg, record_random)
    (tmp_path / "tiny" / "adapter.safetensors").write_bytes(b"changed")
    with pytest.raises(ValueError, match="with other files: re-export the bundle"):
        shipped.build_recorded(cfg, record)
    rnd = shipped.build_recorded(cfg, {"source": "random", "seed": 0})
    assert torch.equal(dict(rnd.vae.named_parameters())["decoder.conv_out.weight"],
                       dict(seeded.vae.named_parameters())["decoder.conv_out.weight"])


@pytest.mark.slow
def test_ablation_cli_writes_every_row(tmp_path, capsys):
    from evaluation.ablation import VARIANTS, main

    torch.set_num_threads(1)
    assert main(["--count", "2", "--out", str(tmp_path / "abl"), "--quiet"]) == 0
    record = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert list(record["summary"]) == [*VARIANTS, "ground truth"] and record["count"] == 2
    truth = record["summary"]["ground truth"]
    assert truth["first_frame_psnr_db"] > 20.0 and truth["warping_error"] < 1e-3  # real clips: steady, close to frame 0
    assert all(len(rows) == 2 for rows in record["videos"].values())
    errors = record["denoising_error"]
    assert list(errors) == ["t2v", "adapter"] and list(errors["t2v"]) == [str(t) for t in ERROR_TIMESTEPS]
    assert all(v > 0 for e in errors.values() for v in e.values())
    for key in ("first_step_error", "first_step_error_noised_clip"):
        first = record[key]
        assert list(first) == ["t2v", "adapter"] and all(list(e) == ["901"] and e["901"] > 0 for e in first.values())
    assert record["first_step_error"] != record["first_step_error_noised_clip"]
    assert record["copy_first_frame_error"] > 0  # the shape moves (or grows, turns, recolours) in every clip
    moving = [r for r in record["videos"]["ground truth"] if r["direction_ok"] is not None]
    for key in ("caption_effect", "caption_effect_first_step"):
        effect = record[key]
        assert (list(effect) == ["as captioned", "opposite direction", "other axis", "no caption"]) if moving else effect == {}
    out = capsys.readouterr().out
    assert "| adapter+fsp |" in out and "| 950 |" in out and "| 901 |" in out
    assert main(["--count", "2", "--out", str(tmp_path / "abl"), "--quiet"]) == 2  # no overwrite without asking


def test_denoising_error_sees_the_adapter_and_nothing_else():
    """Zero W_O' (the paper's init): the adapted UNet is the T2V model, errors match; a non-zero W_O' changes them."""
    from evaluation.ablation import denoising_error, error_table, first_step_error
    from i2v_adapter.model.adapter import adapter_processors, remove_i2v_adapter
    from i2v_adapter.pipeline import I2VPipeline

    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    clips = held_out_clips(2, cfg)
    adapted, base = build_components(cfg), build_components(cfg)
    remove_i2v_adapter(base.unet)
    processors = adapter_processors(adapted.unet).values()
    with torch.no_grad():
        for proc in processors:
            proc.to_out_ff.weight.zero_()
            proc.to_out_ff.bias.zero_()
    base_err = denoising_error(I2VPipeline(base), clips, timesteps=(100, 900))
    assert denoising_error(I2VPipeline(adapted), clips, timesteps=(100, 900)) == base_err
    with torch.no_grad():
        for proc in processors:
            proc.to_out_ff.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    changed = denoising_error(I2VPipeline(adapted), clips, timesteps=(100, 900))
    assert set(changed) == {100, 900} and all(changed[t] != base_err[t] for t in changed)
    assert "| 900 |" in error_table({"t2v": base_err, "adapter": changed})
    base_first = first_step_error(I2VPipeline(base), clips)
    assert first_step_error(I2VPipeline(adapted), clips) != base_first  # the non-zero W_O' shows at the first step too
    with torch.no_grad():
        for proc in processors:
            proc.to_out_ff.weight.zero_()
    assert first_step_error(I2VPipeline(adapted), clips) == base_first


def _script(name: str):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_error_script(capsys):
    script = _script("validation_error")
    torch.set_num_threads(1)
    assert script.main(["--count", "6", "--objective", "adapter"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| as captioned") or line.startswith("| no caption")]
    assert len(rows) == 2 and rows[0] != rows[1].replace("no caption", "as captioned")
    assert script.main(["--count", "6", "--measure", "first-step"]) == 0
    assert "| caption (" in (out := capsys.readouterr().out) and "t = 901" in out and "t = 950" not in out
    assert script.main(["--count", "6", "--adapter", "x.safetensors"]) == 2  # the T2V objective has no adapter
    assert script.main(["--count", "6", "--measure", "direction"]) == 2  # sampling from frame 0 is the adapter's


def test_direction_following_counts_videos_moving_the_captioned_way():
    from types import SimpleNamespace

    from evaluation.ablation import direction_following

    class RightwardPipe:  # a model that moves every image right, whatever the caption says
        config = get_preset("tiny")

        def __call__(self, image, prompt, *, seed, fsp, progress):
            assert fsp.enabled and not progress
            return SimpleNamespace(frames=np.stack([np.roll(image, 3 * k, axis=1) for k in range(6)]))

    rng = np.random.default_rng(0)
    clip = (rng.integers(0, 255, size=(2, 64, 64, 3)) // 64 * 64).astype(np.uint8)
    clips = [(clip, f"a red circle {phrase} on a plain background", motion)
             for phrase, motion in (("moves to the right", "right"), ("moves to the left", "left"),
                                    ("moves to the right", "right"), ("grows", "grow"))]
    assert direction_following(RightwardPipe(), clips) == {"clips": 3, "as captioned": 2, "opposite direction": 1}


def test_figures_script_writes_samples_and_gif_and_keeps_existing(tmp_path):
    from i2v_core.media import read_video

    figures = _script("make_figures")
    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    clips = held_out_clips(16, cfg)
    first = figures.translating_clips(1, clips)[0]
    assert clips[first][2] in figures.TRANSLATIONS and all(c[2] not in figures.TRANSLATIONS for c in clips[:first])
    with pytest.raises(ValueError, match="expected 17 translating clips among the first 16"):
        figures.translating_clips(17, clips)
    assert figures.main(["--count", "1", "--out", str(tmp_path)]) == 0
    gif = read_video(tmp_path / "tiny_example.gif")
    assert gif.shape[1:] == (2 * cfg.height, 2 * (2 * cfg.width + 4), 3) and 2 <= gif.shape[0] <= cfg.num_frames
    from PIL import Image

    assert Image.open(tmp_path / "tiny_samples.png").size == (cfg.num_frames * cfg.width, 3 * cfg.height)
    assert Image.open(tmp_path / "tiny_vae_colours.png").size == (7 * cfg.width, 2 * cfg.height)
    assert figures.main(["--count", "1", "--out", str(tmp_path)]) == 2  # no overwrite without asking


def test_opposite_caption_and_caption_effect():
    from evaluation.ablation import caption_effect, caption_table, opposite_caption, redirected_caption
    from i2v_adapter.pipeline import I2VPipeline

    assert opposite_caption("a red circle moves to the right on a plain background", "right") == \
        "a red circle moves to the left on a plain background"
    assert opposite_caption("a red circle moves up on a plain background", "up").endswith("moves down on a plain background")
    with pytest.raises(ValueError, match="expected a caption saying 'moves down'"):
        opposite_caption("a red circle grows on a plain background", "down")
    assert redirected_caption("moves to the left", "left", "up") == "moves up"
    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    clips = held_out_clips(8, cfg)
    pipe = I2VPipeline(build_components(cfg))
    assert caption_effect(pipe, [c for c in clips if c[2] == "grow"]) == {}
    effect = caption_effect(pipe, clips)
    assert list(effect) == ["as captioned", "opposite direction", "other axis", "no caption"]
    assert effect["as captioned"] != effect["no caption"]  # the caption reaches the UNet
    assert "| no caption |" in caption_table(effect, 3)


def test_copy_first_frame_error_is_zero_only_for_a_still_clip():
    from evaluation.ablation import copy_first_frame_error
    from i2v_adapter.pipeline import I2VPipeline

    torch.set_num_threads(1)
    cfg = get_preset("tiny")
    clip, prompt, motion = next(c for c in held_out_clips(8, cfg) if c[2] in ("right", "left", "up", "down"))
    still = np.repeat(clip[:1], clip.shape[0], axis=0)
    pipe = I2VPipeline(shipped.default_components(cfg))  # the trained VAE: a moving shape moves its latents
    assert copy_first_frame_error(pipe, [(still, prompt, motion)]) == 0.0
    assert copy_first_frame_error(pipe, [(clip, prompt, motion)]) > 0.01
