"""Training: adapter-only updates, the frame-0-free loss, resume, data robustness, config and CLI errors."""

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from i2v_adapter.checkpoints.io import load_safetensors
from i2v_adapter.model.adapter import adapter_parameters
from i2v_adapter.model.components import build_components
from i2v_adapter.training.config import (
    FLAT_KEYS,
    SECTIONS,
    DataConfig,
    MixedPrecision,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    TrainStage,
)
from i2v_adapter.training.data import SyntheticClips, VideoFolderDataset, sample_indices
from i2v_adapter.training.train import Draws, draw, epsilon_loss, main, setup_run, train, training_loss
from i2v_core.media import write_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """`accelerate` keeps process-wide singletons; reset them between tests as its own test case does.

    One torch thread: the tiny model gains nothing from two, and on a shared 2-core machine spinning
    OpenMP threads made a step 10x slower (measured 0.2 s vs up to 9 s per micro-batch under load).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def tcfg():
    """Tiny preset at 4 frames, one clip per step: a step takes a fraction of a second."""
    return TrainConfig(model=ModelConfig(num_frames=4), optim=OptimConfig(batch_size=1, max_steps=1),
                       data=DataConfig(synthetic_clips=16), run=RunConfig(checkpoint_every=1, seed=3))


def _frozen_tensors(components) -> dict[str, torch.Tensor]:
    adapter = {id(p) for p in adapter_parameters(components.unet)}
    out = {}
    for part in ("unet", "vae", "text_encoder"):
        for name, p in getattr(components, part).named_parameters():
            if id(p) not in adapter:
                out[f"{part}.{name}"] = p.detach().clone()
    return out


def test_one_step_changes_only_the_adapter(tcfg, tmp_path):
    run = train(tcfg, "synthetic", tmp_path / "run", quiet=True)
    assert run.state.step == 1 and len(run.state.losses) == 1 and np.isfinite(run.state.losses[0])
    fresh = build_components(tcfg.preset_config())
    before, after = _frozen_tensors(fresh), _frozen_tensors(run.components)
    assert before.keys() == after.keys() and len(before) > 100
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [], f"frozen parameters changed: {changed[:5]}"
    new = dict(zip(run.params, adapter_parameters(run.components.unet)))
    old = dict(zip(run.params, adapter_parameters(fresh.unet)))
    moved = [k for k in new if not torch.equal(new[k], old[k])]
    assert any(k.endswith("to_out_ff.weight") for k in moved)  # zero-initialised W_O' learnt something
    assert all(not torch.any(old[k]) for k in old if "to_out_ff" in k)  # the paper's zero init
    saved = load_safetensors(tmp_path / "run" / "adapter.safetensors")
    assert saved.keys() == new.keys() and all(torch.equal(saved[k], new[k]) for k in saved)


def test_loss_ignores_the_frame_0_prediction_and_keeps_frame_0_clean(tcfg):
    noise = torch.randn(2, 4, 4, 16, 16)
    pred = torch.randn(2, 4, 4, 16, 16)
    bumped = pred.clone()
    bumped[:, :, 0] += 100.0
    assert epsilon_loss(bumped, noise).item() == epsilon_loss(pred, noise).item()
    bumped[:, :, 1] += 1.0
    assert epsilon_loss(bumped, noise).item() > epsilon_loss(pred, noise).item() + 0.1

    run = setup_run(tcfg)
    clips = SyntheticClips(2, num_frames=4, height=128, width=128, seed=0)
    frames = torch.from_numpy(np.stack([clips[0][0], clips[1][0]]))  # (2, 4, 128, 128, 3)
    captions = [clips[0][1], clips[1][1]]
    draws = draw(run.components.config, 2, 0.0, seed=7)
    draws = Draws(draws.noise, torch.tensor([999, 500]), draws.drop)  # strong noise: frame 0 must stand out
    seen = {}

    def record_input(module, args):
        seen["sample"] = args[0].detach().clone()

    def bump_frame_0(module, args, output):
        output = output.clone()
        output[:, :, 0] += 100.0
        return output

    with torch.no_grad():
        handle = run.models.unet.register_forward_pre_hook(record_input)
        plain = training_loss(run.models, frames, captions, draws).item()
        handle.remove()
        handle = run.models.unet.register_forward_hook(bump_frame_0)
        perturbed = training_loss(run.models, frames, captions, draws).item()
        handle.remove()
        clean = run.models.vae_encoder((frames[:, 0].permute(0, 3, 1, 2).float() / 127.5 - 1.0))  # (2, 4, 16, 16)
    assert perturbed == plain
    sample = seen["sample"]  # (2, 4, 4, 16, 16)
    assert torch.allclose(sample[:, :, 0], clean, atol=1e-6)
    assert (sample[:, :, 1:] - clean[:, :, None]).abs().mean() > 0.5  # the other frames are noised


def test_resume_continues_from_the_saved_step(tcfg, tmp_path):
    cfg = tcfg.with_overrides(optim={"max_steps": 2, "gradient_accumulation_steps": 2}, objective={"prompt_dropout": 0.5})
    out = tmp_path / "run"
    first = train(cfg, "synthetic", out, quiet=True)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checkpoint-1", "checkpoint-2"]
    at_2 = load_safetensors(out / "checkpoint-2" / "adapter.safetensors")
    resumed = train(cfg.with_overrides(optim={"max_steps": 4}), "synthetic", out, resume=True, quiet=True)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["step"] == 4 and len(state["losses"]) == 4
    assert state["losses"][:2] == first.state.losses
    assert json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["step"] == 4
    at_4 = load_safetensors(out / "adapter.safetensors")
    assert any(not torch.equal(at_2[k], at_4[k]) for k in at_2)
    # An uninterrupted 4-step run ends at the same weights: optimizer state, clip order and noise all resume.
    straight = train(cfg.with_overrides(optim={"max_steps": 4}), "synthetic", tmp_path / "straight", quiet=True)
    assert straight.state.losses == resumed.state.losses
    ref = load_safetensors(tmp_path / "straight" / "adapter.safetensors")
    worst = max((ref[k] - at_4[k]).abs().max().item() for k in ref)
    assert worst <= 1e-7, f"resumed and uninterrupted runs differ by {worst}"


def test_a_signal_stops_at_a_step_boundary_with_a_checkpoint(tcfg, tmp_path, monkeypatch):
    import signal

    import i2v_adapter.training.train as train_module

    real = train_module.train_micro_batch

    def preempted(run, frames, captions, micro_batch):
        loss = real(run, frames, captions, micro_batch)
        if micro_batch == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job
        return loss

    monkeypatch.setattr(train_module, "train_micro_batch", preempted)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    run = train(tcfg.with_overrides(optim={"max_steps": 5}, run={"checkpoint_every": 100}), "synthetic", out, quiet=True)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    assert run.state.step == 2 and sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checkpoint-2"]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["step"] == 2 and len(state["losses"]) == 2
    assert (out / "adapter.safetensors").is_file()
    monkeypatch.setattr(train_module, "train_micro_batch", real)
    resumed = train(tcfg.with_overrides(optim={"max_steps": 3}, run={"checkpoint_every": 100}), "synthetic", out,
                    resume=True, quiet=True)
    assert resumed.state.step == 3 and resumed.state.losses[:2] == run.state.losses


def test_cli_resumes_an_older_run_folder_with_a_flat_config(tcfg, tmp_path, capsys, caplog):
    out = tmp_path / "run"
    train(tcfg, "synthetic", out, quiet=True)
    saved = json.loads((out / "checkpoint-1" / "train_config.json").read_text())
    assert saved == tcfg.to_dict() and set(saved) == set(SECTIONS)  # runs write the nested layout
    flat = {key: saved[section][name] for key, (section, name) in FLAT_KEYS.items()}  # as older runs wrote it
    (out / "train_config.json").write_text(json.dumps(flat))
    (out / "checkpoint-1" / "train_config.json").write_text(json.dumps({**flat, "prompt_dropout": 0.3}))
    argv = ["--config", str(out / "train_config.json"), "--data", "synthetic", "--out", str(out), "--resume",
            "--max-steps", "2", "--quiet"]
    with caplog.at_level(logging.WARNING, logger="i2v_adapter.training.train"):
        assert main(argv) == 0
    assert capsys.readouterr().out.startswith("stage adapter: step 2/2, last loss ")
    warned = [r.getMessage() for r in caplog.records if "differ" in r.getMessage()]
    assert len(warned) == 1 and warned[0].endswith("objective.prompt_dropout: 0.3 -> 0.1"), warned
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 2
    assert TrainConfig.from_json(out / "train_config.json") == tcfg.with_overrides(optim={"max_steps": 2})


def test_cli_refuses_an_existing_run_without_resume(tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"num_frames": 4, "max_steps": 1}))
    out = tmp_path / "run"
    (out / "checkpoint-3").mkdir(parents=True)
    code = main(["--config", str(config), "--data", "synthetic", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "already holds a training run (checkpoint-3)" in err and "--resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-3"]


def test_config_file_and_errors(tmp_path):
    cfg = TrainConfig.from_json(CONFIGS / "tiny_adapter.json")
    assert cfg.model.stage.value == "adapter" and cfg.optim.learning_rate == 1e-4 and cfg.preset_config().num_frames == 8
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": 0.1}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(bad))}: unknown key 'lr'; expected a key of the flat layout"):
        TrainConfig.from_json(bad)
    bad.write_text(json.dumps({"optim": {"learning_rat": 0.1}, "run": {"seed": 1}}))
    with pytest.raises(ValueError, match=r"bad.json: unknown key 'optim.learning_rat' \(did you mean 'learning_rate'\?\)"):
        TrainConfig.from_json(bad)
    bad.write_text(json.dumps({"optim": {}, "seed": 1}))  # one layout or the other
    with pytest.raises(ValueError, match=r"unknown key 'seed'; expected the sections .* \(in the nested layout 'seed' is run.seed\)"):
        TrainConfig.from_json(bad)
    bad.write_text(json.dumps({"stage": "unet"}))
    with pytest.raises(ValueError, match=r"expected model.stage to be one of \['adapter', 'vae', 't2v'\], got 'unet'"):
        TrainConfig.from_json(bad)
    bad.write_text(json.dumps({"optim": {"mixed_precision": "fp8"}}))
    with pytest.raises(ValueError, match=r"expected optim.mixed_precision to be one of \['no', 'fp16', 'bf16'\], got 'fp8'"):
        TrainConfig.from_json(bad)
    with pytest.raises(ValueError, match="expected optim.batch_size to be an integer >= 1, got 0"):
        TrainConfig(optim=OptimConfig(batch_size=0)).verify()
    with pytest.raises(ValueError, match="expected optim.learning_rate to be a number > 0, got '1e-4'"):
        TrainConfig().with_overrides(optim={"learning_rate": "1e-4"})
    with pytest.raises(ValueError, match=r"unknown key 'optim.lr'"):
        TrainConfig().with_overrides(optim={"lr": 0.1})


def test_every_config_file_loads_and_verifies():
    paths = sorted(CONFIGS.glob("*.json"))
    assert len(paths) >= 20
    for path in paths:
        cfg = TrainConfig.from_json(path)  # verified
        given = json.loads(path.read_text())
        assert set(given) <= set(cfg.to_dict()), f"{path.name}: configs are written in the nested layout"
        nested = cfg.to_dict()
        for section, values in given.items():  # every value landed where the file put it
            for name, value in values.items():
                assert nested[section][name] == value, (path.name, section, name)


def test_flat_and_nested_layouts_give_the_same_config(tmp_path):
    flat = {"preset": "tiny", "stage": "t2v", "num_frames": 8, "learning_rate": 3e-4, "batch_size": 4,
            "mixed_precision": "bf16", "max_steps": 6000, "max_minutes": 25, "checkpoint_every": 250, "seed": 50,
            "synthetic_motions": ["right", "left"], "synthetic_captions": "motion", "synthetic_start": "centre",
            "first_frame_clean_prob": 1.0, "pure_noise_from": 850, "v_weight_cap": 20.0, "timestep_power": 0.2,
            "init_vae": "v.safetensors", "init_unet": "u.safetensors", "adapter_out_init_std": 0.01,
            "vae_norm_num_groups": 4, "prediction_type": "epsilon", "train_text_encoder": True}
    nested = {
        "model": {"preset": "tiny", "stage": "t2v", "num_frames": 8, "vae_norm_num_groups": 4,
                  "prediction_type": "epsilon", "train_text_encoder": True},
        "init": {"vae": "v.safetensors", "unet": "u.safetensors", "adapter_out_std": 0.01},
        "data": {"synthetic_motions": ["right", "left"], "synthetic_captions": "motion", "synthetic_start": "centre"},
        "optim": {"learning_rate": 3e-4, "batch_size": 4, "mixed_precision": "bf16", "max_steps": 6000},
        "objective": {"first_frame_clean_prob": 1.0, "pure_noise_from": 850, "v_weight_cap": 20.0, "timestep_power": 0.2},
        "run": {"max_minutes": 25, "checkpoint_every": 250, "seed": 50},
    }
    (tmp_path / "flat.json").write_text(json.dumps(flat))
    (tmp_path / "nested.json").write_text(json.dumps(nested))
    a, b = TrainConfig.from_json(tmp_path / "flat.json"), TrainConfig.from_json(tmp_path / "nested.json")
    assert a == b and a.model.stage is TrainStage.T2V and a.optim.mixed_precision is MixedPrecision.BF16
    assert a.init.adapter_out_std == 0.01 and a.preset_config().adapter_out_init_std == 0.01
    assert TrainConfig.from_dict(a.to_dict()) == a  # round trip
    assert TrainConfig.from_dict(json.loads(a.to_json())) == a
    assert json.loads(a.to_json()) == a.to_dict() and set(a.to_dict()) == set(SECTIONS)
    assert TrainConfig.from_dict({}) == TrainConfig() == TrainConfig.from_dict(TrainConfig().to_dict())
    # Every field of every section has exactly one flat key.
    assert sorted(FLAT_KEYS.values()) == sorted((s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls))


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def _grey_clip(levels) -> np.ndarray:
    return np.stack([np.full((48, 64, 3), level, np.uint8) for level in levels])  # (F, 48, 64, 3)


def test_video_folder_skips_and_counts_bad_clips(tmp_path, caplog):
    write_video(_grey_clip([0, 40, 80, 120, 160, 200, 240]), tmp_path / "good.mp4")
    write_video(_grey_clip([50, 100]), tmp_path / "short.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rows = ["file,caption", "corrupt.mp4,noise", "good.mp4,a grey fade", "short.mp4,too short", "missing.mp4,gone"]
    (tmp_path / "captions.csv").write_text("\n".join(rows) + "\n")
    ds = VideoFolderDataset(tmp_path, num_frames=4, height=32, width=32)
    assert len(ds) == 4
    with caplog.at_level(logging.WARNING, logger="i2v_adapter.training.data"):
        for _ in range(2):
            results = [ds[i] for i in range(len(ds))]
    assert ds.skipped == 3
    warned = [r.getMessage() for r in caplog.records if r.name == "i2v_adapter.training.data"]
    assert len(warned) == 3 and any("short.mp4" in m and "at least 4 frames, found 2" in m for m in warned)
    frames, caption = results[0]  # the corrupt clip's slot gets the next good clip
    assert caption == "a grey fade" and frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    means = frames.reshape(4, -1).mean(axis=1)
    assert np.allclose(means, [0, 80, 160, 240], atol=6), means  # frames 0, 2, 4, 6 of 7
    assert all(r[1] == "a grey fade" for r in results)


def test_training_on_a_folder_survives_a_corrupt_clip(tcfg, tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    write_video(SyntheticClips(1, num_frames=6, height=128, width=128)[0][0], data / "good.mp4")
    (data / "corrupt.mp4").write_bytes(b"\x00" * 1000)
    rows = [{"file": "corrupt.mp4", "caption": "broken"}, {"file": "good.mp4", "caption": "ok"}]
    (data / "captions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    run = train(tcfg.with_overrides(optim={"max_steps": 2}), data, tmp_path / "run", quiet=True)
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert run.state.step == 2 and state["skipped_clips"] == 1 and len(state["losses"]) == 2


def test_video_folder_jsonl_and_all_bad(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "bad.mp4", "caption": "x"}) + "\n")
    ds = VideoFolderDataset(tmp_path, num_frames=4, height=32, width=32)
    with pytest.raises(ValueError, match="all 1 clips were skipped"):
        ds[0]
    assert ds.skipped == 1
    (tmp_path / "captions.jsonl").write_text('{"file": "bad.mp4"}\n')
    with pytest.raises(ValueError, match=r"captions.jsonl:1: expected a JSON object with 'file' and 'caption'"):
        VideoFolderDataset(tmp_path, num_frames=4, height=32, width=32)
    assert list(sample_indices(16, 4)) == [0, 5, 10, 15]


def _centroid_and_area(frames: np.ndarray, colour) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the (x, y) centre and pixel count of pixels close to `colour`."""
    near = np.abs(frames.astype(np.int32) - np.array(colour)).sum(axis=-1) < 40  # (F, H, W)
    ys, xs = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]]
    area = near.sum(axis=(1, 2))
    centre = np.stack([(near * xs).sum(axis=(1, 2)) / area, (near * ys).sum(axis=(1, 2)) / area], axis=1)
    return centre, area


