"""Training stages `vae` and `t2v`, the chaining of stages, and the trained-weights loaders."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from i2v_adapter.checkpoints.io import load_safetensors
from i2v_adapter.checkpoints.shipped import load_module_weights, load_trained, save_module_weights
from i2v_adapter.model.adapter import adapter_processors, is_installed
from i2v_adapter.model.components import build_components
from i2v_adapter.model.stage_modules import VaeDecoderStage, VaeEncoderStage
from i2v_adapter.training.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from i2v_adapter.training.data import SyntheticClips
from i2v_adapter.training.objectives import calibrate_latent_scale, frames_to_pixels, random_crops
from i2v_adapter.training.train import Draws, draw, setup_run, train, training_loss
from i2v_core.config import get_preset
from i2v_core.errors import CheckpointError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """One torch thread (shared 2-core machine) and fresh `accelerate` singletons per test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


# Tiny preset at 4 frames, one clip per step.
BASE = TrainConfig(model=ModelConfig(num_frames=4), optim=OptimConfig(batch_size=1, max_steps=1),
                   data=DataConfig(synthetic_clips=16), run=RunConfig(checkpoint_every=1, seed=3))


def tiny(stage: str, **sections: dict) -> TrainConfig:
    """`BASE` for `stage`, with fields changed by section (`optim={"max_steps": 2}`)."""
    return BASE.with_overrides(model={"stage": stage, **sections.pop("model", {})}, **sections)


def config(stage: str, **sections: dict) -> TrainConfig:
    """The default config for `stage`, with fields changed by section (verified: bad values raise)."""
    return TrainConfig().with_overrides(model={"stage": stage, **sections.pop("model", {})}, **sections)


def _all_tensors(components) -> dict[str, torch.Tensor]:
    return {
        f"{part}.{name}": p.detach().clone()
        for part in ("unet", "vae", "text_encoder")
        for name, p in getattr(components, part).named_parameters()
    }


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if k in after and not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory):
    """One-step `vae`, then `t2v` on its VAE, then `adapter` on both: the three-stage chain in miniature."""
    root = tmp_path_factory.mktemp("stages")
    from accelerate.state import AcceleratorState, GradientState

    runs = {}
    for stage, extra in (
        ("vae", dict(objective={"vae_crop": 32})),
        ("t2v", dict(init={"vae": str(root / "vae" / "vae.safetensors")})),
        ("adapter", dict(init={"vae": str(root / "vae" / "vae.safetensors"),
                               "unet": str(root / "t2v" / "unet.safetensors")})),
    ):
        tcfg = tiny(stage, optim={"learning_rate": 1e-3}, **extra)
        runs[stage] = (tcfg, train(tcfg, "synthetic", root / stage, quiet=True))
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    return root, runs


def test_vae_step_changes_only_the_vae(stage_runs):
    root, runs = stage_runs
    tcfg, run = runs["vae"]
    fresh = _all_tensors(build_components(tcfg.preset_config()))
    after = _all_tensors(run.components)
    changed = _changed(fresh, after)
    assert changed and all(k.startswith("vae.") for k in changed), sorted(changed)[:5]
    assert len(changed) > 0.8 * sum(k.startswith("vae.") for k in fresh)  # nearly every VAE tensor moved
    saved = load_safetensors(root / "vae" / "vae.safetensors")
    assert saved.keys() == {k[len("vae."):] for k in fresh if k.startswith("vae.")}
    state = json.loads((root / "vae" / "trainer_state.json").read_text())
    assert state["step"] == 1 and state["measurements"]["latent_std_before_calibration"] > 0


