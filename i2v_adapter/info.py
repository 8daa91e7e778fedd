"""`python -m i2v_adapter.info --preset sd15`: parameter counts and sizes of every stage.

Models are built on the meta device: nothing is allocated, so the full-size preset takes seconds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import torch

from i2v_adapter.model.adapter import adapter_parameters, spatial_self_attentions
from i2v_adapter.model.components import build_image_encoder, build_text_encoder, build_unet, build_vae
from i2v_core import cli
from i2v_core.config import PRESETS, ImageEncoderConfig, get_preset, tiny_image_encoder
from i2v_core.stages import stage_specs


@dataclass(frozen=True)
class ModelInfo:
    preset: str
    adapter_layers: int
    adapter_params: int
    unet_params: int  # adapted video UNet: spatial + motion + adapter (+ content adapter)
    motion_params: int
    stage_params: dict[str, int]

    @property
    def adapter_fraction(self) -> float:
        return self.adapter_params / self.unet_params

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["adapter_fraction"] = self.adapter_fraction
        return d


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_info(preset: str, *, with_image_encoder: bool = False) -> ModelInfo:
    """Count parameters of every stage of `preset` without allocating weights."""
    cfg = get_preset(preset)
    if with_image_encoder and cfg.image_encoder is None:
        cfg = cfg.with_overrides(image_encoder=tiny_image_encoder() if preset == "tiny" else ImageEncoderConfig())
    with torch.device("meta"):
        unet = build_unet(cfg)
        vae = build_vae(cfg)
        stages = {"text_encoder": _count(build_text_encoder(cfg))}
        if cfg.image_encoder is not None:
            stages["image_encoder"] = _count(build_image_encoder(cfg))
    stages["vae_encoder"] = _count(vae.encoder) + _count(vae.quant_conv)
    stages["unet"] = _count(unet)
    stages["vae_decoder"] = _count(vae.decoder) + _count(vae.post_quant_conv)
    motion = sum(_count(m) for name, m in unet.named_modules() if name.endswith("motion_modules"))
    return ModelInfo(
        preset=cfg.name,
        adapter_layers=len(spatial_self_attentions(unet)),
        adapter_params=sum(p.numel() for p in adapter_parameters(unet)),
        unet_params=stages["unet"],
        motion_params=motion,
        stage_params={name: stages[name] for name in stage_specs(cfg)},
    )


def format_info(info: ModelInfo) -> str:
    lines = [
        f"preset: {info.preset}",
        f"I2V-Adapter: {info.adapter_params:,} trainable parameters in {info.adapter_layers} layers "
        f"({100 * info.adapter_fraction:.2f}% of the {info.unet_params:,}-parameter video UNet)",
        f"motion modules: {info.motion_params:,} parameters",
        "",
        f"{'stage':<14}{'parameters':>16}{'fp32 MB':>10}{'fp16 MB':>10}{'int8 MB':>10}",
    ]
    for name, n in info.stage_params.items():
        lines.append(f"{name:<14}{n:>16,}{n * 4 / 1e6:>10.1f}{n * 2 / 1e6:>10.1f}{n / 1e6:>10.1f}")
    total = sum(info.stage_params.values())
    lines.append(f"{'total':<14}{total:>16,}{total * 4 / 1e6:>10.1f}{total * 2 / 1e6:>10.1f}{total / 1e6:>10.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i2v_adapter.info", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sd15", choices=sorted(PRESETS))
    parser.add_argument("--with-image-encoder", action="store_true", help="include the IP-Adapter-Plus content adapter")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    def command() -> None:
        info = model_info(args.preset, with_image_encoder=args.with_image_encoder)
        print(json.dumps(info.to_dict(), indent=2) if args.json else format_info(info))

    return cli.run(command)


if __name__ == "__main__":
    cli.entry(main, loggers=("i2v_adapter",))
