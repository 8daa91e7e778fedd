"""`runtime_py.metrics` on synthetic videos of known motion: a texture shifted by a known number of
pixels per frame, a static video, and random frames."""

import cv2
import numpy as np
import pytest

from runtime_py import metrics


def texture(seed: int = 0, size: int = 256) -> np.ndarray:
    """A smooth random RGB texture with enough detail for optical flow."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2.0), None, 0, 255, cv2.NORM_MINMAX)


def shifted_video(dx: int, dy: int, frames: int = 8, size: int = 128) -> np.ndarray:
    """`(F, size, size, 3)`: a window moving (dx, dy) px per frame over the texture, so the content
    moves by (-dx, -dy) px per frame."""
    tex = texture()
    return np.stack([tex[32 + dy * i : 32 + dy * i + size, 32 + dx * i : 32 + dx * i + size] for i in range(frames)])


@pytest.mark.parametrize("method", metrics.FLOW_METHODS)
@pytest.mark.parametrize("dx,dy", [(1, 0), (3, 0), (2, 1), (0, 4)])
def test_flow_score_is_the_shift_in_pixels(method, dx, dy):
    score = metrics.flow_score(shifted_video(dx, dy), method)
    assert score == pytest.approx(np.hypot(dx, dy), rel=0.03), f"{method}: {score:.3f} px for a ({dx}, {dy}) shift"


@pytest.mark.parametrize("method", metrics.FLOW_METHODS)
def test_static_video_scores_zero(method):
    still = np.repeat(texture()[None, :128, :128], 6, axis=0)
    assert metrics.flow_score(still, method) < 0.01
    assert metrics.warping_error(still, method) < 1e-6


def test_flow_direction_follows_the_content():
    video = shifted_video(3, 0)
    flow = metrics.optical_flow(video[0], video[1])
    assert flow.shape == (128, 128, 2) and flow.dtype == np.float32
    assert np.median(flow[..., 0]) == pytest.approx(-3.0, abs=0.1)  # the window moves right: content left
    assert abs(np.median(flow[..., 1])) < 0.1


@pytest.mark.parametrize("method", metrics.FLOW_METHODS)
def test_warping_error_low_for_translation_high_for_random_frames(method):
    translation = metrics.warping_error(shifted_video(2, 1), method)
    random = np.random.default_rng(1).integers(0, 256, (6, 128, 128, 3)).astype(np.uint8)
    noise = metrics.warping_error(random, method)
    assert translation < 1e-4, translation
    assert noise > 0.05, noise  # independent uniform pixels: E[(a - b)^2] = 1/6 on [0, 1]
    assert noise > 1000 * translation


def test_occlusion_mask_marks_pixels_leaving_the_frame():
    video = shifted_video(4, 0)
    forward = metrics.optical_flow(video[0], video[1])
    backward = metrics.optical_flow(video[1], video[0])
    occluded = metrics.occlusion_mask(forward, backward)
    assert occluded[:, :3].mean() > 0.9  # content moves left by 4 px: the left 4 columns leave
    assert occluded[:, 8:-8].mean() < 0.01


def test_first_frame_consistency():
    video = shifted_video(2, 0)
    out = metrics.first_frame_consistency(video, video[0])
    assert out["ssim"][0] == pytest.approx(1.0) and out["psnr_db"][0] == float("inf")
    # 2 px shift: still similar; 4 px: less; from 8 px on the texture has decorrelated
    assert out["ssim"][1] > 0.5 and out["ssim"][1] > out["ssim"][2] > max(abs(s) for s in out["ssim"][4:])
    assert out["mean_ssim"] == pytest.approx(np.mean(out["ssim"][1:]))
    assert 10 < out["mean_psnr_db"] < 30
    noisy = np.clip(video[0].astype(int) + np.random.default_rng(0).normal(0, 10, video[0].shape), 0, 255).astype(np.uint8)
    assert metrics.psnr_uint8(noisy, video[0]) == pytest.approx(28.1, abs=0.5)  # 20 log10(255 / ~10)
    assert 0.3 < metrics.ssim(noisy, video[0]) < 0.95


def test_video_metrics_record():
    video = shifted_video(1, 0)
    m = metrics.video_metrics(video, video[0]).to_dict()
    assert set(m) == {"flow_score", "warping_error", "first_frame_ssim", "first_frame_psnr_db", "flow_method"}
    assert m["flow_score"] == pytest.approx(1.0, rel=0.03) and m["flow_method"] == "dis"


def test_bad_input_is_named():
    video = shifted_video(1, 0)
    with pytest.raises(ValueError, match=r"expected frames of shape \(F, H, W, 3\) uint8, got \(8, 128, 128, 3\) float32"):
        metrics.flow_score(video.astype(np.float32))
    with pytest.raises(ValueError, match="expected at least 2 frames for a flow score, got 1"):
        metrics.flow_score(video[:1])
    with pytest.raises(ValueError, match="unknown flow method 'raft': expected one of dis, farneback"):
        metrics.flow_score(video, "raft")
    with pytest.raises(ValueError, match=r"expected an input image of shape \(128, 128, 3\) \(the frames'\), got \(64, 64, 3\)"):
        metrics.first_frame_consistency(video, video[0, :64, :64])


def test_metrics_import_no_torch():
    import subprocess
    import sys

    code = "import sys, runtime_py.metrics; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
