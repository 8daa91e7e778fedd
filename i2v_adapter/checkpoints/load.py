"""Local checkpoints: safetensors files, SD1.5 folders, AnimateDiff motion modules, I2V-Adapter,
IP-Adapter-Plus and LoRA weights, and `load_components`, which puts them together.

Nothing here reaches the network and nothing here unpickles: every diffusers / transformers loader
gets `local_files_only=True` and `use_safetensors=True`, and single files must be `.safetensors`.
Released `.pth` / `.ckpt` / `.bin` files are turned into safetensors once with
`python -m i2v_adapter.checkpoints.convert` (`torch.load(weights_only=True)`). Every mismatch between a file and
the preset raises `CheckpointError` naming the field or key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.models.embeddings import MultiIPAdapterImageProjection, SinusoidalPositionalEmbedding
from torch import nn
from transformers import CLIPTextModel, CLIPVisionModelWithProjection

from i2v_adapter.checkpoints.convert import (
    ip_adapter_plus_to_diffusers,
    is_original_motion_layout,
    motion_original_to_diffusers,
)
from i2v_adapter.checkpoints.io import load_safetensors
from i2v_adapter.checkpoints.lora import fuse_lora
from i2v_adapter.checkpoints.official import check_adapter_only, ip_projection_key, strip_wrapper_prefix
from i2v_adapter.model.adapter import check_state_dict, load_i2v_adapter_state_dict
from i2v_adapter.model.components import (
    Components,
    build_image_encoder,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
    image_encoder_config,
    motion_adapter_kwargs,
    seeded,
    unet2d_kwargs,
)
from i2v_core.config import PresetConfig
from i2v_core.errors import CheckpointError
from i2v_core.tokenizer import CLIPTokenizer

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SD15_SUBFOLDERS = ("unet", "vae", "text_encoder")

def require_safetensors_file(path: str | Path, what: str) -> Path:
    """Refuse pickles and other suffixes before reading: loaders here read `.safetensors` only."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"the {what} {path} is a PyTorch pickle ({suffix}); loading reads .safetensors only. "
            f"Convert it once with: python -m i2v_adapter.checkpoints.convert {path} {path.with_suffix('.safetensors')}"
        )
    if suffix != ".safetensors":
        raise CheckpointError(f"expected a .safetensors file for the {what}, found {path.name!r}")
    return path


# --------------------------------------------------------------------------------------------------
# Folders in diffusers / transformers layout
# --------------------------------------------------------------------------------------------------


def _from_pretrained(cls, folder: Path, what: str):
    """`cls.from_pretrained` on a local folder, safetensors only; failures become `CheckpointError`."""
    try:
        model = cls.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"cannot load the {what} from {folder}: expected config.json and .safetensors weights there ({err})"
        ) from err
    return model.float().eval()


def _normal(value):
    if isinstance(value, (list, tuple)):
        return tuple(_normal(v) for v in value)
    return value


def check_config(what: str, cfg: PresetConfig, expected: Mapping[str, object], config) -> None:
    """Compare a loaded model's config (a mapping or an object) with the preset's values, by field."""
    problems = []
    for field, want in expected.items():
        have = config.get(field) if isinstance(config, Mapping) else getattr(config, field, None)
        if _normal(have) != _normal(want):
            problems.append(f"{field}: expected {_normal(want)!r}, found {_normal(have)!r}")
    if problems:
        raise CheckpointError(f"{what} does not match preset {cfg.name!r}: " + "; ".join(problems))


def _require_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        found = "a file" if path.exists() else "nothing"
        raise CheckpointError(f"expected the {what} to be a folder at {path}, found {found}")
    return path