def test_t2v_step_trains_the_whole_unet_without_the_adapter(stage_runs):
    root, runs = stage_runs
    tcfg, run = runs["t2v"]
    assert not is_installed(run.components.unet)  # the base T2V model exactly
    fresh = build_components(tcfg.preset_config())
    load_trained(fresh, vae=root / "vae" / "vae.safetensors")
    before, after = _all_tensors(fresh), _all_tensors(run.components)
    changed = _changed(before, after)
    assert changed and all(k.startswith("unet.") for k in changed), sorted(changed)[:5]
    assert any("motion_modules" in k for k in changed) and any("attn2.to_k" in k for k in changed)
    assert any(k.startswith("unet.down_blocks.0.resnets") for k in changed)
    saved = load_safetensors(root / "t2v" / "unet.safetensors")
    assert len(saved) > 400 and not any(".processor." in k for k in saved)


def test_adapter_stage_starts_from_the_trained_t2v_model(stage_runs):
    root, runs = stage_runs
    tcfg, run = runs["adapter"]
    start = build_components(tcfg.preset_config())
    load_trained(start, vae=root / "vae" / "vae.safetensors", unet=root / "t2v" / "unet.safetensors")
    for name, proc in adapter_processors(start.unet).items():  # a fresh adapter on the loaded UNet
        assert torch.equal(proc.to_q_ff.weight, start.unet.get_submodule(name).to_q.weight)
        assert not torch.any(proc.to_out_ff.weight)
    before, after = _all_tensors(start), _all_tensors(run.components)
    changed = _changed(before, after)
    assert changed and all(".processor." in k for k in changed), sorted(changed)[:5]
    t2v = load_safetensors(root / "t2v" / "unet.safetensors")
    assert all(torch.equal(t2v[k], after[f"unet.{k}"]) for k in t2v)


def test_t2v_loss_covers_frame_0_and_noises_it():
    tcfg = tiny("t2v")
    run = setup_run(tcfg)
    clips = SyntheticClips(1, num_frames=4, height=128, width=128, seed=0)
    frames, captions = torch.from_numpy(clips[0][0][None]), [clips[0][1]]  # (1, 4, 128, 128, 3)
    d = draw(run.components.config, 1, 0.0, seed=5)
    d = Draws(d.noise, torch.tensor([999]), d.drop)
    seen = {}

    def record(module, args):
        seen["sample"] = args[0].detach().clone()

    def bump_frame_0(module, args, output):
        output = output.clone()
        output[:, :, 0] += 1.0
        return output

    with torch.no_grad():
        handle = run.models.unet.register_forward_pre_hook(record)
        plain = training_loss(run.models, frames, captions, d, condition_on_first_frame=False).item()
        handle.remove()
        handle = run.models.unet.register_forward_hook(bump_frame_0)
        bumped = training_loss(run.models, frames, captions, d, condition_on_first_frame=False).item()
        handle.remove()
        clean = run.models.vae_encoder(frames_to_pixels(frames[:, :1]))  # (1, 4, 16, 16)
    assert bumped > plain + 0.1  # frame 0 is a target: 1/4 of the frames, +1 each -> about +0.25
    assert (seen["sample"][:, :, 0] - clean).abs().mean() > 0.5  # and is noised like the others


