"""The torch-free runtime core against its PyTorch twins: schedulers vs diffusers per step, FSP vs
`i2v_adapter.model.fsp`, stage runners' contract checks, no torch on import, and the whole tiny pipeline
vs `I2VPipeline` on identical noise and mask. (The tests may import torch; `runtime_py` may not.)"""

import subprocess
import sys

import diffusers
import numpy as np
import pytest
import torch
from conftest import write_fake_bundle

from i2v_adapter.model import fsp as torch_fsp
from i2v_adapter.pipeline import I2VPipeline, with_fsp
from i2v_core.config import FSPConfig, SchedulerConfig, get_preset
from i2v_core.media import make_test_card
from i2v_core.stages import StageSpec, TensorSpec
from runtime_py import fsp as np_fsp
from runtime_py.pipeline import RuntimePipeline
from runtime_py.runners import CallableRunner, LiteRTRunner, OnnxRunner, StageRunner
from runtime_py.schedulers import alphas_cumprod, make_scheduler

STEP_TOL = 1e-6  # per step, relative to the sample's scale (max(1, max |x|)): float32 rounding, not drift


def step_error(got: np.ndarray, expected: np.ndarray) -> float:
    """Max abs difference in units of the sample's scale: Euler's first samples reach ~100, where one
    float32 ulp is 7.6e-6, and whether numpy and torch round alike there depends on the CPU's SIMD path."""
    return float(np.abs(got - expected).max() / max(1.0, float(np.abs(expected).max())))
PROMPT = "a red ball rolls to the right"
SHAPE = (1, 4, 7, 16, 16)  # (B, C, F-1, h, w): the frames a step moves


def diffusers_scheduler(name: str, cfg: SchedulerConfig = SchedulerConfig()):
    """diffusers' class as a pipeline swaps it in: `from_config` of the preset's DDIM config."""
    ddim = diffusers.DDIMScheduler(**cfg.to_diffusers())
    cls = {"ddim": diffusers.DDIMScheduler, "euler": diffusers.EulerDiscreteScheduler, "lcm": diffusers.LCMScheduler}
    return cls[name].from_config(ddim.config)


def fake_noise_pred(model_in: np.ndarray, t, x0: np.ndarray, table: np.ndarray, rng) -> np.ndarray:
    """A plausible UNet: the noise that takes the (VP-scaled) input back to `x0`, plus error.

    Keeps the trajectory at realistic magnitudes (about 5 for VP samples, 100 for Euler's first).
    """
    a = float(table[int(round(float(t)))])
    eps = (model_in - np.sqrt(a) * x0) / np.sqrt(1.0 - a) + 0.1 * rng.standard_normal(model_in.shape)
    return eps.astype(np.float32)


def as_velocity(eps: np.ndarray, model_in: np.ndarray, t, table: np.ndarray) -> np.ndarray:
    """The v-prediction UNet's output for the same guess: `sqrt(a) eps - sqrt(1 - a) x0`, x0 implied by `eps`."""
    a = float(table[int(round(float(t)))])
    x0 = (model_in - np.sqrt(1.0 - a) * eps) / np.sqrt(a)
    return (np.sqrt(a) * eps - np.sqrt(1.0 - a) * x0).astype(np.float32)