def load_sd15_folder(path: str | Path, cfg: PresetConfig) -> tuple[UNet2DConditionModel, AutoencoderKL, CLIPTextModel]:
    """The spatial UNet, VAE and text encoder of an SD1.5 folder in diffusers layout, in float32.

    Expects `unet/`, `vae/` and `text_encoder/` (optional `tokenizer/`, `scheduler/`), each with
    safetensors weights, and checks each architecture against the preset.
    """
    root = _require_dir(path, "SD1.5 checkpoint")
    missing = [name for name in SD15_SUBFOLDERS if not (root / name).is_dir()]
    if missing:
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
        raise CheckpointError(
            f"SD1.5 folder {root} has no {', '.join(m + '/' for m in missing)} subfolder: expected the "
            f"diffusers layout unet/, vae/, text_encoder/ (optional tokenizer/, scheduler/); found {found or 'nothing'}"
        )
    unet = _from_pretrained(UNet2DConditionModel, root / "unet", "SD1.5 unet")
    expected_unet = {k: v for k, v in unet2d_kwargs(cfg).items() if k != "sample_size"}
    check_config(f"SD1.5 unet at {root / 'unet'}", cfg, expected_unet, unet.config)
    vae = _from_pretrained(AutoencoderKL, root / "vae", "SD1.5 vae")
    v = cfg.vae
    expected_vae = dict(
        latent_channels=v.latent_channels,
        block_out_channels=v.block_out_channels,
        layers_per_block=v.layers_per_block,
        norm_num_groups=v.norm_num_groups,
        scaling_factor=v.scaling_factor,
    )
    check_config(f"SD1.5 vae at {root / 'vae'}", cfg, expected_vae, vae.config)
    text_encoder = _from_pretrained(CLIPTextModel, root / "text_encoder", "SD1.5 text_encoder")
    expected_text = dataclasses.asdict(cfg.text_encoder)
    check_config(f"SD1.5 text_encoder at {root / 'text_encoder'}", cfg, expected_text, text_encoder.config)
    _check_optional_parts(root, cfg)
    return unet, vae, text_encoder


def _check_optional_parts(root: Path, cfg: PresetConfig) -> None:
    """The tokenizer vocabulary must match the text encoder; the scheduler folder is not used."""
    vocab_file = root / "tokenizer" / "vocab.json"
    if vocab_file.is_file():
        size = len(json.loads(vocab_file.read_text(encoding="utf-8")))
        if size != cfg.text_encoder.vocab_size:
            raise CheckpointError(
                f"SD1.5 tokenizer at {vocab_file} does not match preset {cfg.name!r}: vocab_size: "
                f"expected {cfg.text_encoder.vocab_size}, found {size}"
            )
    if (root / "scheduler").is_dir():
        # SD1.5 ships PNDM with scaled-linear betas; AnimateDiff and the I2V-Adapter use DDIM with
        # linear betas (the preset's `scheduler`), so the folder's scheduler would be wrong here.
        logger.info("ignoring %s: the preset's DDIM schedule is used", root / "scheduler")


# --------------------------------------------------------------------------------------------------
# AnimateDiff motion module
# --------------------------------------------------------------------------------------------------


def load_motion_adapter(path: str | Path, cfg: PresetConfig) -> MotionAdapter:
    """An AnimateDiff motion module as a diffusers `MotionAdapter` (float32), checked against `cfg`.

    `path` is either a diffusers `MotionAdapter` folder (config.json + safetensors) or one
    `.safetensors` file in the original AnimateDiff key layout (or diffusers' layout). For a file,
    the temporal position encoding length comes from the `pe` shape and the mid-block motion module
    from the keys; the number of heads cannot be read from weights and is taken from the preset.
    """
    path = Path(path)
    if path.is_dir():
        adapter = _from_pretrained(MotionAdapter, path, "motion adapter")
        check_config(f"motion adapter at {path}", cfg, motion_adapter_kwargs(cfg), adapter.config)
        return adapter
    if not path.exists():
        raise CheckpointError(
            f"expected a MotionAdapter folder or a motion-module .safetensors file at {path}, found nothing"
        )
    require_safetensors_file(path, "motion module")
    state = {strip_wrapper_prefix(k): v for k, v in load_safetensors(path).items()}
    if is_original_motion_layout(state):
        state = motion_original_to_diffusers(state)
    _check_motion_file(path, state, cfg)
    with torch.device("meta"):
        adapter = MotionAdapter(**motion_adapter_kwargs(cfg))
    expected = adapter.state_dict()
    for key, value in expected.items():
        if key.endswith("pos_embed.pe") and key not in state:
            # Fixed sinusoids, not trained: some files leave them out.
            state[key] = SinusoidalPositionalEmbedding(value.shape[2], value.shape[1]).pe
    check_state_dict(state, {k: tuple(v.shape) for k, v in expected.items()}, what=f"motion module {path}")
    adapter.load_state_dict(state, strict=True, assign=True)
    return adapter.float().eval()


