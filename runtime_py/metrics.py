"""Video metrics of the paper (section 4.1, as EvalCrafter defines them), torch-free: numpy + OpenCV.

- `flow_score`: mean per-pixel optical-flow magnitude between consecutive frames, in pixels of the
  frames as given (a video moving 2 px per frame scores ~2). Higher means more motion.
- `warping_error`: warp frame t+1 onto frame t's pixel grid with the flow t -> t+1, mask the pixels
  that forward-backward consistency marks as occluded (or that leave the frame), and take the mean
  squared error over the rest, on RGB in [0, 1] (the definition of Lai et al. 2018 that EvalCrafter
  uses). Unit: squared [0, 1] intensity, averaged over pairs; lower means temporally steadier.
  The paper's 9.8967 comes from RAFT at another scale: compare only numbers from the same code.
- `first_frame_consistency`: SSIM and PSNR (dB, peak 255) of every frame against the input image.
  The paper's CLIP-cosine variant (CLIPTemp) needs a CLIP vision model, i.e. torch or an exported
  encoder; it is not implemented here, so this reports the pixel similarities only.

Flow comes from OpenCV's DIS (`dis`, default) or Farneback (`farneback`) on 8-bit grey frames. The
paper uses RAFT: these are proxies, good for comparing two videos measured the same way (PyTorch vs
runtime, fp32 vs int8), not for reproducing the paper's absolute figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

FLOW_METHODS = ("dis", "farneback")
# Forward-backward consistency test of Sundaram et al. (2010), as in Lai et al.'s warping error.
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


def _cv2():
    import cv2  # deferred: OpenCV only for optical flow

    return cv2


def _check_video(frames: np.ndarray, what: str = "frames") -> None:
    if not (isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3):
        found = f"{frames.shape} {frames.dtype}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"expected {what} of shape (F, H, W, 3) uint8, got {found}")


def _grey(frame: np.ndarray) -> np.ndarray:
    return _cv2().cvtColor(frame, _cv2().COLOR_RGB2GRAY)


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from frame `a` to frame `b` (`(H, W, 3)` uint8 each) -> `(H, W, 2)` float32 (dx, dy).

    Convention: `a[y, x] ~ b[y + dy, x + dx]`.
    """
    cv2 = _cv2()
    ga, gb = _grey(a), _grey(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(ga, gb, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"unknown flow method {method!r}: expected one of {', '.join(FLOW_METHODS)}")


def flow_score(frames: np.ndarray, method: str = "dis") -> float:
    """Mean flow magnitude (pixels per frame) over all pixels and consecutive pairs of `(F, H, W, 3)` uint8."""
    _check_video(frames)
    if len(frames) < 2:
        raise ValueError(f"expected at least 2 frames for a flow score, got {len(frames)}")
    mags = [np.linalg.norm(optical_flow(a, b, method), axis=-1).mean() for a, b in zip(frames[:-1], frames[1:])]
    return float(np.mean(mags))


def warp(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample `image` at `x + flow(x)`: `(H, W, C)` float32, `(H, W, 2)` -> warped `(H, W, C)`, in-frame mask `(H, W)` bool."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xx + flow[..., 0], yy + flow[..., 1]
    warped = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return warped.reshape(image.shape), inside


def occlusion_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """`(H, W)` bool, True where the flow t -> t+1 (`forward`) is not undone by t+1 -> t (`backward`).

    `|f + b(x + f)|^2 > alpha (|f|^2 + |b(x + f)|^2) + beta`, or `x + f` outside the frame.
    """
    back_at_target, inside = warp(backward, forward)
    loop = forward + back_at_target
    bound = OCCLUSION_ALPHA * ((forward**2).sum(-1) + (back_at_target**2).sum(-1)) + OCCLUSION_BETA
    return ((loop**2).sum(-1) > bound) | ~inside


def warping_error(frames: np.ndarray, method: str = "dis") -> float:
    """Mean over consecutive pairs of the occlusion-masked MSE between frame t and frame t+1 warped
    back onto it; RGB in [0, 1]. A pair with every pixel occluded is skipped (all: NaN)."""
    _check_video(frames)
    if len(frames) < 2:
        raise ValueError(f"expected at least 2 frames for a warping error, got {len(frames)}")
    errors = []
    for a, b in zip(frames[:-1], frames[1:]):
        forward, backward = optical_flow(a, b, method), optical_flow(b, a, method)
        warped, _ = warp(b.astype(np.float32) / 255.0, forward)
        keep = ~occlusion_mask(forward, backward)
        if keep.any():
            diff = (warped - a.astype(np.float32) / 255.0)[keep]  # (N, 3) over kept pixels
            errors.append(float(np.mean(diff**2)))
    return float(np.mean(errors)) if errors else float("nan")


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (peak 255); `inf` when identical."""
    if a.shape != b.shape:
        raise ValueError(f"expected images of the same shape, got {a.shape} and {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of two `(H, W, 3)`
    uint8 images, the mean over pixels and channels."""
    if a.shape != b.shape:
        raise ValueError(f"expected images of the same shape, got {a.shape} and {b.shape}")
    cv2 = _cv2()
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(index.mean())


def first_frame_consistency(frames: np.ndarray, image: np.ndarray) -> dict:
    """SSIM and PSNR of each frame vs the input `image` (`(H, W, 3)` uint8, the frames' size).

    Returns `{"ssim": [...], "psnr_db": [...], "mean_ssim", "mean_psnr_db"}`; the means are over
    frames 1..F-1 (frame 0 is the input itself in this pipeline), or frame 0 alone for one frame.
    """
    _check_video(frames)
    if image.shape != frames.shape[1:]:
        raise ValueError(f"expected an input image of shape {frames.shape[1:]} (the frames'), got {image.shape}")
    ssims = [ssim(f, image) for f in frames]
    psnrs = [psnr_uint8(f, image) for f in frames]
    rest = slice(1, None) if len(frames) > 1 else slice(None)
    return {
        "ssim": ssims,
        "psnr_db": psnrs,
        "mean_ssim": float(np.mean(ssims[rest])),
        "mean_psnr_db": float(np.mean(psnrs[rest])),
    }


@dataclass
class VideoMetrics:
    """The paper's video metrics for one video (see the module doc for definitions and units)."""

    flow_score: float
    warping_error: float
    first_frame_ssim: float
    first_frame_psnr_db: float
    flow_method: str

    def to_dict(self) -> dict:
        return asdict(self)


def video_metrics(frames: np.ndarray, image: np.ndarray, method: str = "dis") -> VideoMetrics:
    """FlowScore, WarpingError and first-frame consistency of `(F, H, W, 3)` uint8 vs the input image."""
    consistency = first_frame_consistency(frames, image)
    return VideoMetrics(
        flow_score=flow_score(frames, method),
        warping_error=warping_error(frames, method),
        first_frame_ssim=consistency["mean_ssim"],
        first_frame_psnr_db=consistency["mean_psnr_db"],
        flow_method=method,
    )