def run_both(name: str, steps: int, skip: int = 0, cfg: SchedulerConfig = SchedulerConfig()) -> dict[str, float]:
    """Step diffusers and ours on the same inputs each step; worst scale-relative differences."""
    ref, ours = diffusers_scheduler(name, cfg), make_scheduler(name, cfg)
    ref.set_timesteps(steps)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, ref.timesteps.numpy())
    assert ours.init_noise_sigma == float(ref.init_noise_sigma)
    rng = np.random.default_rng(steps)
    x0 = rng.standard_normal(SHAPE)
    table = ref.alphas_cumprod.numpy()
    start = rng.standard_normal(SHAPE).astype(np.float32)
    if skip:  # as FSP starts: the clean latent noised to the first timestep visited
        x = ref.add_noise(torch.from_numpy(x0).float(), torch.from_numpy(start), ref.timesteps[skip].reshape(1)).numpy()
    else:
        x = start * np.float32(ours.init_noise_sigma)
    worst = {"step": 0.0, "scale_model_input": 0.0}
    gen, twin = torch.Generator().manual_seed(steps), torch.Generator().manual_seed(steps)
    for i, t in enumerate(ref.timesteps[skip:], start=skip):
        ref_in = ref.scale_model_input(torch.from_numpy(x), t).numpy()
        scaled = ours.scale_model_input(x, t.item())
        worst["scale_model_input"] = max(worst["scale_model_input"], step_error(scaled, ref_in))
        eps = fake_noise_pred(ref_in, t, x0, table, rng)
        if cfg.prediction_type == "v_prediction":
            eps = as_velocity(eps, ref_in, t, table)
        extra = {}
        if name == "lcm":
            expected = ref.step(torch.from_numpy(eps), t, torch.from_numpy(x), generator=gen).prev_sample.numpy()
            if i < steps - 1:  # diffusers draws the between-step noise from `gen`; draw the same from its twin
                extra["noise"] = torch.randn(SHAPE, generator=twin).numpy()
        else:
            expected = ref.step(torch.from_numpy(eps), t, torch.from_numpy(x)).prev_sample.numpy()
        got = ours.step(eps, t.item(), x, **extra)
        assert got.dtype == np.float32 and got.shape == SHAPE
        worst["step"] = max(worst["step"], step_error(got, expected))
        x = expected
    return worst


@pytest.mark.parametrize("schedule", ["linear", "scaled_linear"])
def test_alphas_cumprod_match_diffusers(schedule):
    """Equal to the bit with torch 2.13 on x86-64; within an ulp wherever torch rounds its linspace differently."""
    cfg = SchedulerConfig(beta_schedule=schedule)
    ours, theirs = alphas_cumprod(cfg), diffusers.DDIMScheduler(**cfg.to_diffusers()).alphas_cumprod.numpy()
    assert ours.dtype == np.float32 and ours.shape == (1000,)
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=1)


SCHEDULES = [("ddim", 10), ("ddim", 25), ("euler", 10), ("euler", 25), ("lcm", 4), ("lcm", 8)]


@pytest.mark.parametrize("name,steps", SCHEDULES)
def test_scheduler_steps_match_diffusers(name, steps):
    worst = run_both(name, steps)
    assert worst["step"] <= STEP_TOL, f"{name} {steps} steps: scaled max abs {worst['step']:.3g} > {STEP_TOL}"
    assert worst["scale_model_input"] <= STEP_TOL, f"{name}: scale_model_input max abs {worst['scale_model_input']:.3g}"


@pytest.mark.parametrize("name", ["ddim", "euler", "lcm"])
def test_scheduler_started_mid_schedule_matches_diffusers(name):
    """FSP strength < 1 skips the first timesteps: Euler and LCM must find their step index from t."""
    worst = run_both(name, 8, skip=3)
    assert worst["step"] <= STEP_TOL and worst["scale_model_input"] <= STEP_TOL, worst


@pytest.mark.parametrize("name", ["ddim", "euler", "lcm"])
def test_add_noise_matches_diffusers(name):
    ref, ours = diffusers_scheduler(name), make_scheduler(name)
    ref.set_timesteps(10)
    ours.set_timesteps(10)
    rng = np.random.default_rng(0)
    x, noise = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2))
    for t in ref.timesteps[:3]:
        expected = ref.add_noise(torch.from_numpy(x), torch.from_numpy(noise), t.reshape(1)).numpy()
        assert step_error(ours.add_noise(x, noise, t.item()), expected) <= STEP_TOL


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_clip_sample_matches_diffusers(prediction_type):
    cfg = SchedulerConfig(clip_sample=True, prediction_type=prediction_type)
    ref, ours = diffusers.DDIMScheduler(**cfg.to_diffusers()), make_scheduler("ddim", cfg)
    ref.set_timesteps(5)
    ours.set_timesteps(5)
    rng = np.random.default_rng(0)
    x, out = (rng.standard_normal(SHAPE).astype(np.float32) * 3 for _ in range(2))
    t = ref.timesteps[1]
    expected = ref.step(torch.from_numpy(out), t, torch.from_numpy(x)).prev_sample.numpy()
    assert step_error(ours.step(out, t.item(), x), expected) <= STEP_TOL