def _check_motion_file(path: Path, state: Mapping[str, torch.Tensor], cfg: PresetConfig) -> None:
    lengths = sorted({int(v.shape[1]) for k, v in state.items() if k.endswith("pos_embed.pe") and v.ndim == 3})
    if len(lengths) > 1:
        raise CheckpointError(f"motion module {path}: temporal position encodings of different lengths {lengths}")
    if lengths and lengths[0] != cfg.motion.max_seq_length:
        raise CheckpointError(
            f"motion module {path} does not match preset {cfg.name!r}: max_seq_length (the temporal "
            f"position encoding length, pe shape (1, L, C)): expected {cfg.motion.max_seq_length}, "
            f"found {lengths[0]} (AnimateDiff v1 uses 24, v2 and v3 use 32)"
        )
    has_mid = any(k.startswith("mid_block.") for k in state)
    if has_mid != cfg.motion.use_mid_block:
        raise CheckpointError(
            f"motion module {path} does not match preset {cfg.name!r}: use_mid_block: expected "
            f"{cfg.motion.use_mid_block}, found {has_mid} (mid_block motion-module keys "
            f"{'present' if has_mid else 'absent'})"
        )


# --------------------------------------------------------------------------------------------------
# Adapters on the video UNet
# --------------------------------------------------------------------------------------------------


def load_adapter_weights(unet: UNetMotionModel, path: str | Path) -> None:
    """Load I2V-Adapter weights (official key layout, `.safetensors`) into an adapted UNet.

    A file that also holds other parts of the official UNet (IP-Adapter projections, motion modules,
    a whole UNet) is refused naming them, their counts and how to split them out
    (`i2v_adapter.checkpoints.official.check_adapter_only`)."""
    path = require_safetensors_file(path, "I2V-Adapter weights")
    state = load_safetensors(path)
    check_adapter_only(state, path)
    try:
        load_i2v_adapter_state_dict(unet, state)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err


def ip_adapter_layer_names(cfg: PresetConfig) -> list[str]:
    """Spatial cross-attention layers in the order IP-Adapter files number them (2D UNet order)."""
    with torch.device("meta"):
        unet2d = UNet2DConditionModel(**unet2d_kwargs(cfg))
    suffix = ".processor"
    return [name[: -len(suffix)] for name in unet2d.attn_processors if name.endswith("attn2" + suffix)]


def _ip_processors(unet: UNetMotionModel, cfg: PresetConfig, what: str) -> dict[str, nn.Module]:
    if cfg.image_encoder is None or not isinstance(unet.encoder_hid_proj, MultiIPAdapterImageProjection):
        raise ValueError(
            f"preset {cfg.name!r} has no content adapter, which the {what} need: pass --content-adapter "
            "(or cfg.with_overrides(image_encoder=ImageEncoderConfig()))"
        )
    return {name: unet.get_submodule(name).processor for name in ip_adapter_layer_names(cfg)}


def load_ip_adapter(unet: UNetMotionModel, path: str | Path, cfg: PresetConfig) -> None:
    """Load an IP-Adapter-Plus safetensors file over the installed content adapter.

    The file holds `image_proj.*` (the resampler, original or diffusers key layout) and
    `ip_adapter.<n>.to_k_ip.weight` / `.to_v_ip.weight`, where `n = 2 i + 1` for the i-th spatial
    cross-attention in 2D UNet order (the numbering of the original IP-Adapter code).
    """
    processors = _ip_processors(unet, cfg, "IP-Adapter-Plus weights")
    path = require_safetensors_file(path, "IP-Adapter-Plus weights")
    groups: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    stray = []
    for key, value in load_safetensors(path).items():
        group, _, rest = strip_wrapper_prefix(key).partition(".")
        if group in groups:
            groups[group][rest] = value
        else:
            stray.append(key)
    if stray:
        raise CheckpointError(
            f"IP-Adapter-Plus file {path}: expected only image_proj.* and ip_adapter.* keys, found {stray[:6]}"
        )
    proj = unet.encoder_hid_proj.image_projection_layers[0]
    proj_state = ip_adapter_plus_to_diffusers(groups["image_proj"])
    targets = dict(proj.state_dict())  # detached views: copy_ below writes the parameters
    for i, processor in enumerate(processors.values()):
        for which in ("to_k_ip", "to_v_ip"):
            targets[f"ip_adapter.{2 * i + 1}.{which}.weight"] = getattr(processor, which)[0].weight
    given = {**proj_state, **{f"ip_adapter.{k}": v for k, v in groups["ip_adapter"].items()}}
    check_state_dict(given, {k: tuple(v.shape) for k, v in targets.items()}, what=f"IP-Adapter-Plus {path}")
    with torch.no_grad():
        for key, value in given.items():
            targets[key].copy_(value.to(targets[key]))


