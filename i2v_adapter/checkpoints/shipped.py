"""The trained tiny default shipped in `i2v_adapter/weights/tiny/`: its layout, writer and loaders.

`default_components(cfg)` builds a preset and loads these weights where they fit it (the tiny
preset); `build_components` alone gives seeded random weights. MODEL_CARD.md says how the weights
were trained and what they can do.

One safetensors file per trained part, keys as the module's own `named_parameters()` (diffusers /
transformers layouts), stored as float16 and upcast to the module's dtype on load:

- `vae.safetensors`: `AutoencoderKL` (stage `vae` of `i2v_adapter.training.train`);
- `unet.safetensors`: `UNetMotionModel` without the I2V-Adapter, i.e. the base T2V model (stage `t2v`);
- `adapter.safetensors`: the I2V-Adapter, official key layout (stage `adapter`);
- `text_encoder.safetensors`: the tiny CLIP text encoder (the `t2v` stage's when it trained one,
  else its seeded random weights).

`preset.json` holds the preset config they were trained with: `uses_shipped_weights(cfg)` is true
only for the same architecture, so a preset whose architecture changed never gets stale weights.
`python -m i2v_adapter.training.weights_folder` writes such a folder from training outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import nn

from i2v_adapter.checkpoints.io import load_i2v_adapter, load_safetensors, save_safetensors
from i2v_adapter.model.adapter import (
    check_state_dict,
    i2v_adapter_state_dict,
    install_i2v_adapter,
    is_installed,
    remove_i2v_adapter,
)
from i2v_adapter.model.components import build_components
from i2v_core.config import PRESETS
from i2v_core.media import atomic_output_dir
from i2v_core.outputs import OutputKind

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
PARTS = ("vae", "unet", "adapter", "text_encoder")
# The preset config the weights were trained with: they load only onto the same architecture.
ARCHITECTURE_FILE = "preset.json"
WEIGHTS_OUTPUT = OutputKind("weights folder", ARCHITECTURE_FILE)  # what --overwrite may replace
_ARCHITECTURE_KEYS = ("unet", "motion", "vae", "text_encoder")


def shipped_dir(preset: str) -> Path:
    return WEIGHTS_DIR / preset


def has_shipped_weights(preset: str) -> bool:
    """True when every part's file and the architecture record are present for `preset`."""
    files = [f"{part}.safetensors" for part in PARTS] + [ARCHITECTURE_FILE]
    return all((shipped_dir(preset) / name).is_file() for name in files)


def uses_shipped_weights(cfg) -> bool:
    """Whether `cfg` is a preset with shipped trained weights, at the architecture they were trained for.

    Overrides that keep the architecture (frame count, seed, sampling, FSP, attention variant) still
    get them; another architecture or a content adapter (`image_encoder`) gets seeded random weights.
    """
    if cfg.name not in PRESETS or cfg.image_encoder is not None or not has_shipped_weights(cfg.name):
        return False
    trained_for = json.loads((shipped_dir(cfg.name) / ARCHITECTURE_FILE).read_text(encoding="utf-8"))
    return all(json.loads(json.dumps(cfg.to_dict()[k])) == trained_for[k] for k in _ARCHITECTURE_KEYS)