def test_vae_resume_matches_an_uninterrupted_run(tmp_path):
    tcfg = tiny("vae", model={"num_frames": 2}, optim={"max_steps": 2}, objective={"vae_crop": 32})
    train(tcfg, "synthetic", tmp_path / "a", quiet=True)
    resumed = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "a", resume=True, quiet=True)
    straight = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "b", quiet=True)
    assert resumed.state.losses == straight.state.losses and len(resumed.state.losses) == 3
    a, b = load_safetensors(tmp_path / "a" / "vae.safetensors"), load_safetensors(tmp_path / "b" / "vae.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-7


def test_calibration_rescales_latents_and_keeps_reconstructions():
    cfg = TrainConfig().preset_config()
    vae = build_components(cfg).vae
    clips = SyntheticClips(3, num_frames=2, height=128, width=128, seed=4)
    pixels = frames_to_pixels(torch.from_numpy(np.stack([clips[i][0] for i in range(3)])))  # (6, 3, 128, 128)
    enc, dec = VaeEncoderStage(vae), VaeDecoderStage(vae)
    with torch.no_grad():
        before = dec(enc(pixels[:1]))
        std = calibrate_latent_scale(vae, pixels)
        latents = enc(pixels)
        after = dec(latents[:1])
    assert std > 0 and abs(latents.std().item() - 1.0) < 1e-3
    assert (before - after).abs().max().item() < 1e-4


def test_random_crops_are_seeded_squares():
    pixels = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    a = random_crops(pixels, 8, torch.Generator().manual_seed(0))
    b = random_crops(pixels, 8, torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a, b)
    assert torch.equal(random_crops(pixels, 0, torch.Generator()), pixels)


def test_weights_files_store_fp16_and_load_upcast_with_checked_keys(tmp_path):
    cfg = TrainConfig().preset_config()
    vae = build_components(cfg).vae
    path = save_module_weights(vae, tmp_path / "vae.safetensors")
    assert all(t.dtype == torch.float16 for t in load_safetensors(path).values())
    other = build_components(cfg.with_overrides(seed=9)).vae
    load_module_weights(other, path, what="VAE")
    for (name, p), q in zip(vae.named_parameters(), other.parameters()):
        assert q.dtype == torch.float32
        assert torch.equal(q, p.detach().half().float()), name
    unet = build_components(cfg).unet
    with pytest.raises(CheckpointError, match=r"T2V UNet .* missing keys: .*unexpected keys: .*decoder"):
        load_module_weights(unet, path, what="T2V UNet")


def test_stage_configs_parse():
    expected = {"tiny_vae.json": "vae", "tiny_t2v.json": "t2v", "tiny_t2v_p2.json": "t2v",
                "tiny_adapter_trained.json": "adapter"}
    for name, stage in expected.items():
        assert TrainConfig.from_json(CONFIGS / name).model.stage.value == stage
    for path in sorted(CONFIGS.glob("tiny_*.json")):  # every config of the chain
        tcfg = TrainConfig.from_json(path)
        assert tcfg.preset_config().num_frames == 8, path.name
        assert tcfg.preset_config().vae.norm_num_groups == 4, path.name  # one VAE architecture throughout
    with pytest.raises(ValueError, match="expected objective.kl_weight to be a number >= 0, got -1"):
        config("vae", objective={"kl_weight": -1})
    with pytest.raises(ValueError, match="expected objective.vae_crop to be an integer >= 0, got 2.5"):
        config("vae", objective={"vae_crop": 2.5})


def test_max_minutes_stops_at_a_step_with_a_checkpoint_and_resume_goes_on(tmp_path):
    tcfg = tiny("vae", model={"num_frames": 2}, optim={"max_steps": 3}, objective={"vae_crop": 32})
    stopped = train(tcfg.with_overrides(run={"max_minutes": 1e-9}), "synthetic", tmp_path / "a", quiet=True)
    assert stopped.state.step == 1 and (tmp_path / "a" / "checkpoint-1" / "vae.safetensors").is_file()
    assert json.loads((tmp_path / "a" / "trainer_state.json").read_text())["step"] == 1
    resumed = train(tcfg, "synthetic", tmp_path / "a", resume=True, quiet=True)
    assert resumed.state.step == 3 and len(resumed.state.losses) == 3
    with pytest.raises(ValueError, match="expected run.max_minutes to be a number > 0 or null, got 0"):
        tcfg.with_overrides(run={"max_minutes": 0})


def test_decoder_only_vae_keeps_the_latent_space_and_resumes(stage_runs, tmp_path):
    root, _ = stage_runs
    init = root / "vae" / "vae.safetensors"
    tcfg = tiny("vae", model={"num_frames": 2, "vae_decoder_only": True}, init={"vae": str(init)},
                optim={"learning_rate": 1e-3, "max_steps": 2}, objective={"vae_crop": 32})
    run = train(tcfg, "synthetic", tmp_path / "a", quiet=True)
    before = build_components(tcfg.preset_config())
    load_trained(before, vae=init)
    changed = _changed(_all_tensors(before), _all_tensors(run.components))
    assert changed and all(k.startswith(("vae.decoder.", "vae.post_quant_conv.")) for k in changed), sorted(changed)[:5]
    saved = load_safetensors(tmp_path / "a" / "vae.safetensors")  # the whole VAE, loadable as any VAE file
    assert saved.keys() == {k for k, _ in before.vae.named_parameters()}
    assert "latent_std_before_calibration" not in json.loads((tmp_path / "a" / "trainer_state.json").read_text())["measurements"]
    resumed = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "a", resume=True, quiet=True)
    straight = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "b", quiet=True)
    assert resumed.state.losses == straight.state.losses and len(resumed.state.losses) == 3
    with pytest.raises(ValueError, match="model.vae_decoder_only fine-tunes a trained VAE's decoder: expected model.stage "
                                         "'vae' with init.vae, got model.stage 'vae' and init.vae None"):
        config("vae", model={"vae_decoder_only": True})


