"""The training chain in MODEL_CARD.md and the experiment commands in docs/experiments.md, read as
written: every config's `init_*` file is written by an earlier command, the chain ends in the shipped
weights folder, and no config starts from the shipped files the chain overwrites. Torch-free, no
training: it reads the markdown and the configs."""

import json
import re
import shlex
from pathlib import Path

from i2v_adapter.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = "i2v_adapter/weights/tiny"
STAGE_FILES = {"vae": "vae.safetensors", "t2v": "unet.safetensors", "adapter": "adapter.safetensors"}
INIT_FIELDS = ("vae", "unet", "text_encoder", "adapter")  # TrainConfig.init.<field>


def commands(markdown: Path) -> list[list[str]]:
    """The `python -m MODULE ...` lines of the markdown's ```sh blocks, as `[MODULE, args...]`."""
    blocks = re.findall(r"```sh\n(.*?)```", markdown.read_text(encoding="utf-8"), flags=re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    words = [shlex.split(line, comments=True) for line in lines]
    return [w[2:] for w in words if w[:2] == ["python", "-m"]]


def option(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


def replay(cmds: list[list[str]], produced: set[str]) -> list[str]:
    """Walk the commands in order, adding the files each writes to `produced`; returns the configs used."""
    configs = []
    for words in cmds:
        module = words[0]
        if module == "i2v_adapter.training.train":
            name = option(words, "--config")
            cfg = TrainConfig.from_json(ROOT / name)
            for field in INIT_FIELDS:
                path = getattr(cfg.init, field)
                assert path is None or path in produced, f"{name}: init.{field} {path} is written by no earlier command"
            out = option(words, "--out")
            produced.add(f"{out}/{STAGE_FILES[cfg.model.stage.value]}")
            if cfg.model.train_text_encoder:
                produced.add(f"{out}/text_encoder.safetensors")
            configs.append(name)
        elif module == "i2v_adapter.training.average":
            run = option(words, "--run")
            assert any(p.startswith(f"{run}/") for p in produced), f"average: {run} is not an earlier run"
            produced.add(option(words, "--out"))
        elif module == "i2v_adapter.training.weights_folder":
            for flag in ("--vae", "--unet", "--adapter", "--text-encoder"):
                path = option(words, flag)
                assert path is None or path in produced, f"weights_folder {flag} {path} is written by no earlier command"
            configs.append(option(words, "--train-config"))
    return configs


def test_chain_rebuilds_the_shipped_weights_from_nothing():
    cmds = commands(ROOT / "MODEL_CARD.md")
    replay(cmds, set())
    last = [w for w in cmds if w[0].startswith("i2v_adapter.training.")][-1]
    assert last[0] == "i2v_adapter.training.weights_folder" and option(last, "--out") == SHIPPED
    # the writer records the architecture and scheduler of its --train-config: the shipped preset.json
    written = TrainConfig.from_json(ROOT / option(last, "--train-config")).preset_config().to_dict()
    shipped = json.loads((ROOT / SHIPPED / "preset.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(written)) == shipped


def test_every_config_is_on_the_chain_or_an_experiment_that_starts_from_it():
    produced: set[str] = set()
    chain = replay(commands(ROOT / "MODEL_CARD.md"), produced)
    experiments = replay(commands(ROOT / "docs" / "experiments.md"), produced)
    listed = {Path(c).name for c in chain + experiments}
    assert listed == {p.name for p in (ROOT / "configs").glob("*.json")}


def test_no_config_starts_from_the_shipped_files():
    for path in sorted((ROOT / "configs").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for field in INIT_FIELDS:
            assert not str(data.get(field) or "").startswith("i2v_adapter/weights/"), f"{path.name}: {field}"
