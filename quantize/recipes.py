"""Quantization recipes as data: what each stage's weights and activations become, per target.

A `Recipe` is a frozen dataclass: a default `StageRecipe` (weights, activations), per-stage
overrides (e.g. keep `vae_decoder` at fp16), and per-stage layer groups kept in float (the mixed
recipe built from a sensitivity report). The code that applies a recipe is generic
(`quantize.onnx_backend`, `quantize.tflite_backend`); nothing here imports a runtime.

Named recipes (`RECIPES`):

| name | weights | activations | calibration | notes |
|---|---|---|---|---|
| `fp16` | fp16 | fp16 | - | ONNX: fp16 graph with fragile ops kept fp32; TFLite: fp16 weights, the delegate picks fp16 compute |
| `int8-weight-only` | int8 | float | - | per-channel symmetric; dequantized before each op |
| `int8-dynamic` | int8 | int8, quantized at run time | - | dynamic-range kernels |
| `w8a16` | int8 | int16, static | recorded pipeline data | what phone SD deployments ship (QNN W8A16) |
| `int8-static` | int8 | int8, static | recorded pipeline data | full integer; post-training int8 activations are known to hurt SD |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from i2v_core.stages import STAGE_NAMES

TARGETS = ("onnx", "tflite")


class UnsupportedRecipeError(ValueError):
    """A recipe asks for a weight / activation combination the target's runtime cannot run."""


class Weights(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class Activations(str, Enum):
    """`float`: as exported (fp32); `fp16`: fp16 compute; `dynamic-int8`: quantized per call at run
    time; `int8` / `int16`: static, ranges calibrated on recorded data; `dynamic-int16`: no runtime
    here has such kernels (kept so that a recipe asking for it gets a clear error)."""

    FLOAT = "float"
    FP16 = "fp16"
    DYNAMIC_INT8 = "dynamic-int8"
    DYNAMIC_INT16 = "dynamic-int16"
    INT8 = "int8"
    INT16 = "int16"


STATIC_ACTIVATIONS = (Activations.INT8, Activations.INT16)

# Why a target cannot run a combination; combinations not listed are supported.
_UNSUPPORTED: dict[str, dict[tuple[Weights, Activations], str]] = {
    "onnx": {
        (Weights.INT8, Activations.DYNAMIC_INT16): "onnxruntime's DynamicQuantizeLinear produces 8-bit activations only",
        (Weights.INT8, Activations.FP16): "onnxruntime has no int8-weight kernels with fp16 activations on CPU",
        (Weights.FP16, Activations.FLOAT): "onnxruntime's float16 conversion casts activations to fp16 too; use `fp16`",
    },
    "tflite": {
        (Weights.INT8, Activations.DYNAMIC_INT16): "LiteRT's dynamic-range kernels quantize activations to int8 only",
        (Weights.INT8, Activations.FP16): "ai-edge-quantizer has no int8-weight recipe with fp16 activations",
    },
}


@dataclass(frozen=True)
class StageRecipe:
    """What one stage becomes: `weights` and `activations` precision."""

    weights: Weights = Weights.FP32
    activations: Activations = Activations.FLOAT

    @property
    def is_float(self) -> bool:
        return self.weights == Weights.FP32 and self.activations == Activations.FLOAT

    @property
    def needs_calibration(self) -> bool:
        return self.activations in STATIC_ACTIVATIONS

    @property
    def label(self) -> str:
        """`w8a16`-style short name: weights bits, activations (f = float, d = dynamic)."""
        w = {Weights.FP32: "f32", Weights.FP16: "f16", Weights.INT8: "8"}[self.weights]
        a = {
            Activations.FLOAT: "f32", Activations.FP16: "f16", Activations.DYNAMIC_INT8: "d8",
            Activations.DYNAMIC_INT16: "d16", Activations.INT8: "8", Activations.INT16: "16",
        }[self.activations]
        return f"w{w}a{a}"

    def verify(self) -> None:
        """Combinations that make no sense on any target: integer activations need integer weights."""
        if self.activations not in (Activations.FLOAT, Activations.FP16) and self.weights != Weights.INT8:
            raise ValueError(
                f"expected int8 weights with {self.activations.value} activations, found {self.weights.value} weights"
            )
        if self.activations == Activations.FP16 and self.weights == Weights.FP32:
            raise ValueError("expected fp16 (or int8) weights with fp16 activations, found fp32 weights")

    def check_target(self, target: str, recipe: str, stage: str) -> None:
        """Raise `UnsupportedRecipeError` naming recipe, stage, target and why, if `target` cannot run it."""
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
        why = _UNSUPPORTED[target].get((self.weights, self.activations))
        if why is not None:
            raise UnsupportedRecipeError(
                f"recipe {recipe!r} cannot run on target {target!r}: {stage} asks for {self.weights.value} weights "
                f"with {self.activations.value} activations, and {why}"
            )

    def to_dict(self) -> dict:
        return {"weights": self.weights.value, "activations": self.activations.value}

    @classmethod
    def from_dict(cls, d: dict) -> "StageRecipe":
        unknown = sorted(set(d) - {"weights", "activations"})
        if unknown:
            raise ValueError(f"unknown stage recipe fields {unknown}: expected weights, activations")
        return cls(_enum(Weights, d.get("weights", "fp32"), "weights"), _enum(Activations, d.get("activations", "float"), "activations"))


def _enum(cls, value, what: str):
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(m.value for m in cls)}") from None


