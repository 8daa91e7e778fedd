"""Published phone figures the estimate uses, with their sources, and which numbers are assumptions.

Change a number here and every estimate follows. `assumed` lists the fields that no vendor publishes
(they are our assumptions, stated in the report); everything else is from the cited sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SocSpec:
    name: str
    npu: str
    peak_int8_tops: float  # dense int8 tera-operations per second (1 MAC = 2 operations)
    memory: str
    memory_gbps: float  # GB/s = transfer rate (MT/s) x bus width (bytes)
    anchor: str  # the same-generation Qualcomm phone whose measured SD1.5 UNet calibrates the estimate
    sources: tuple[str, ...]
    assumed: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Anchor:
    """A measured SD1.5 UNet call on a phone NPU (the public figure, and what it computed)."""

    name: str
    soc: str
    unet_ms: float
    precision: str
    shapes: str
    source: str


# Qualcomm AI Hub, Stable Diffusion v1.5 (w8a16): UNet per call. One call = one latent (batch 1,
# 64x64, 77 text tokens); classifier-free guidance runs two calls. [REFERENCE.md, On-device anchors]
ANCHORS = {
    "S24": Anchor("Galaxy S24", "Snapdragon 8 Gen 3", 76.7, "w8a16", "batch 1, 4x64x64 latent, 77 tokens",
                  "Qualcomm AI Hub, Stable-Diffusion-v1.5 (w8a16), UNet on Samsung Galaxy S24"),
    "S25": Anchor("Galaxy S25", "Snapdragon 8 Elite", 62.1, "w8a16", "batch 1, 4x64x64 latent, 77 tokens",
                  "Qualcomm AI Hub, Stable-Diffusion-v1.5 (w8a16), UNet on Samsung Galaxy S25"),
}

SOCS = {
    "dimensity-9300": SocSpec(
        name="Dimensity 9300 (MT6989)",
        npu="APU 790",
        peak_int8_tops=40.0,
        memory="LPDDR5T 9600 MT/s",
        memory_gbps=9600e6 * 8 / 1e9,  # 76.8 GB/s on a 64-bit bus
        anchor="S24",
        sources=(
            "MediaTek Dimensity 9300 launch (Nov 2023): APU 790, LPDDR5T 9600 Mbps, 'Stable Diffusion image in "
            "under one second', 2x integer and FP16 performance of APU 690",
        ),
        assumed=("peak_int8_tops (MediaTek publishes no TOPS figure for APU 790)", "64-bit memory bus"),
    ),
    "dimensity-9400": SocSpec(
        name="Dimensity 9400 (MT6991)",
        npu="NPU 890",
        peak_int8_tops=50.0,
        memory="LPDDR5X 10667 MT/s",
        memory_gbps=10667e6 * 8 / 1e9,  # 85.3 GB/s on a 64-bit bus
        anchor="S25",
        sources=(
            "MediaTek Dimensity 9400 launch (Oct 2024): NPU 890, first SoC with LPDDR5X 10.7 Gbps, "
            "'80% faster LLM prompt performance' than Dimensity 9300",
        ),
        assumed=("peak_int8_tops (MediaTek publishes no TOPS figure for NPU 890)", "64-bit memory bus"),
    ),
}

# w8a16 (int8 weights, int16 activations) runs int8 x int16 MACs: assumed at half the int8 rate.
W8A16_RATE = 0.5
# Weight bytes per parameter for each precision's weights.
WEIGHT_BYTES = {"fp32": 4, "fp16": 2, "w8a16": 1, "int8-weight-only": 1, "int8-dynamic": 1, "int8-static": 1}