def load_ip_projections(unet: UNetMotionModel, path: str | Path, cfg: PresetConfig) -> None:
    """Load IP-Adapter projections in diffusers' layout (`<layer>.processor.to_k_ip.0.weight`, as
    `python -m i2v_adapter.checkpoints.convert` splits them out of an official I2V-Adapter file)
    over the content adapter's, every cross-attention's `to_k_ip` and `to_v_ip`."""
    path = require_safetensors_file(path, "IP-Adapter projections")
    processors = _ip_processors(unet, cfg, "IP-Adapter projections")
    targets = {
        ip_projection_key(name, which): getattr(processor, which)[0].weight
        for name, processor in processors.items() for which in ("to_k_ip", "to_v_ip")
    }
    given = load_safetensors(path)
    check_state_dict(given, {k: tuple(v.shape) for k, v in targets.items()}, what=f"IP-Adapter projections {path}")
    with torch.no_grad():
        for key, value in given.items():
            targets[key].copy_(value.to(targets[key]))


def load_image_encoder(path: str | Path, cfg: PresetConfig) -> CLIPVisionModelWithProjection:
    """A CLIP vision encoder folder (transformers layout), checked against `cfg.image_encoder`."""
    if cfg.image_encoder is None:
        raise ValueError(f"preset {cfg.name!r} has no content adapter (image_encoder is None)")
    folder = _require_dir(path, "image encoder")
    model = _from_pretrained(CLIPVisionModelWithProjection, folder, "image encoder")
    reference = image_encoder_config(cfg.image_encoder)
    fields = (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "image_size", "patch_size", "projection_dim",
    )
    check_config(f"image encoder at {folder}", cfg, {f: getattr(reference, f) for f in fields}, model.config)
    return model


def load_lora_file(unet: nn.Module, path: str | Path, scale: float = 1.0) -> list[str]:
    """Fuse a LoRA `.safetensors` file into the UNet's spatial layers; returns the fused layers."""
    path = require_safetensors_file(path, "LoRA")
    try:
        return fuse_lora(unet, load_safetensors(path), scale)
    except CheckpointError as err:
        raise CheckpointError(f"LoRA {path}: {err}") from err


# --------------------------------------------------------------------------------------------------
# Everything together
# --------------------------------------------------------------------------------------------------


def _complete_unet_pair(
    cfg: PresetConfig, unet2d: UNet2DConditionModel | None, motion: MotionAdapter | None
) -> tuple[UNet2DConditionModel | None, MotionAdapter | None]:
    """If only one of the spatial UNet and the motion module was loaded, build the other (seeded)."""
    if unet2d is None and motion is not None:
        logger.warning("no SD1.5 checkpoint: the spatial UNet gets deterministic random weights (seed %d)", cfg.seed)
        with seeded(cfg.seed, "unet"):
            unet2d = UNet2DConditionModel(**unet2d_kwargs(cfg))
    elif motion is None and unet2d is not None:
        logger.warning("no motion module: the motion modules get deterministic random weights (seed %d)", cfg.seed)
        with seeded(cfg.seed, "motion"):
            motion = MotionAdapter(**motion_adapter_kwargs(cfg))
    return unet2d, motion