@pytest.mark.parametrize("name,steps", [("ddim", 10), ("euler", 10), ("lcm", 4)])
def test_v_prediction_steps_match_diffusers(name, steps):
    """A v-prediction UNet (velocity sqrt(a) eps - sqrt(1 - a) x0): every step against diffusers'."""
    v = SchedulerConfig(prediction_type="v_prediction")
    assert diffusers_scheduler(name, v).config.prediction_type == "v_prediction"
    worst = run_both(name, steps, cfg=v)
    assert worst["step"] <= STEP_TOL and worst["scale_model_input"] <= STEP_TOL, worst
    eps, vel = make_scheduler(name), make_scheduler(name, v)
    eps.set_timesteps(steps)
    vel.set_timesteps(steps)
    rng = np.random.default_rng(1)
    x, out = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(2))
    t, extra = eps.timesteps[0], ({"noise": x} if name == "lcm" else {})
    assert not np.allclose(eps.step(out, t, x, **extra), vel.step(out, t, x, **extra))  # read as a velocity


def test_lcm_noise_from_generator_is_seeded():
    outs = []
    for seed in (0, 0, 1):
        s = make_scheduler("lcm")
        s.set_timesteps(4)
        x = np.ones(SHAPE, np.float32)
        outs.append(s.step(x, s.timesteps[0], x, generator=np.random.default_rng(seed)))
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])
    last = make_scheduler("lcm")
    last.set_timesteps(4)
    with pytest.raises(ValueError, match="needs `generator` or `noise`"):
        last.step(x, last.timesteps[0], x)


def test_scheduler_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="unknown scheduler 'dpm': expected one of ddim, euler, lcm"):
        make_scheduler("dpm")
    with pytest.raises(ValueError, match=r"expected num_inference_steps in \[1, 50\], got 60"):
        make_scheduler("lcm").set_timesteps(60)
    with pytest.raises(ValueError, match="call set_timesteps"):
        make_scheduler("ddim").step(np.zeros(3, np.float32), 1, np.zeros(3, np.float32))
    euler = make_scheduler("euler")
    euler.set_timesteps(4)
    with pytest.raises(ValueError, match="timestep 500.0 is not in the schedule"):
        euler.scale_model_input(np.zeros(3, np.float32), 500)
    for name in ("ddim", "euler", "lcm"):
        with pytest.raises(ValueError, match="supports prediction_type 'epsilon' or 'v_prediction', got 'sample'"):
            make_scheduler(name, SchedulerConfig(prediction_type="sample"))


# --- FSP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel,sigma", [(9, 18.0), (5, 1.0), (3, 0.5)])
def test_blur_matches_torch(kernel, sigma):
    kernel_np = np_fsp.gaussian_kernel1d(kernel, sigma)
    np.testing.assert_array_equal(kernel_np, torch_fsp.gaussian_kernel1d(kernel, sigma).numpy())
    x = np.random.default_rng(0).standard_normal((2, 4, 16, 12)).astype(np.float32)
    expected = torch_fsp.gaussian_blur(torch.from_numpy(x), kernel, sigma).numpy()
    got = np_fsp.gaussian_blur(x, kernel, sigma)
    assert got.dtype == np.float32 and np.abs(got - expected).max() <= STEP_TOL


def test_blur_refuses_latents_too_small_like_torch():
    x = np.zeros((1, 4, 4, 4), np.float32)
    with pytest.raises(ValueError) as ours:
        np_fsp.gaussian_blur(x, 9, 18.0)
    with pytest.raises(ValueError) as theirs:
        torch_fsp.gaussian_blur(torch.from_numpy(x), 9, 18.0)
    assert str(ours.value) == str(theirs.value) and "4x4" in str(ours.value)