def test_synthetic_clips_are_deterministic_and_captioned():
    from i2v_adapter.training.data import COLOURS

    a = SyntheticClips(200, num_frames=6, height=64, width=64, seed=1)
    b = SyntheticClips(200, num_frames=6, height=64, width=64, seed=1)
    for i in (0, 17, 199):
        assert np.array_equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]
    assert not np.array_equal(a[0][0], a[1][0])
    assert not np.array_equal(a[0][0], SyntheticClips(200, num_frames=6, height=64, width=64, seed=2)[0][0])
    frames, caption = a[5]
    assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
    specs = [a.spec(i) for i in range(200)]
    assert {s.motion for s in specs} >= {"right", "left", "up", "down", "grow", "shrink", "recolour", "rotate"}
    assert {s.shape for s in specs} == {"circle", "square", "triangle"}
    for i, spec in enumerate(specs):
        caption = a[i][1] if i < 20 else spec.caption
        assert spec.shape in caption and spec.colour in caption
    phrases = {"right": "moves to the right", "left": "moves to the left", "up": "moves up", "down": "moves down"}
    for motion, axis, sign in (("right", 0, 1), ("left", 0, -1), ("up", 1, -1), ("down", 1, 1)):
        i = next(i for i, s in enumerate(specs) if s.motion == motion and s.background == "plain")
        frames, caption = a[i]
        assert phrases[motion] in caption
        centre, _ = _centroid_and_area(frames, COLOURS[specs[i].colour])
        assert sign * (centre[-1, axis] - centre[0, axis]) > 10, (caption, centre)  # pixels of travel
    i = next(i for i, s in enumerate(specs) if s.motion == "grow" and s.background == "plain")
    _, area = _centroid_and_area(a[i][0], COLOURS[specs[i].colour])
    assert "grows" in a[i][1] and area[-1] > 2 * area[0]
    i = next(i for i, s in enumerate(specs) if s.motion == "recolour")
    assert f"turns {specs[i].target_colour}" in a[i][1] and specs[i].target_colour != specs[i].colour