def load_unet(
    cfg: PresetConfig,
    *,
    unet2d: UNet2DConditionModel | None = None,
    motion_adapter: MotionAdapter | None = None,
    i2v_adapter: str | Path | None = None,
    loras: Sequence[str | Path] = (),
    lora_scales: Sequence[float] | None = None,
    ip_adapter: str | Path | None = None,
    ip_projections: str | Path | None = None,
) -> UNetMotionModel:
    """The adapted video UNet: spatial + motion weights, content adapter (IP-Adapter-Plus file, then
    `ip_projections` over its projections), I2V-Adapter, fused LoRAs.

    LoRAs are fused last and change the spatial weights only; the adapter's W_Q' keeps its own
    (loaded or initial) values.
    """
    scales = [1.0] * len(loras) if lora_scales is None else list(lora_scales)
    if len(scales) != len(loras):
        raise ValueError(f"expected one LoRA scale per LoRA ({len(loras)}), found {len(scales)}")
    unet2d, motion_adapter = _complete_unet_pair(cfg, unet2d, motion_adapter)
    unet = build_unet(cfg, unet2d, motion_adapter)
    if ip_adapter is not None:
        load_ip_adapter(unet, ip_adapter, cfg)
    if ip_projections is not None:
        load_ip_projections(unet, ip_projections, cfg)
    if i2v_adapter is not None:
        load_adapter_weights(unet, i2v_adapter)
    else:
        logger.warning("no I2V-Adapter weights given: the adapter keeps its initial weights")
    for path, scale in zip(loras, scales):
        fused = load_lora_file(unet, path, scale)
        logger.info("fused LoRA %s (scale %g) into %d layers", path, scale, len(fused))
    return unet.eval()


def load_components(
    cfg: PresetConfig,
    *,
    sd15: str | Path | None = None,
    motion_module: str | Path | None = None,
    i2v_adapter: str | Path | None = None,
    loras: Sequence[str | Path] = (),
    lora_scales: Sequence[float] | None = None,
    ip_adapter: str | Path | None = None,
    image_encoder: str | Path | None = None,
    ip_projections: str | Path | None = None,
) -> Components:
    """All components of `cfg` from local checkpoints; anything not given gets deterministic weights.

    Args:
        sd15: SD1.5 folder in diffusers layout (`unet/`, `vae/`, `text_encoder/`).
        motion_module: AnimateDiff `MotionAdapter` folder or motion-module `.safetensors` file.
        i2v_adapter: I2V-Adapter `.safetensors` (official key layout; convert `.pth` first).
        loras, lora_scales: LoRA `.safetensors` files fused into the spatial layers, with scales
            (default 1.0 each), in order.
        ip_adapter, image_encoder: IP-Adapter-Plus `.safetensors` and CLIP vision folder; need a
            preset with `image_encoder` set.
        ip_projections: IP-Adapter projections split out of an official I2V-Adapter file
            (`python -m i2v_adapter.checkpoints.convert`), loaded over `ip_adapter`'s.
    """
    cfg.verify()
    if (ip_adapter is not None or image_encoder is not None or ip_projections is not None) and cfg.image_encoder is None:
        raise ValueError(
            f"preset {cfg.name!r} has no content adapter: set image_encoder in the preset to load "
            "IP-Adapter-Plus or image encoder weights"
        )
    unet2d = vae = text_encoder = None
    if sd15 is not None:
        unet2d, vae, text_encoder = load_sd15_folder(sd15, cfg)
    motion = load_motion_adapter(motion_module, cfg) if motion_module is not None else None
    unet = load_unet(
        cfg,
        unet2d=unet2d,
        motion_adapter=motion,
        i2v_adapter=i2v_adapter,
        loras=loras,
        lora_scales=lora_scales,
        ip_adapter=ip_adapter,
        ip_projections=ip_projections,
    )
    del unet2d, motion  # from_unet2d copied their weights; free the duplicates before the rest loads
    encoder = None
    if cfg.image_encoder is not None:
        encoder = load_image_encoder(image_encoder, cfg) if image_encoder is not None else build_image_encoder(cfg)
    return Components(
        config=cfg,
        unet=unet,
        vae=vae if vae is not None else build_vae(cfg),
        text_encoder=text_encoder if text_encoder is not None else build_text_encoder(cfg),
        tokenizer=CLIPTokenizer.from_bpe_file(),
        scheduler=build_scheduler(cfg),
        image_encoder=encoder,
    )