@dataclass(frozen=True)
class Recipe:
    """A named recipe: `default` for every stage, `overrides` per stage, and `keep_float` layer groups
    (names from `quantize.groups`) per stage that stay in float."""

    name: str
    default: StageRecipe
    overrides: tuple[tuple[str, StageRecipe], ...] = ()
    keep_float: tuple[tuple[str, tuple[str, ...]], ...] = ()
    description: str = ""
    min_psnr_db: float | None = None  # per-stage floor vs PyTorch fp32; None: reported, not gated
    min_guidance_correlation: float | None = None  # UNet cond - uncond delta correlation floor

    def for_stage(self, stage: str) -> StageRecipe:
        return dict(self.overrides).get(stage, self.default)

    def stage_precision(self, stage: str) -> str:
        """The manifest's per-stage precision: a recipe name (`fp32`, `fp16`, `w8a16`, ...), or the
        `w8a16`-style label for a custom combination; `+float:N` when N layer groups stay float."""
        stage_recipe = self.for_stage(stage)
        if stage_recipe.is_float:
            name = "fp32"
        else:
            name = next((n for n, r in RECIPES.items() if r.default == stage_recipe), stage_recipe.label)
        groups = self.float_groups(stage)
        return f"{name}+float:{len(groups)}" if groups else name

    def float_groups(self, stage: str) -> tuple[str, ...]:
        return dict(self.keep_float).get(stage, ())

    @property
    def needs_calibration(self) -> bool:
        return self.default.needs_calibration or any(r.needs_calibration for _, r in self.overrides)

    def verify(self, stages: tuple[str, ...] = STAGE_NAMES) -> None:
        """Field checks: a name, known stages, sensible weight / activation pairs. `ValueError` names the field."""
        if not self.name:
            raise ValueError("expected a recipe name, found an empty string")
        self.default.verify()
        for what, entries in (("overrides", self.overrides), ("keep_float", self.keep_float)):
            names = [s for s, _ in entries]
            unknown = [s for s in names if s not in stages]
            if unknown:
                raise ValueError(f"recipe {self.name!r} {what}: unknown stage(s) {unknown}, expected some of {list(stages)}")
            if len(set(names)) != len(names):
                raise ValueError(f"recipe {self.name!r} {what}: a stage is listed twice in {names}")
        for _, stage_recipe in self.overrides:
            stage_recipe.verify()

    def check_target(self, target: str, stages) -> None:
        """`UnsupportedRecipeError` if any of `stages` asks `target` for what it cannot run."""
        for stage in stages:
            self.for_stage(stage).check_target(target, self.name, stage)

    def with_overrides(self, **stages: StageRecipe) -> "Recipe":
        merged = dict(self.overrides) | stages
        return replace(self, overrides=tuple(sorted(merged.items())))

    def with_keep_float(self, groups: dict[str, tuple[str, ...]], name: str | None = None) -> "Recipe":
        merged = dict(self.keep_float) | {s: tuple(g) for s, g in groups.items() if g}
        return replace(self, name=name or self.name, keep_float=tuple(sorted(merged.items())))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "default": self.default.to_dict(),
            "overrides": {s: r.to_dict() for s, r in self.overrides},
            "keep_float": {s: list(g) for s, g in self.keep_float},
            "description": self.description,
            "min_psnr_db": self.min_psnr_db,
            "min_guidance_correlation": self.min_guidance_correlation,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        fields = ("name", "default", "overrides", "keep_float", "description", "min_psnr_db", "min_guidance_correlation")
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown recipe fields {unknown}: expected {', '.join(fields)}")
        recipe = cls(
            name=str(d.get("name", "")),
            default=StageRecipe.from_dict(d.get("default", {})),
            overrides=tuple(sorted((s, StageRecipe.from_dict(r)) for s, r in d.get("overrides", {}).items())),
            keep_float=tuple(sorted((s, tuple(g)) for s, g in d.get("keep_float", {}).items())),
            description=str(d.get("description", "")),
            min_psnr_db=d.get("min_psnr_db"),
            min_guidance_correlation=d.get("min_guidance_correlation"),
        )
        recipe.verify()
        return recipe


