"""Cross-check the Java core on a real bundle: run `runtime_py` on it (onnxruntime or LiteRT) with fixed
noise and mask, recording every stage call, then run the Java pipeline over the same manifest and tokenizer
with the recorded stage outputs replayed, comparing every stage input Java computes with Python's, the
final latents and the uint8 frames.

    .venv/bin/python android_demo/replay_check.py BUNDLE [--backend tflite|onnx] [--scheduler ddim|euler]
        [--steps N] [--seed S]

Needs a JDK (javac, java). Exit status 0 when inputs and latents agree within 1e-5 and the frames are
identical; 1 otherwise, with the figures. The models never run in Java: this checks the core's
orchestration and numerics at a real bundle's shapes, not LiteRT on a phone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from i2v_core import cli  # noqa: E402
from runtime_py.fsp import sample_mask  # noqa: E402
from runtime_py.pipeline import RuntimePipeline  # noqa: E402

CORE = REPO / "android_demo" / "core"
PROMPT = "a red boat on a calm lake, golden hour"
TOLERANCE = 1e-5


class Recorder:
    """Wraps a stage runner; writes each call's inputs and outputs as raw float32 files."""

    def __init__(self, inner, directory: Path):
        self.inner, self.directory, self.calls = inner, directory, []
        self.specs = inner.specs

    def run(self, name, feeds):
        outputs = self.inner.run(name, feeds)
        k = len(self.calls)
        record = {"stage": name, "inputs": {}, "outputs": {}}
        for role, tensors in (("inputs", feeds), ("outputs", outputs)):
            for tensor, value in tensors.items():
                file = f"{k:03d}_{role}_{tensor}.f32"
                np.asarray(value, dtype="<f4").tofile(self.directory / file)
                record[role][tensor] = {"file": file, "shape": list(np.shape(value))}
        self.calls.append(record)
        return outputs


def record(bundle: Path, out: Path, backend: str, scheduler: str, steps: int, seed: int) -> None:
    pipe = RuntimePipeline.from_bundle(bundle, backend=backend)
    recorder = Recorder(pipe.runner, out)
    pipe.runner = recorder
    rng = np.random.default_rng(seed)
    height, width = pipe.image_size
    image = rng.integers(0, 256, size=(height, width, 3)).astype(np.uint8)
    cfg = pipe.config
    shape = (1, 4, cfg.num_frames, cfg.latent_height, cfg.latent_width)
    mask = sample_mask(shape, cfg.fsp.mask_p, rng)
    noise = rng.standard_normal(shape).astype(np.float32)
    result = pipe(image, PROMPT, scheduler=scheduler, num_inference_steps=steps, noise=noise, mask=mask, progress=False)
    for name, array, dtype in (("image.u8", image, np.uint8), ("noise.f32", noise, "<f4"), ("mask.f32", mask, "<f4"),
                               ("frames.u8", result.frames, np.uint8), ("latents.f32", result.latents, "<f4")):
        np.asarray(array, dtype=dtype).tofile(out / name)
    index = {"calls": recorder.calls, "prompt": PROMPT, "scheduler": scheduler, "steps": steps,
             "image_hw": [height, width], "latent_shape": list(shape)}
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")


def java_replay(recording: Path, bundle: Path, build: Path) -> dict:
    for tool in ("javac", "java"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found: install a JDK (apt-get install -y default-jdk-headless)")
    sources = sorted(str(p) for p in (CORE / "src" / "main" / "java").rglob("*.java"))
    sources.append(str(CORE / "src" / "test" / "java" / "org" / "i2vadapter" / "core" / "ReplayCheck.java"))
    subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-d", str(build), *sources], check=True)
    found = subprocess.run(["java", "-cp", str(build), "org.i2vadapter.core.ReplayCheck", str(recording), str(bundle)],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"error: the Java replay failed:\n{found.stderr.strip()}")
    return json.loads(found.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--backend", choices=("tflite", "onnx"), default="tflite")
    parser.add_argument("--scheduler", choices=("ddim", "euler"), default="ddim")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        recording, build = Path(tmp) / "recording", Path(tmp) / "classes"
        recording.mkdir()
        record(args.bundle, recording, args.backend, args.scheduler, args.steps, args.seed)
        result = java_replay(recording, args.bundle, build)
    print(json.dumps(result))
    ok = (result["calls"] == result["python_calls"] and result["max_input_diff"] <= TOLERANCE
          and result["max_latent_diff"] <= TOLERANCE and result["frame_bytes_differing"] == 0)
    print(f"{'agree' if ok else 'DIFFER'}: {result['calls']} stage calls, max input difference "
          f"{result['max_input_diff']:.3g}, max latent difference {result['max_latent_diff']:.3g}, "
          f"{result['frame_bytes_differing']} of {result['frame_bytes']} frame bytes differ")
    return 0 if ok else 1


if __name__ == "__main__":
    cli.entry(main, loggers=("android_demo",))