def module_weights(module: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters a weights file holds: all of them, except the I2V-Adapter's (`.processor.`)."""
    return {name: p for name, p in module.named_parameters() if ".processor." not in name}


def load_module_weights(module: nn.Module, path: str | Path, *, what: str) -> None:
    """Copy a safetensors file onto `module_weights(module)`, upcast to each parameter's dtype."""
    given = load_safetensors(path)
    params = module_weights(module)
    check_state_dict(given, {k: tuple(p.shape) for k, p in params.items()}, what=f"{what} ({path})")
    with torch.no_grad():
        for key, value in given.items():
            params[key].copy_(value.to(params[key]))


def save_module_weights(module: nn.Module, path: str | Path, *, dtype=torch.float16, overwrite=False) -> Path:
    """`module_weights(module)` to safetensors in `dtype` (float16: half the size; loaders upcast)."""
    tensors = {k: p.detach().to(dtype).contiguous() for k, p in module_weights(module).items()}
    return save_safetensors(tensors, path, overwrite=overwrite, metadata={"format": "i2v-adapter-tiny"})


def load_trained(components, *, vae=None, unet=None, adapter=None, text_encoder=None) -> None:
    """Load the given files onto `components` (built by `models.build_components`).

    After a new `unet` without an `adapter`, the adapter is reinstalled so that W_Q' copies the
    loaded `to_q` and W_O' is zero: the loaded T2V model exactly, as adapter training starts.
    """
    if vae is not None:
        load_module_weights(components.vae, vae, what="VAE")
    if text_encoder is not None:
        load_module_weights(components.text_encoder, text_encoder, what="text encoder")
    if unet is not None:
        load_module_weights(components.unet, unet, what="T2V UNet")
        if is_installed(components.unet):
            remove_i2v_adapter(components.unet)
            install_i2v_adapter(components.unet, components.config.attention)
    if adapter is not None:
        load_i2v_adapter(components.unet, adapter)


def shipped_record(cfg) -> dict | None:
    """What a manifest records of the trained weights `default_components(cfg)` loads (None: random
    weights): the folder, relative to the package, and each file's sha256."""
    if not uses_shipped_weights(cfg):
        return None
    folder = shipped_dir(cfg.name)
    digests = {f"{part}.safetensors": hashlib.sha256((folder / f"{part}.safetensors").read_bytes()).hexdigest()
               for part in PARTS}
    return {"folder": str(folder.relative_to(WEIGHTS_DIR.parent.parent)), "sha256": digests}


def build_recorded(cfg, record: dict):
    """The components a manifest's deterministic `weights` record names: `random` (seeded) or
    `embedded-default` (the preset's own: its shipped trained weights when the record says so, and
    then only the same files, by sha256). Raises `ValueError` when the record and the package differ."""
    source = record.get("source")
    if source not in ("embedded-default", "random"):
        raise ValueError(f"expected weights source embedded-default or random, got {source!r}")
    if source == "random":
        return build_components(cfg)
    recorded, current = record.get("trained"), shipped_record(cfg)
    if (recorded or {}).get("sha256") != (current or {}).get("sha256"):
        def describe(r):
            return f"trained weights {r['folder']}" if r else "seeded random weights"

        raise ValueError(
            f"the bundle was exported from the {cfg.name} preset's {describe(recorded)}, but this package's "
            f"{cfg.name} default is {describe(current)}{' with other files' if recorded and current else ''}: "
            "re-export the bundle with this package"
        )
    return default_components(cfg)


def default_components(cfg, *, random_weights: bool = False):
    """The preset's own components: built (`build_components`), then its shipped trained weights
    loaded where `uses_shipped_weights(cfg)` (the tiny default); otherwise the seeded random weights.
    `random_weights=True` always gives the random ones."""
    components = build_components(cfg)
    if not random_weights and uses_shipped_weights(cfg):
        load_shipped(components)
    return components


def load_shipped(components) -> None:
    """The trained weights of `components.config.name` from `i2v_adapter/weights/<preset>/`."""
    folder = shipped_dir(components.config.name)
    if not has_shipped_weights(components.config.name):
        missing = [p for p in PARTS if not (folder / f"{p}.safetensors").is_file()]
        raise FileNotFoundError(f"expected trained weights {missing} in {folder}, found none for them")
    load_trained(components, **{part: folder / f"{part}.safetensors" for part in PARTS})


def write_weights_folder(components, out: str | Path, *, overwrite: bool = False) -> Path:
    """Every part of `components` as float16 files in `out` (atomically), the layout `load_shipped` reads."""
    with atomic_output_dir(out, overwrite=overwrite, kind=WEIGHTS_OUTPUT) as tmp:
        for part in ("vae", "unet", "text_encoder"):
            save_module_weights(getattr(components, part), tmp / f"{part}.safetensors")
        adapter = {k: v.half() for k, v in i2v_adapter_state_dict(components.unet).items()}
        save_safetensors(adapter, tmp / "adapter.safetensors", metadata={"format": "i2v-adapter"})
        (tmp / ARCHITECTURE_FILE).write_text(json.dumps(components.config.to_dict(), indent=1) + "\n")
    return Path(out)