def test_timestep_power_biases_towards_high_noise_and_is_checked():
    cfg = get_preset("tiny")
    uniform = torch.cat([draw(cfg, 64, 0.0, seed=s).timesteps for s in range(8)]).float()
    biased = torch.cat([draw(cfg, 64, 0.0, seed=s, timestep_power=0.5).timesteps for s in range(8)]).float()
    assert 400 < uniform.mean() < 600 and 600 < biased.mean() < 730  # E[T sqrt(u)] = 2T/3
    assert biased.min() >= 0 and biased.max() <= cfg.scheduler.num_train_timesteps - 1
    assert torch.equal(draw(cfg, 4, 0.0, seed=3).timesteps, draw(cfg, 4, 0.0, seed=3, timestep_power=1.0).timesteps)
    with pytest.raises(ValueError, match="timestep_power"):
        config("t2v", objective={"timestep_power": 0.0})


def test_p2_weighting_scales_each_clip_by_its_snr():
    from i2v_adapter.training.objectives import epsilon_loss, p2_weights

    scheduler = build_components(get_preset("tiny")).scheduler
    w = p2_weights(scheduler, torch.tensor([50, 250, 500, 950]), 1.0)
    assert torch.all(w[1:] > w[:-1]) and 0.99 < float(w[-1]) <= 1.0 and float(w[0]) < 0.1  # low noise counts least
    assert torch.equal(p2_weights(scheduler, torch.tensor([50, 950]), 0.0), torch.ones(2))
    pred, noise = torch.randn(2, 4, 3, 2, 2, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 4, 3, 2, 2)
    plain = epsilon_loss(pred, noise)
    assert torch.allclose(epsilon_loss(pred, noise, weights=torch.ones(2)), plain)
    only_first = epsilon_loss(pred, noise, weights=torch.tensor([2.0, 0.0]))
    assert torch.allclose(only_first, pred[0, :, 1:].pow(2).mean())  # frame 0 still excluded
    with pytest.raises(ValueError, match="p2_gamma"):
        config("t2v", objective={"p2_gamma": -1.0})


def test_v_weighting_counts_clean_latent_error_at_high_noise():
    from i2v_adapter.training.objectives import loss_weights, p2_weights, v_weights

    scheduler = build_components(get_preset("tiny")).scheduler
    t = torch.tensor([50, 250, 500, 750, 950])
    alpha_bar = scheduler.alphas_cumprod.double()[t]
    v = v_weights(scheduler, t, 1e9)  # uncapped: 1 + 1 / SNR
    assert torch.allclose(v.double(), 1.0 / alpha_bar, rtol=1e-5)  # 1 + (1 - a) / a = 1 / a
    assert torch.all(v[1:] > v[:-1]) and 1.0 < float(v[0]) < 1.1 and float(v[-1]) > 100
    capped = v_weights(scheduler, t, 20.0)
    assert float(capped.max()) == 20.0 and torch.equal(capped[:3], v[:3])
    assert loss_weights(scheduler, t) is None  # the paper's plain loss
    assert torch.allclose(loss_weights(scheduler, t, 1.0, 20.0), p2_weights(scheduler, t, 1.0) * capped)
    for bad in (0.5, True, "20"):
        with pytest.raises(ValueError, match="v_weight_cap"):
            config("t2v", objective={"v_weight_cap": bad})


