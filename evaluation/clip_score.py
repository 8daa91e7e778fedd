"""CLIP image similarity of every frame to the input image (the paper's CLIPTemp), for `verify`.

Needs a local CLIP vision checkpoint in transformers layout with safetensors weights: a `CLIPModel`
folder (e.g. openai/clip-vit-large-patch14, downloaded beforehand) or a
`CLIPVisionModelWithProjection` folder. Like `evaluation.verify`, this imports torch and
transformers when called; it is a measuring tool, not part of the phone runtime, and importing the
module imports neither.

Frames are centre-cropped, resized and normalised as CLIP's processor does
(`i2v_core.preprocess.clip_pixel_values`); the score is the cosine of the projected image
embeddings, in [-1, 1] (1: the same image to CLIP).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from i2v_core.preprocess import clip_pixel_values


def load_clip_vision(model_dir: str | os.PathLike):
    """`CLIPVisionModelWithProjection` from a local folder (safetensors only); clear errors otherwise."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"CLIP checkpoint folder not found: {path}")
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(
            str(path), config=_vision_config(path), use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(f"could not load a CLIP vision model (safetensors) from {path}: {err}") from err
    return model.eval()


def _vision_config(path: Path):
    """The vision config; from a full `CLIPModel` folder it needs the top-level `projection_dim`."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ValueError(f"expected config.json in the CLIP checkpoint folder {path}, not found")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("model_type") == "clip":
        vision = dict(config.get("vision_config") or {})
        if "projection_dim" in config:  # CLIPModel's visual_projection uses the top-level size
            vision["projection_dim"] = config["projection_dim"]
        return CLIPVisionConfig(**vision)
    return CLIPVisionConfig.from_pretrained(str(path))


def clip_cosines(frames: np.ndarray, image: np.ndarray, model) -> list[float]:
    """Cosine of each frame's CLIP image embedding with the input image's: `(F, H, W, 3)` uint8 -> F floats."""
    size = model.config.image_size
    pixels = np.concatenate([clip_pixel_values(x, size) for x in (image, *frames)])  # (1 + F, 3, S, S)
    with torch.no_grad():
        embeds = model(pixel_values=torch.from_numpy(pixels)).image_embeds.double().numpy()  # (1 + F, D)
    embeds /= np.linalg.norm(embeds, axis=-1, keepdims=True)
    return (embeds[1:] @ embeds[0]).tolist()


def clip_consistency(frames: np.ndarray, image: np.ndarray, model) -> dict:
    """`{"clip_cosine": [...], "mean_clip_cosine"}`: the mean over frames 1..F-1 (frame 0 is the input)."""
    cosines = clip_cosines(frames, image, model)
    rest = cosines[1:] if len(cosines) > 1 else cosines
    return {"clip_cosine": cosines, "mean_clip_cosine": float(np.mean(rest))}