# Recipes offered as defaults: gated on a per-stage PSNR floor and the UNet guidance-delta correlation.
DEFAULT_RECIPES = ("fp16", "int8-weight-only", "w8a16")
GUIDANCE_FLOOR = 0.98


def _named(name: str, weights: Weights, activations: Activations, description: str, floor: float | None) -> Recipe:
    corr = GUIDANCE_FLOOR if name in DEFAULT_RECIPES else None
    return Recipe(name, StageRecipe(weights, activations), description=description, min_psnr_db=floor, min_guidance_correlation=corr)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        _named("fp16", Weights.FP16, Activations.FP16, "fp16 weights and compute; fragile ops stay fp32 (ONNX)", 40.0),
        _named("int8-weight-only", Weights.INT8, Activations.FLOAT, "int8 per-channel weights, float compute", 30.0),
        _named("int8-dynamic", Weights.INT8, Activations.DYNAMIC_INT8, "int8 weights, activations quantized per call", None),
        _named("w8a16", Weights.INT8, Activations.INT16, "int8 weights, int16 static activations (calibrated)", 30.0),
        _named("int8-static", Weights.INT8, Activations.INT8, "int8 weights and static activations (calibrated)", None),
    )
}


def get_recipe(name_or_path: str | Path) -> Recipe:
    """A named recipe, or a recipe JSON file (`Recipe.to_dict` layout). `ValueError` lists the names."""
    name = str(name_or_path)
    if name in RECIPES:
        return RECIPES[name]
    path = Path(name)
    if name.endswith(".json") and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"could not read recipe file {path}: {err}") from err
        return Recipe.from_dict(data)
    raise ValueError(f"unknown recipe {name!r}: expected one of {', '.join(RECIPES)} or a recipe .json file")


def parse_stage_override(spec: str) -> tuple[str, StageRecipe]:
    """`vae_decoder=fp16` -> `("vae_decoder", <fp16's stage recipe>)`; the value is a named recipe."""
    stage, sep, value = spec.partition("=")
    if not sep or not stage or not value:
        raise ValueError(f"expected STAGE=RECIPE (e.g. vae_decoder=fp16), got {spec!r}")
    if value == "fp32":
        return stage, StageRecipe()
    if value not in RECIPES:
        raise ValueError(f"unknown recipe {value!r} for stage {stage}: expected fp32 or one of {', '.join(RECIPES)}")
    return stage, RECIPES[value].default