def test_leak_free_high_noise_input_is_the_noise_and_target_recovers_the_clip():
    from i2v_adapter.training.objectives import leak_free, noisy_input

    eps_cfg = config("t2v", model={"prediction_type": "epsilon"}).preset_config()  # an epsilon target
    scheduler = build_components(eps_cfg).scheduler
    gen = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(3, 4, 5, 2, 2, generator=gen), torch.randn(3, 4, 5, 2, 2, generator=gen)
    t = torch.tensor([100, 850, 990])
    sample = noisy_input(scheduler, latents, noise, t)  # frame 0 clean
    leak, target = leak_free(scheduler, sample, latents, noise, noise, t, 850)
    assert torch.equal(leak[0], sample[0]) and torch.equal(target[0], noise[0])  # below the threshold: as before
    assert torch.equal(leak[:, :, 0], latents[:, :, 0])  # the clean first frame stays
    assert torch.equal(leak[1:, :, 1:], noise[1:, :, 1:])  # no trace of the clip in the input
    a = scheduler.alphas_cumprod[t[1:]].view(-1, 1, 1, 1, 1)
    x0 = (leak[1:, :, 1:] - (1 - a).sqrt() * target[1:, :, 1:]) / a.sqrt()
    assert torch.allclose(x0, latents[1:, :, 1:], atol=1e-4)  # the target's clean latent is the clip's
    _, t2v_target = leak_free(scheduler, scheduler.add_noise(latents, noise, t), latents, noise, noise, t, 850, first=0)
    assert not torch.equal(t2v_target[1:, :, 0], noise[1:, :, 0])  # T2V: frame 0 is predicted too
    for bad in (0, 1000, 2.5):
        with pytest.raises(ValueError, match="pure_noise_from"):
            config("adapter", objective={"pure_noise_from": bad})


def test_stage_loss_feeds_the_leak_free_input_to_the_unet():
    from i2v_adapter.training.objectives import stage_loss

    tcfg = tiny("adapter", objective={"pure_noise_from": 850})
    run = setup_run(tcfg)
    clips = SyntheticClips(1, num_frames=4, height=128, width=128, seed=0)
    frames, captions = torch.from_numpy(clips[0][0][None]), [clips[0][1]]
    seen = []
    handle = run.models.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        for seed in range(40):  # enough micro-batches to draw timesteps on both sides of 850
            stage_loss(run.models, frames, captions, tcfg, seed)
    handle.remove()
    timesteps = [int(draw(run.components.config, 1, tcfg.objective.prompt_dropout, seed).timesteps) for seed in range(40)]
    noises = [draw(run.components.config, 1, tcfg.objective.prompt_dropout, seed).noise for seed in range(40)]
    high = [i for i, t in enumerate(timesteps) if t >= 850]
    low = [i for i, t in enumerate(timesteps) if t < 850]
    assert high and low
    assert all(torch.equal(seen[i][:, :, 1:], noises[i][:, :, 1:]) for i in high)
    assert not any(torch.equal(seen[i][:, :, 1:], noises[i][:, :, 1:]) for i in low)