def test_synthetic_clips_centre_start_hides_the_direction():
    from i2v_adapter.training.data import COLOURS

    moves = ["right", "left", "up", "down"]
    edge = SyntheticClips(2000, num_frames=6, height=64, width=64, seed=2, motions=moves)
    centre = SyntheticClips(2000, num_frames=6, height=64, width=64, seed=2, motions=moves, start="centre")
    for clips, separable in ((edge, True), (centre, False)):
        specs = [clips.spec(i) for i in range(2000)]
        right = [s.start[0] for s in specs if s.motion == "right"]
        left = [s.start[0] for s in specs if s.motion == "left"]
        assert (max(right) < min(left)) == separable  # "edge": a right-mover always starts left of a left-mover
        if not separable:
            assert abs(np.mean(right) - np.mean(left)) < 0.03
    for i in range(0, 60, 3):
        spec = centre.spec(i)
        frames = centre[i][0]
        xy, area = _centroid_and_area(frames, COLOURS[spec.colour])
        if area.min() < 20:  # a colour close to the background's tone: the centroid is not measurable
            continue
        step = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}[spec.motion]
        assert np.dot(xy[-1] - xy[0], step) > 3  # pixels, the captioned way
    with pytest.raises(ValueError, match="synthetic_start"):
        TrainConfig(data=DataConfig(synthetic_start="corner")).verify()


