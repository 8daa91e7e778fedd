"""`python -m evaluation.verify` on the tiny fp32 bundle: the report's keys and figures (stages,
schedulers vs diffusers, tokenizer, FSP, end to end frame PSNR >= 40 dB on ONNX and TFLite), the
failure path with its figures, and the refusal to rebuild a checkpoint bundle without its files."""

import json

import numpy as np
import pytest
from PIL import Image

from evaluation import verify
from i2v_core.bundle import load_manifest
from i2v_core.media import make_test_card
from runtime_py.report import json_ready, markdown

STEPS = 2
REPORT_KEYS = {
    "bundle", "backend", "precision", "preset", "weights", "inputs", "thresholds", "stages", "schedulers",
    "tokenizer", "fsp", "end_to_end", "metrics", "failures", "passed",
}


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random tiny CLIP vision model saved as a local safetensors checkpoint."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)
    path = tmp_path_factory.mktemp("clip") / "tiny-clip"
    CLIPVisionModelWithProjection(config).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="module")
def report_dir(bundle, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "report"
    argv = ["--bundle", str(bundle), "--out", str(out), "--steps", str(STEPS), "--quiet", "--threads", "1", "--clip", str(tiny_clip)]
    assert verify.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def report(report_dir):
    return json.loads((report_dir / "verify.json").read_text())


def test_report_folder_and_keys(report_dir, report):
    assert sorted(p.name for p in report_dir.iterdir()) == [
        "frames.png", "input.png", "pytorch.mp4", "runtime.mp4", "verify.json", "verify.md"
    ]
    assert set(report) == REPORT_KEYS
    assert report["passed"] is True and report["failures"] == []
    assert (report["backend"], report["precision"], report["preset"]) == ("onnx", "fp32", "tiny")
    assert report["weights"]["source"] == "embedded-default"
    strip = Image.open(report_dir / "frames.png")
    assert strip.size == (72 + 8 * 128, 3 * 128)  # label + 8 frames wide; PyTorch, runtime, diff rows
    assert "**PASSED**" in (report_dir / "verify.md").read_text()


def test_stage_parity(report):
    assert set(report["stages"]) == {"text_encoder", "vae_encoder", "unet", "vae_decoder"}
    for name, p in report["stages"].items():
        assert p["psnr_db"] >= 100.0, f"{name}: {p}"  # fp32 ONNX: rounding only
        assert p["max_abs"] < 1e-4, f"{name}: {p}"
    assert report["stages"]["unet"]["guidance_correlation"] > 0.9999


def test_pipeline_pieces(report):
    for name, s in report["schedulers"].items():
        assert s["same_timesteps"] and s["max_step_error"] <= 1e-6 and s["max_scale_model_input_error"] <= 1e-6, name
    assert report["tokenizer"] == {"texts": 7, "identical": True, "mismatches": []}
    assert all(v["max_abs"] <= 1e-6 for v in report["fsp"].values()), report["fsp"]


def test_end_to_end_onnx(report):
    e2e = report["end_to_end"]
    assert len(e2e["frame_psnr_db"]) == 8 and e2e["min_frame_psnr_db"] >= 40.0, e2e["frame_psnr_db"]
    assert len(e2e["guidance_per_step"]) == STEPS and e2e["min_guidance_correlation"] >= 0.99
    assert e2e["same_timesteps"] and len(e2e["timesteps"]) == STEPS


def test_video_metrics_of_both_videos(report):
    torch_m, rt_m = report["metrics"]["pytorch"], report["metrics"]["runtime"]
    assert set(torch_m) == {"flow_score", "warping_error", "first_frame_ssim", "first_frame_psnr_db", "flow_method", "clip_cosine"}
    assert -1.0 <= torch_m["clip_cosine"] <= 1.0
    assert rt_m["clip_cosine"] == pytest.approx(torch_m["clip_cosine"], abs=0.01)
    # the two videos agree to > 40 dB, so their metrics agree closely
    assert rt_m["flow_score"] == pytest.approx(torch_m["flow_score"], rel=0.02)
    assert rt_m["warping_error"] == pytest.approx(torch_m["warping_error"], rel=0.05)


def test_end_to_end_tflite(bundle):
    from runtime_py.pipeline import RuntimePipeline

    manifest = load_manifest(bundle)
    runtime = RuntimePipeline.from_bundle(bundle, "tflite", threads=1)
    torch_pipe = verify.build_reference(manifest, verify.Weights())

    options = verify.VerifyOptions(bundle=bundle, out=bundle, backend="tflite", progress=False)
    figures, torch_frames, runtime_frames = verify.end_to_end(runtime, torch_pipe, make_test_card(128, 128), options, STEPS, 7.5)
    assert torch_frames.shape == runtime_frames.shape == (8, 128, 128, 3)
    assert figures["min_frame_psnr_db"] >= 40.0, figures["frame_psnr_db"]
    assert figures["min_guidance_correlation"] >= 0.99


def test_failures_carry_the_figures(report):
    strict = verify.Thresholds(stage_psnr_db=500.0, frame_psnr_db=300.0, guidance_correlation=1.5)
    failures = verify.find_failures(report, strict)
    assert any(f.startswith("stage unet: PSNR ") and "< 500 dB (max-abs" in f for f in failures)
    assert any(f.startswith("end to end: frame ") and "< 300 dB" in f for f in failures)
    assert any("guidance delta correlation" in f and "< 1.5" in f for f in failures)
    broken = json.loads(json.dumps(report))
    broken["tokenizer"] = {"texts": 1, "identical": False, "mismatches": [{"text": "x", "against": "pytorch"}]}
    broken["fsp"]["ddim"]["max_abs"] = 3e-3
    broken["schedulers"]["euler"]["max_step_error"] = 2e-5
    messages = "\n".join(verify.find_failures(broken, verify.thresholds_for({"precision": "fp32"})))
    assert "tokenizer: ids differ" in messages and "fsp (ddim): max-abs 0.003 > 1e-06" in messages
    assert "scheduler euler: step error 2e-05 > 1e-06" in messages


def test_cli_exit_status_1_on_a_failed_threshold(report, monkeypatch, tmp_path, capsys):
    failed = dict(report, passed=False, failures=["end to end: frame 3 PSNR 31.2 dB < 40 dB"])
    frames = np.zeros((8, 128, 128, 3), np.uint8)
    result = verify.VerifyResult(failed, failed["failures"], frames[0], {"pytorch": frames, "runtime": frames}, 8)
    monkeypatch.setattr(verify, "run_verify", lambda options: result)
    out = tmp_path / "report"
    assert verify.main(["--bundle", "b", "--out", str(out)]) == 1
    assert "FAILED: end to end: frame 3 PSNR 31.2 dB < 40 dB" in capsys.readouterr().err
    assert json.loads((out / "verify.json").read_text())["passed"] is False  # the report is written anyway
    assert "**FAILED**\n- end to end: frame 3 PSNR 31.2 dB" in (out / "verify.md").read_text()


def test_thresholds_follow_precision_and_overrides():
    assert verify.thresholds_for({"precision": "fp32"}).frame_psnr_db == 40.0
    gated = verify.thresholds_for({"precision": "fp16", "parity": {"min_psnr_db": 40.0, "min_guidance_correlation": 0.98}})
    assert gated.frame_psnr_db < 40.0 and gated.stage_psnr_db == 40.0 and gated.guidance_correlation == 0.98
    ungated = verify.thresholds_for({"precision": "int8-static", "parity": {"min_psnr_db": None}})
    assert ungated.stage_psnr_db == 30.0  # the loosest floor quantize gates a default recipe on
    args = verify.build_parser().parse_args(["--bundle", "b", "--out", "o", "--min-frame-psnr", "33"])
    assert verify.options_from_args(args).thresholds == {"frame_psnr_db": 33.0}


def test_checkpoint_bundle_needs_its_files(bundle, tmp_path):
    manifest = load_manifest(bundle)
    manifest["weights"] = {"source": "checkpoints", "seed": 0, "checkpoints": {"sd15": str(tmp_path / "sd15")}, "lora_scales": []}
    with pytest.raises(FileNotFoundError, match=r"exported from checkpoints .*not found here \{'sd15': .*sd15'\}.*--sd15"):
        verify.build_reference(manifest, verify.Weights())
    with pytest.raises(FileNotFoundError, match=r"not found here \{'adapter': .*adapter.safetensors"):
        verify.build_reference(manifest, verify.Weights(adapter=tmp_path / "adapter.safetensors"))


def test_existing_report_is_refused(bundle, report_dir, capsys):
    assert verify.main(["--bundle", str(bundle), "--out", str(report_dir)]) == 2
    assert "output already exists" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, message", [
    ("--steps", "0", "expected --steps >= 1, got 0"),
    ("--guidance", "nan", "expected --guidance to be a finite number, got nan"),
    ("--seed", "-1", "expected --seed in [0, 4294967295], got -1"),
])
def test_numbers_name_the_flag(bundle, tmp_path, capsys, flag, value, message):
    assert verify.main(["--bundle", str(bundle), "--out", str(tmp_path / "r"), f"{flag}={value}", "--quiet"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "r").exists()


def test_overwrite_keeps_a_user_folder_and_the_bundle(bundle, tmp_path, capsys):
    user = tmp_path / "docs"
    user.mkdir()
    (user / "thesis.tex").write_text("keep")
    assert verify.main(["--bundle", str(bundle), "--out", str(user), "--overwrite", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"error: refusing to overwrite {user}: --overwrite replaces only a verify report folder this project wrote "
        "(verify.json) or an empty folder, and this folder holds thesis.tex (no verify.json); nothing was deleted\n"
    )
    assert (user / "thesis.tex").read_text() == "keep"
    for out, how in ((bundle.parent, "contains"), (bundle / "report", "is inside")):
        assert verify.main(["--bundle", str(bundle), "--out", str(out), "--overwrite", "--quiet"]) == 2
        assert capsys.readouterr().err.startswith(f"error: --out {out} {how} the input --bundle {bundle}: expected an output outside it")


def test_json_ready_is_strict_json():
    assert json.dumps(json_ready({"a": np.float32(1.5), "b": [float("inf"), np.int64(3)], "c": np.bool_(True)})) == (
        '{"a": 1.5, "b": [null, 3], "c": true}'
    )


def test_markdown_lists_every_stage(report):
    text = markdown(report)
    for name in report["stages"]:
        assert f"| {name} |" in text
    assert "OpenCV DIS" in text and "CLIP cosine: mean over frames 1..F-1" in text and "clip_cosine |" in text
    without = json.loads(json.dumps(report))
    for m in without["metrics"].values():
        del m["clip_cosine"]
    assert "CLIP similarity is not computed (pass --clip" in markdown(without)


def test_clip_cosines(tiny_clip, tmp_path):
    from evaluation.clip_score import clip_consistency, clip_cosines, load_clip_vision

    model = load_clip_vision(tiny_clip)
    card = make_test_card(128, 128)
    frames = np.stack([card, card[::-1], np.zeros_like(card), card])
    cos = clip_cosines(frames, card, model)
    assert len(cos) == 4 and cos[0] == pytest.approx(1.0, abs=1e-6) and cos[3] == pytest.approx(1.0, abs=1e-6)
    assert cos[2] < 0.999 and all(-1.0 <= c <= 1.0 for c in cos)
    assert clip_consistency(frames, card, model)["mean_clip_cosine"] == pytest.approx(np.mean(cos[1:]))
    with pytest.raises(FileNotFoundError, match="CLIP checkpoint folder not found"):
        load_clip_vision(tmp_path / "no-clip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="could not load a CLIP vision model .safetensors. from .*empty"):
        load_clip_vision(tmp_path / "empty")


def test_clip_from_a_full_clip_model_folder(tmp_path):
    """A `CLIPModel` folder (vision + text, as openai/clip-vit-large-patch14 ships) loads its vision half."""
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    from evaluation.clip_score import load_clip_vision

    torch.manual_seed(0)
    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4)
    config = CLIPConfig(text_config=CLIPTextConfig(**small).to_dict(),
                        vision_config=CLIPVisionConfig(**small, image_size=32, patch_size=8).to_dict(), projection_dim=16)
    full = CLIPModel(config).eval()
    full.save_pretrained(tmp_path / "clip", safe_serialization=True)
    vision = load_clip_vision(tmp_path / "clip")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = full.get_image_features(pixel_values=x)
        expected = getattr(expected, "pooler_output", expected)
        torch.testing.assert_close(vision(pixel_values=x).image_embeds, expected, rtol=0, atol=1e-6)