def test_v_prediction_target_and_its_clean_latent():
    import dataclasses

    from i2v_adapter.training.objectives import leak_free, predicted_clean, predicted_noise, prediction_target

    tcfg = config("t2v", model={"prediction_type": "v_prediction"})
    cfg = tcfg.preset_config()
    eps_cfg = config("t2v", model={"prediction_type": "epsilon"}).preset_config()
    assert cfg.scheduler.prediction_type == "v_prediction" and eps_cfg.scheduler.prediction_type == "epsilon"
    assert get_preset("tiny").scheduler.prediction_type == "v_prediction"  # the shipped weights' (MODEL_CARD.md)
    scheduler = build_components(cfg).scheduler
    gen = torch.Generator().manual_seed(1)
    latents, noise = torch.randn(2, 4, 3, 2, 2, generator=gen), torch.randn(2, 4, 3, 2, 2, generator=gen)
    t = torch.tensor([30, 900])
    sample = scheduler.add_noise(latents, noise, t)
    v = prediction_target(scheduler, latents, noise, t)
    assert torch.allclose(v, scheduler.get_velocity(latents, noise, t), atol=1e-6)  # diffusers' own definition
    assert torch.allclose(predicted_clean(scheduler, sample, v, t), latents, atol=1e-4)
    assert torch.allclose(predicted_noise(scheduler, sample, v, t), noise, atol=1e-5)  # the noise it implies
    leak, target = leak_free(scheduler, sample, latents, v, noise, t, 850, first=0)
    assert torch.equal(leak[1], noise[1]) and torch.equal(target[0], v[0])
    assert torch.allclose(predicted_clean(scheduler, leak, target, t)[1], latents[1], atol=1e-4)
    eps_scheduler = build_components(eps_cfg).scheduler
    assert torch.equal(prediction_target(eps_scheduler, latents, noise, t), noise)
    assert predicted_noise(eps_scheduler, sample, noise, t) is noise
    assert torch.allclose(predicted_clean(eps_scheduler, sample, noise, t), latents, atol=1e-4)
    with pytest.raises(ValueError, match="prediction_type"):
        config("adapter", model={"prediction_type": "sample"})
    with pytest.raises(ValueError, match="objective.v_weight_cap weights an epsilon loss as a v loss"):
        dataclasses.replace(tcfg, objective=dataclasses.replace(tcfg.objective, v_weight_cap=20.0)).verify()


def test_first_frame_clean_prob_draws_last_and_is_checked():
    cfg = get_preset("tiny").with_overrides(num_frames=4)
    plain, mixed = draw(cfg, 64, 0.1, seed=9), draw(cfg, 64, 0.1, seed=9, first_frame_clean_prob=0.5)
    assert plain.clean_first is None and mixed.clean_first.dtype == torch.bool
    assert 16 < int(mixed.clean_first.sum()) < 48  # about half of 64
    for a, b in ((plain.noise, mixed.noise), (plain.timesteps, mixed.timesteps), (plain.drop, mixed.drop)):
        assert torch.equal(a, b)  # drawn last: a run without it keeps its randomness
    config("t2v", objective={"first_frame_clean_prob": 1.0})
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="first_frame_clean_prob"):
            config("t2v", objective={"first_frame_clean_prob": bad})
    with pytest.raises(ValueError, match="expected model.stage 't2v', got 'adapter'"):
        config("adapter", objective={"first_frame_clean_prob": 0.5})


def test_epsilon_loss_with_a_first_frame_per_clip():
    from i2v_adapter.training.objectives import epsilon_loss

    gen = torch.Generator().manual_seed(4)
    pred, target = torch.randn(3, 4, 5, 2, 2, generator=gen), torch.randn(3, 4, 5, 2, 2, generator=gen)
    weights = torch.tensor([1.0, 2.0, 0.5])
    for first in (0, 1):
        same = torch.full((3,), first)
        assert torch.allclose(epsilon_loss(pred, target, first=same), epsilon_loss(pred, target, first=first))
        assert torch.allclose(epsilon_loss(pred, target, first=same, weights=weights),
                              epsilon_loss(pred, target, first=first, weights=weights))
    per_clip = [float(epsilon_loss(pred[i:i + 1], target[i:i + 1], first=f)) for i, f in enumerate((0, 1, 1))]
    mixed = float(epsilon_loss(pred, target, first=torch.tensor([0, 1, 1]), weights=weights))
    assert mixed == pytest.approx(sum(w * e for w, e in zip(weights.tolist(), per_clip)) / 3, rel=1e-5)
    bumped = pred.clone()
    bumped[1:, :, 0] += 100.0  # frame 0 of the clean-first clips is not a target
    assert float(epsilon_loss(bumped, target, first=torch.tensor([0, 1, 1]))) == pytest.approx(
        float(epsilon_loss(pred, target, first=torch.tensor([0, 1, 1]))), rel=1e-6)