@pytest.mark.parametrize("name", ["ddim", "euler", "lcm"])
def test_fsp_matches_torch_with_same_noise_and_mask(name):
    cfg = FSPConfig()
    ref, ours = diffusers_scheduler(name), make_scheduler(name)
    ref.set_timesteps(10)
    ours.set_timesteps(10)
    rng = np.random.default_rng(0)
    first = rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
    shape = (1, 4, 8, 16, 16)
    mask = np_fsp.sample_mask(shape, cfg.mask_p, rng)
    noise = rng.standard_normal(shape).astype(np.float32)
    t = ref.timesteps[0]
    expected = torch_fsp.frame_similarity_prior(
        torch.from_numpy(first), 8, ref, t, cfg, noise=torch.from_numpy(noise), mask=torch.from_numpy(mask)
    ).numpy()
    got = np_fsp.frame_similarity_prior(first, 8, ours, t.item(), cfg, noise=noise, mask=mask)
    assert got.shape == shape and got.dtype == np.float32
    # Euler's start is x0 + sigma * noise with sigma ~25, |x| up to ~60 where float32's spacing is
    # 3.8e-6: compare in the variance-preserving units the UNet sees (`scale_model_input`).
    unit = 1.0 / np.sqrt(float(ref.sigmas[0]) ** 2 + 1.0) if name == "euler" else 1.0
    assert np.abs(got - expected).max() * unit <= STEP_TOL


def test_fsp_draws_are_seeded_and_checked():
    sched = make_scheduler("ddim")
    sched.set_timesteps(10)
    first = np.ones((1, 4, 16, 16), np.float32)
    a, b = (
        np_fsp.frame_similarity_prior(first, 8, sched, 901, FSPConfig(), rng=np.random.default_rng(3))
        for _ in "ab"
    )
    assert np.array_equal(a, b)
    mask = np_fsp.sample_mask((1, 4, 8, 64, 64), 0.5, np.random.default_rng(0))
    assert abs(mask.mean() - 0.5) < 0.01 and set(np.unique(mask)) == {0.0, 1.0}
    with pytest.raises(ValueError, match=r"expected FSP noise of shape \(1, 4, 8, 16, 16\), got \(1, 4, 7, 16, 16\)"):
        np_fsp.frame_similarity_prior(first, 8, sched, 901, FSPConfig(), mask=np.ones((1, 4, 8, 16, 16), np.float32),
                                      noise=np.zeros((1, 4, 7, 16, 16), np.float32))
    with pytest.raises(ValueError, match="needs `rng`"):
        np_fsp.frame_similarity_prior(first, 8, sched, 901, FSPConfig())


# --- runners -----------------------------------------------------------------------------------

TOY = StageSpec(
    "toy",
    (TensorSpec("x", (1, 3)), TensorSpec("y", (1, 3))),
    (TensorSpec("z", (1, 3)),),
)
TOY_FEEDS = {"x": np.array([[1.0, 2.0, 3.0]], np.float32), "y": np.array([[0.5, 0.5, 0.5]], np.float32)}
TOY_EXPECTED = 2 * TOY_FEEDS["x"] + TOY_FEEDS["y"]