def test_synthetic_clips_motion_only_captions():
    full = SyntheticClips(30, num_frames=4, height=64, width=64, seed=1)
    motion = SyntheticClips(30, num_frames=4, height=64, width=64, seed=1, captions="motion")
    phrases = {"right": "moves to the right", "left": "moves to the left", "up": "moves up", "down": "moves down",
               "grow": "grows", "shrink": "shrinks", "rotate": "rotates"}
    for i in range(30):
        spec = full.spec(i)
        expected = phrases.get(spec.motion, f"turns {spec.target_colour}")
        assert motion[i][1] == expected and expected in full[i][1] and full[i][1] != expected
        assert np.array_equal(motion[i][0], full[i][0])  # the same clip, only the caption differs
    with pytest.raises(ValueError, match="expected captions to be one of"):
        SyntheticClips(4, num_frames=4, height=64, width=64, captions="short")
    with pytest.raises(ValueError, match="synthetic_captions"):
        TrainConfig(data=DataConfig(synthetic_captions="short")).verify()


def test_synthetic_clips_restricted_to_some_motions():
    moves = ["right", "left", "up", "down"]
    some = SyntheticClips(100, num_frames=4, height=64, width=64, seed=1, motions=moves)
    assert {some.spec(i).motion for i in range(100)} == set(moves)
    every = SyntheticClips(100, num_frames=4, height=64, width=64, seed=1, motions=None)
    default = SyntheticClips(100, num_frames=4, height=64, width=64, seed=1)
    assert all(every.spec(i) == default.spec(i) for i in range(0, 100, 7))  # None: the clips of earlier runs
    assert {SyntheticClips(20, num_frames=4, height=64, width=64, motions=["rotate"]).spec(i).shape
            for i in range(20)} <= {"square", "triangle"}  # a turning circle would not move
    for bad in (["sideways"], []):
        with pytest.raises(ValueError, match="expected motions among"):
            SyntheticClips(4, num_frames=4, height=64, width=64, motions=bad)
        with pytest.raises(ValueError, match="synthetic_motions"):
            TrainConfig(data=DataConfig(synthetic_motions=bad)).verify()
    from i2v_adapter.training.train import make_dataset

    dataset = make_dataset("synthetic", TrainConfig(data=DataConfig(synthetic_motions=["left"], synthetic_clips=8)))
    assert all("moves to the left" in dataset[i][1] for i in range(8))


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is refused only where accelerate cannot run it (CPU)")
def test_fp16_on_cpu_is_refused_not_silently_fp32(tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"num_frames": 4, "max_steps": 1, "mixed_precision": "fp16"}))
    assert main(["--config", str(config), "--data", "synthetic", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "mixed_precision 'fp16' is not available on cpu" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_training_cli_help_is_free_of_import_noise_and_user_levels_win():
    """torchao's CPU-only import messages are quietened; a level the user set before importing is kept."""
    import subprocess
    import sys

    help_run = subprocess.run([sys.executable, "-m", "i2v_adapter.training.train", "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "--config" in help_run.stdout
    assert "torchao" not in help_run.stderr and "_pytree" not in help_run.stderr, help_run.stderr[:500]
    code = ("import logging; logging.getLogger('torchao').setLevel(logging.INFO); import i2v_adapter; "
            "print(logging.getLogger('torchao').level, logging.getLogger('torch.utils._pytree').level)")
    levels = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert levels == [str(logging.INFO), str(logging.ERROR)]
