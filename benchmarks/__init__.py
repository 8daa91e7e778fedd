"""Benchmarks of the exported stages .

- `python -m benchmarks.run`: host latency, size and peak memory per stage x backend x precision,
  the adapter's cost, per step and per video, a phone estimate; `results.json`, `report.md`, plots.
- `python -m benchmarks.device`: the same figures from a phone, with LiteRT's `benchmark_model` over adb.
- `python -m benchmarks.estimate`: MACs and weight bytes per stage and a roofline / anchor-scaled
  latency estimate for Dimensity 9300 / 9400 class NPUs.

Importing the package imports no torch; measurements run each row in a child process.
"""

from i2v_core.cli import before_heavy_imports

before_heavy_imports()  # before torch-using imports in the children: see i2v_core.cli.before_heavy_imports