def test_callable_runner_checks_inputs_and_outputs():
    runner = CallableRunner({"toy": TOY}, {"toy": lambda x, y: 2 * x + y})
    assert isinstance(runner, StageRunner)
    np.testing.assert_array_equal(runner.run("toy", TOY_FEEDS)["z"], TOY_EXPECTED)
    with pytest.raises(ValueError, match=r"expected toy input 'x' of shape \(1, 3\), got \(1, 4\)"):
        runner.run("toy", {**TOY_FEEDS, "x": np.zeros((1, 4), np.float32)})
    with pytest.raises(ValueError, match=r"expected toy input 'y' of dtype float32, got float64"):
        runner.run("toy", {**TOY_FEEDS, "y": np.zeros((1, 3))})
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        runner.run("toy", {"x": TOY_FEEDS["x"]})
    with pytest.raises(ValueError, match="unknown stage 'unet'"):
        runner.run("unet", TOY_FEEDS)
    bad = CallableRunner({"toy": TOY}, {"toy": lambda x, y: np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match=r"expected toy output 'z' of shape \(1, 3\), got \(1, 2\)"):
        bad.run("toy", TOY_FEEDS)


def write_toy_onnx(path, input_names=("x", "y")):
    import onnx
    from onnx import TensorProto, helper

    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", [input_names[0], "two"], ["x2"]),  # z = 2 x + y
            helper.make_node("Add", ["x2", input_names[1]], ["z"]),
        ],
        "toy",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3]) for n in input_names],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])],
        initializer=[two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_onnx_runner_runs_a_stage_file_and_checks_names(tmp_path):
    pytest.importorskip("onnxruntime")
    runner = OnnxRunner({"toy": TOY}, {"toy": write_toy_onnx(tmp_path / "toy.onnx")}, threads=1)
    np.testing.assert_allclose(runner.run("toy", TOY_FEEDS)["z"], TOY_EXPECTED, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match=r"expected toy input 'x' of shape"):
        runner.run("toy", {**TOY_FEEDS, "x": np.zeros((2, 3), np.float32)})
    renamed = {"toy": write_toy_onnx(tmp_path / "renamed.onnx", ("a", "b"))}
    expected = r"expected toy inputs \['x', 'y'\] \(the stage contract\), the model has \['a', 'b'\]"
    with pytest.raises(ValueError, match=expected):
        OnnxRunner({"toy": TOY}, renamed)  # every file is loaded and checked when the runner is built
    lazy = OnnxRunner({"toy": TOY}, renamed, load=False)
    with pytest.raises(ValueError, match=expected):
        lazy.run("toy", TOY_FEEDS)  # without: on the stage's first call
    with pytest.raises(FileNotFoundError, match="toy: .*missing.onnx"):
        OnnxRunner({"toy": TOY}, {"toy": tmp_path / "missing.onnx"})


def _toy_spec(x_shape=(1, 3), y_dtype="float32", z_shape=(1, 3)) -> StageSpec:
    return StageSpec("toy", (TensorSpec("x", x_shape), TensorSpec("y", (1, 3), y_dtype)), (TensorSpec("z", z_shape),))


@pytest.mark.parametrize("spec, found", [
    (_toy_spec(x_shape=(1, 4)), "input 'x' expected (1, 4) float32, the file declares (1, 3) float32"),
    (_toy_spec(y_dtype="int32"), "input 'y' expected (1, 3) int32, the file declares (1, 3) float32"),
    (_toy_spec(z_shape=(3,)), "output 'z' expected (3,) float32, the file declares (1, 3) float32"),
])
def test_file_runners_check_declared_shapes_and_dtypes_at_load(tmp_path, toy_tflite, spec, found):
    """A model file whose names match but whose shapes or dtypes do not: one error naming the stage,
    the file, the tensor, the contract's and the file's, when the runner is built."""
    pytest.importorskip("onnxruntime")
    for runner, path in ((OnnxRunner, write_toy_onnx(tmp_path / "toy.onnx")), (LiteRTRunner, toy_tflite)):
        with pytest.raises(ValueError) as err:
            runner({"toy": spec}, {"toy": path})
        assert str(err.value) == f"stage toy file {path} does not match the manifest's stage contract: {found}"


def test_a_file_the_runtime_cannot_load_is_named(tmp_path):
    pytest.importorskip("onnxruntime")
    from runtime_py.runners import ModelFileError

    path = tmp_path / "toy.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match=rf"^stage toy file {path} cannot be loaded by OnnxRunner: \w+: "):
        OnnxRunner({"toy": TOY}, {"toy": path})


@pytest.fixture(scope="module")
def toy_tflite(tmp_path_factory):
    litert_torch = pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")

    class Toy(torch.nn.Module):
        def forward(self, x, y):
            return {"z": 2 * x + y}

    path = tmp_path_factory.mktemp("tflite") / "toy.tflite"
    sample = {k: torch.from_numpy(v) for k, v in TOY_FEEDS.items()}
    litert_torch.convert(Toy().eval(), sample_kwargs=sample).export(str(path))
    return path


def test_litert_runner_with_signature(toy_tflite):
    runner = LiteRTRunner({"toy": TOY}, {"toy": toy_tflite}, threads=1)
    np.testing.assert_allclose(runner.run("toy", TOY_FEEDS)["z"], TOY_EXPECTED, rtol=0, atol=1e-7)


def test_litert_runner_without_signature_matches_tensors_by_name(toy_tflite, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    monkeypatch.setattr(Interpreter, "get_signature_list", lambda self: {})
    runner = LiteRTRunner({"toy": TOY}, {"toy": toy_tflite})
    np.testing.assert_allclose(runner.run("toy", TOY_FEEDS)["z"], TOY_EXPECTED, rtol=0, atol=1e-7)


def test_runtime_imports_no_torch():
    code = (
        "import sys\n"
        "import runtime_py, runtime_py.pipeline, runtime_py.schedulers, runtime_py.fsp, runtime_py.runners\n"
        "heavy = ('torch', 'diffusers', 'transformers', 'onnxruntime', 'ai_edge_litert')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing runtime_py imported {out.stdout.strip()}"


# --- the whole pipeline vs PyTorch --------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def pipes():
    """The PyTorch reference and the runtime running the very same tiny stage modules."""
    torch_pipe = I2VPipeline.from_preset(get_preset("tiny"))

    def as_numpy(module):
        @torch.no_grad()
        def fn(*arrays):
            return module(*(torch.from_numpy(a) for a in arrays)).numpy()

        return fn

    runner = CallableRunner(torch_pipe.specs, {name: as_numpy(m) for name, m in torch_pipe.stages.items()})
    runtime = RuntimePipeline(torch_pipe.specs, runner, torch_pipe.components.tokenizer, torch_pipe.config)
    return torch_pipe, runtime


@pytest.fixture(scope="module")
def image():
    return make_test_card(128, 128)


@pytest.mark.parametrize("fsp_enabled", [True, False], ids=["fsp", "no-fsp"])
def test_runtime_pipeline_matches_pytorch_end_to_end(pipes, image, fsp_enabled):
    torch_pipe, runtime = pipes
    fsp = with_fsp(torch_pipe.config.fsp, enabled=fsp_enabled)
    rng = np.random.default_rng(7)
    shape = (1, 4, 8, 16, 16)
    mask = np_fsp.sample_mask(shape, fsp.mask_p, rng)
    noise = rng.standard_normal(shape).astype(np.float32)
    kwargs = dict(num_inference_steps=3, guidance_scale=7.5, fsp=fsp, color_match=True, progress=False)
    ref = torch_pipe(image, PROMPT, "blurry", noise=torch.from_numpy(noise), mask=torch.from_numpy(mask), **kwargs)
    out = runtime(image, PROMPT, "blurry", num_inference_steps=3, guidance_scale=7.5, fsp=fsp, color_match=True, progress=False,
                  noise=noise, mask=mask)
    assert out.timesteps == ref.timesteps
    assert out.frames.shape == ref.frames.shape == (8, 128, 128, 3) and out.frames.dtype == np.uint8
    latent_err = np.abs(out.latents - ref.latents.numpy()).max()
    # Without FSP the two agree to the bit; with it, the blur's float32 rounding (torch's conv vs a
    # float64 sum) differs by ~1e-7 and the guided UNet steps amplify that: relative error ~1e-6.
    scale = max(1.0, float(np.abs(ref.latents.numpy()).max()))
    assert latent_err <= 1e-5 * scale, f"final latents differ by {latent_err:.3g} (|latents| up to {scale:.1f})"
    worst = min(psnr(a, b) for a, b in zip(out.frames, ref.frames))
    assert worst >= 40.0, f"worst frame PSNR {worst:.1f} dB < 40 dB"


@pytest.mark.parametrize("scheduler", ["euler", "lcm"])
def test_runtime_pipeline_other_schedulers_keep_frame_zero_clean(pipes, image, scheduler):
    _, runtime = pipes
    a = runtime(image, PROMPT, num_inference_steps=2, seed=1, scheduler=scheduler, color_match=False, progress=False)
    assert a.frames.shape == (8, 128, 128, 3) and np.isfinite(a.latents).all()
    assert len(a.timesteps) == 2
    first = runtime.condition(image, PROMPT, "").first_latent
    assert np.array_equal(a.latents[:, :, 0], first)


def test_runtime_pipeline_refuses_bad_input(pipes):
    _, runtime = pipes
    with pytest.raises(ValueError, match=r"expected an RGB image array of shape \(128, 128, 3\) uint8"):
        runtime(np.zeros((64, 64, 3), np.uint8), PROMPT, progress=False)
    with pytest.raises(ValueError, match=r"expected initial noise of shape \(1, 4, 8, 16, 16\)"):
        wrong = np.zeros((1, 4, 8, 8, 8), np.float32)
        runtime(make_test_card(128, 128), PROMPT, num_inference_steps=1, fsp=FSPConfig(enabled=False), noise=wrong, progress=False)


# --- bundle glue (conftest.write_fake_bundle: a hand-made bundle of stand-in models) --------------


def test_pipeline_from_bundle_reads_specs_preset_and_files(tmp_path):
    pytest.importorskip("onnxruntime")
    from i2v_core.bundle import BundleError
    from i2v_core.stages import stage_specs
    from i2v_core.tokenizer import CLIPTokenizer

    cfg = get_preset("tiny").with_overrides(num_frames=6)
    bundle = write_fake_bundle(tmp_path / "bundle", cfg)
    pipe = RuntimePipeline.from_bundle(bundle, "onnx", threads=1)
    assert pipe.config == cfg and pipe.specs == stage_specs(cfg)
    assert pipe.runner.files["unet"] == bundle / "unet.onnx" and pipe.runner.threads == 1
    np.testing.assert_array_equal(pipe.tokenizer.encode("a cat"), CLIPTokenizer.from_bpe_file().encode("a cat"))
    with pytest.raises(ValueError, match=r"stage 'text_encoder' has no 'tflite' model \(targets: \['onnx'\]\)"):
        RuntimePipeline.from_bundle(bundle, "tflite")
    (bundle / "unet.onnx").write_bytes(b"tampered!")
    with pytest.raises(BundleError, match="unet.onnx"):
        RuntimePipeline.from_bundle(bundle, "onnx")



@pytest.mark.parametrize("changes, message", [
    (dict(num_inference_steps=0), "expected num_inference_steps >= 1, got 0"),
    (dict(guidance_scale=float("nan")), "expected guidance_scale to be a finite number, got nan"),
    (dict(guidance_scale=float("-inf")), "expected guidance_scale to be a finite number, got -inf"),
    (dict(seed=-1), "expected seed in [0, 4294967295], got -1"),
])
def test_runtime_pipeline_refuses_bad_numbers_by_name(tmp_path, changes, message):
    pytest.importorskip("onnxruntime")
    bundle = write_fake_bundle(tmp_path / "bundle", get_preset("tiny"))
    pipe = RuntimePipeline.from_bundle(bundle, verify=False)  # stand-in models: zeros out
    with pytest.raises(ValueError) as err:
        pipe(make_test_card(128, 128), "a cat", progress=False, **changes)
    assert str(err.value) == message


def test_missing_runtime_is_a_clear_error(monkeypatch, tmp_path):
    from runtime_py.runners import MissingRuntimeError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    expected = "OnnxRunner needs the `onnxruntime` package.*pip install onnxruntime"
    with pytest.raises(MissingRuntimeError, match=expected):
        OnnxRunner({"toy": TOY}, {"toy": tmp_path / "toy.onnx"})