def test_t2v_first_frame_clips_are_the_adapter_objective_on_the_base_model():
    """A T2V clip drawn with a clean frame 0 gets exactly the adapter stage's input and loss."""
    tcfg = tiny("t2v", model={"prediction_type": "epsilon"}, objective={"pure_noise_from": 850, "v_weight_cap": 20.0})
    run = setup_run(tcfg)
    clips = SyntheticClips(2, num_frames=4, height=128, width=128, seed=0)
    frames = torch.from_numpy(np.stack([clips[0][0], clips[1][0]]))
    captions = [clips[0][1], clips[1][1]]
    d = draw(run.components.config, 2, 0.0, seed=5)
    d = Draws(d.noise, torch.tensor([400, 900]), d.drop)
    kw = dict(pure_noise_from=850, v_weight_cap=20.0)
    seen = []
    handle = run.models.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        adapter = training_loss(run.models, frames, captions, d, condition_on_first_frame=True, **kw)
        t2v = training_loss(run.models, frames, captions, d, condition_on_first_frame=False, **kw)
        all_clean = training_loss(run.models, frames, captions, Draws(d.noise, d.timesteps, d.drop, torch.tensor([True, True])),
                                  condition_on_first_frame=False, **kw)
        none_clean = training_loss(run.models, frames, captions, Draws(d.noise, d.timesteps, d.drop, torch.tensor([False, False])),
                                   condition_on_first_frame=False, **kw)
        training_loss(run.models, frames, captions, Draws(d.noise, d.timesteps, d.drop, torch.tensor([True, False])),
                      condition_on_first_frame=False, **kw)  # for the UNet input it records (seen[4])
    handle.remove()
    assert float(all_clean) == pytest.approx(float(adapter), rel=1e-5)
    assert float(none_clean) == pytest.approx(float(t2v), rel=1e-5)
    assert float(adapter) != pytest.approx(float(t2v), rel=1e-3)
    adapter_in, t2v_in, mixed_in = seen[0], seen[1], seen[4]
    assert torch.equal(mixed_in[0], adapter_in[0]) and torch.equal(mixed_in[1], t2v_in[1])  # per clip
    assert not torch.equal(adapter_in[:, :, 0], t2v_in[:, :, 0])


def test_pytorch_pipeline_samples_a_v_prediction_unet():
    from i2v_adapter.pipeline import I2VPipeline

    torch.set_num_threads(1)
    image = SyntheticClips(1, num_frames=2, height=128, width=128, seed=0)[0][0][0]
    v_cfg = config("t2v", model={"prediction_type": "v_prediction"}).preset_config()
    outputs = {}
    eps_cfg = config("t2v", model={"prediction_type": "epsilon"}).preset_config()
    for name, cfg in (("v", v_cfg), ("epsilon", eps_cfg)):
        pipe = I2VPipeline(build_components(cfg))  # the same seeded weights
        assert pipe.components.scheduler.config.prediction_type == cfg.scheduler.prediction_type
        outputs[name] = pipe(image, "a red circle", num_inference_steps=2, progress=False).latents
    assert torch.isfinite(outputs["v"]).all()
    assert torch.equal(outputs["v"][:, :, 0], outputs["epsilon"][:, :, 0])  # frame 0 stays the clean latent
    assert not torch.allclose(outputs["v"][:, :, 1:], outputs["epsilon"][:, :, 1:])  # read as velocity, not noise


