"""Checks of the numbers a user gives (standard library only), shared by the libraries and the CLIs.

Each check takes the name to report: the argument name in library code (`num_inference_steps`),
the flag in a CLI (`--steps`), so the error names what the user typed. NaN and infinity are refused
wherever a finite number is meant, and 0 is a value, never "the default": defaults are `None`.
"""

from __future__ import annotations

import math
import numbers

SEED_MAX = 2**32 - 1  # the seed range every generator here takes (numpy's, torch's and the app's)


def integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as an int, refused (`ValueError` naming `name`) unless an integer in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"expected {name} to be an integer, got {value!r}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"expected {name} in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"expected {name} <= {maximum}, got {value}")
    return int(value)


def finite(value, name: str, *, minimum: float | None = None) -> float:
    """`value` as a float, refused (`ValueError` naming `name`) unless a finite number >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected {name} to be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected {name} to be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"expected {name} >= {minimum:g}, got {value:g}")
    return float(value)


def seed(value, name: str = "seed") -> int:
    """A generator seed in [0, 2**32 - 1]."""
    return integer(value, name, minimum=0, maximum=SEED_MAX)


def sampling(num_inference_steps, guidance_scale, seed_value, fps=None, *,
             names=("num_inference_steps", "guidance_scale", "seed", "fps")) -> None:
    """The sampling arguments of both pipelines and generate commands: steps >= 1, guidance finite
    and >= 0, seed in [0, 2**32 - 1], fps >= 1; `None` steps, guidance or fps mean the default and
    are not checked. `names`: how errors name them (argument names, or a CLI's flags)."""
    steps_name, guidance_name, seed_name, fps_name = names
    if num_inference_steps is not None:
        integer(num_inference_steps, steps_name, minimum=1)
    if guidance_scale is not None:
        finite(guidance_scale, guidance_name, minimum=0.0)
    seed(seed_value, seed_name)
    if fps is not None:
        integer(fps, fps_name, minimum=1)
