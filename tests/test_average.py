"""Latest-checkpoint averaging: the mean it writes, the checkpoints it picks, and what it refuses."""

import json

import pytest
import safetensors
import torch

from i2v_adapter.checkpoints.io import load_safetensors, save_safetensors
from i2v_adapter.training.average import average_files, last_checkpoint_files, main
from i2v_core.errors import CheckpointError


def _run(tmp_path, steps=(250, 500, 750), name="unet.safetensors"):
    run = tmp_path / "run"
    for k, step in enumerate(steps):
        folder = run / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        save_safetensors({"w": torch.full((2, 3), float(k)), "b": torch.tensor([k * 2.0])}, folder / name)
    return run


def test_average_of_the_last_checkpoints(tmp_path):
    run = _run(tmp_path)
    (run / "checkpoint-1000").mkdir()  # a folder without weights: refused when asked for
    with pytest.raises(CheckpointError, match="checkpoint-1000"):
        last_checkpoint_files(run, 2)
    (run / "checkpoint-1000").rmdir()
    assert [f.parent.name for f in last_checkpoint_files(run, 2)] == ["checkpoint-500", "checkpoint-750"]
    out = tmp_path / "avg.safetensors"
    assert main(["--run", str(run), "--last", "2", "--out", str(out)]) == 0
    state = load_safetensors(out)
    assert torch.equal(state["w"], torch.full((2, 3), 1.5)) and torch.equal(state["b"], torch.tensor([3.0]))
    with safetensors.safe_open(str(out), "pt") as f:
        assert [p.split("/")[-2] for p in json.loads(f.metadata()["averaged_from"])] == ["checkpoint-500", "checkpoint-750"]
    assert main(["--run", str(run), "--last", "3", "--out", str(out)]) == 2  # exists: not overwritten
    assert torch.equal(load_safetensors(out)["w"], torch.full((2, 3), 1.5))
    assert main(["--run", str(run), "--last", "3", "--out", str(out), "--overwrite"]) == 0
    assert torch.equal(load_safetensors(out)["w"], torch.full((2, 3), 1.0))


def test_average_refuses_mismatched_inputs(tmp_path, capsys):
    a, b, c = (tmp_path / f"{n}.safetensors" for n in "abc")
    save_safetensors({"w": torch.zeros(2)}, a)
    save_safetensors({"w": torch.zeros(3)}, b)
    save_safetensors({"v": torch.zeros(2)}, c)
    with pytest.raises(CheckpointError, match=r"tensor w expected \(2,\)"):
        average_files([a, b])
    with pytest.raises(CheckpointError, match="missing \\['w'\\]"):
        average_files([a, c])
    assert main(["--run", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "expected checkpoint-<step>/ folders" in capsys.readouterr().err
    assert main([str(a), "--run", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert main(["--run", str(_run(tmp_path)), "--last", "4", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "expected --last in [1, 3]" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