def test_t2v_with_train_text_encoder_trains_both_saves_both_and_resumes(stage_runs, tmp_path):
    root, _ = stage_runs
    vae = str(root / "vae" / "vae.safetensors")
    tcfg = tiny("t2v", model={"train_text_encoder": True}, init={"vae": vae},
                optim={"learning_rate": 1e-3, "batch_size": 2, "max_steps": 2}, objective={"prompt_dropout": 0.0})
    run = train(tcfg, "synthetic", tmp_path / "a", quiet=True)
    fresh = build_components(tcfg.preset_config())
    load_trained(fresh, vae=vae)
    changed = _changed(_all_tensors(fresh), _all_tensors(run.components))
    assert any(k.startswith("text_encoder.") for k in changed) and any(k.startswith("unet.") for k in changed)
    assert not any(k.startswith("vae.") for k in changed)
    assert "text_encoder.embeddings.token_embedding.weight" in changed
    for folder in (tmp_path / "a", tmp_path / "a" / "checkpoint-2"):
        text = load_safetensors(folder / "text_encoder.safetensors")
        unet = load_safetensors(folder / "unet.safetensors")
        assert text.keys() == {n for n, _ in fresh.text_encoder.named_parameters()}
        assert not any(k.startswith("text_encoder.") for k in unet)
    trained = dict(run.components.text_encoder.named_parameters())
    assert all(torch.equal(text[k], trained[k].detach()) for k in text)
    # Resume: both files come back onto the parameters, and the run goes on as an uninterrupted one.
    resumed = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "a", resume=True, quiet=True)
    straight = train(tcfg.with_overrides(optim={"max_steps": 3}), "synthetic", tmp_path / "b", quiet=True)
    assert resumed.state.losses == pytest.approx(straight.state.losses, rel=1e-5)
    a = load_safetensors(tmp_path / "a" / "text_encoder.safetensors")
    b = load_safetensors(tmp_path / "b" / "text_encoder.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    # A later stage starts from the trained text encoder, frozen.
    adapter = tiny("adapter", init={"vae": vae, "unet": str(tmp_path / "a" / "unet.safetensors"),
                                    "text_encoder": str(tmp_path / "a" / "text_encoder.safetensors")})
    from i2v_adapter.training.train import build_model

    components, params = build_model(adapter)
    assert all(torch.equal(p.detach(), a[k]) for k, p in components.text_encoder.named_parameters())
    assert not any(k.startswith("text_encoder.") for k in params)


def test_train_text_encoder_is_a_t2v_option():
    with pytest.raises(ValueError, match="model.train_text_encoder trains .* expected model.stage 't2v', got 'adapter'"):
        config("adapter", model={"train_text_encoder": True})
    with pytest.raises(ValueError, match="expected model.train_text_encoder to be true or false, got 1"):
        config("t2v", model={"train_text_encoder": 1})


def test_weights_folder_writer_takes_a_trained_text_encoder(stage_runs, tmp_path):
    from i2v_adapter.training import weights_folder

    root, runs = stage_runs
    tcfg = runs["adapter"][0]
    (tmp_path / "train.json").write_text(json.dumps(tcfg.to_dict()))
    components = build_components(tcfg.preset_config())
    with torch.no_grad():
        for p in components.text_encoder.parameters():
            p.mul_(-0.5)  # any other text encoder
    save_module_weights(components.text_encoder, tmp_path / "text.safetensors")
    args = ["--train-config", str(tmp_path / "train.json"), "--vae", str(root / "vae" / "vae.safetensors"),
            "--unet", str(root / "t2v" / "unet.safetensors"), "--adapter", str(root / "adapter" / "adapter.safetensors")]
    assert weights_folder.main([*args, "--text-encoder", str(tmp_path / "text.safetensors"), "--out", str(tmp_path / "w")]) == 0
    assert weights_folder.main([*args, "--out", str(tmp_path / "r")]) == 0
    given, default = load_safetensors(tmp_path / "w" / "text_encoder.safetensors"), load_safetensors(tmp_path / "r" / "text_encoder.safetensors")
    for name, p in components.text_encoder.named_parameters():
        assert torch.allclose(given[name].float(), p.detach(), rtol=1e-3, atol=1e-6)
    assert any(not torch.equal(given[k], default[k]) for k in given)
