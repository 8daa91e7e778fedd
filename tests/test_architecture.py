"""The package structure: layers import one way, no module or package import cycle (function-local
imports included), the torch-free layers stay torch-free, and every command has the one CLI shape."""

from __future__ import annotations

import ast
import importlib.util
import runpy
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each package and the project packages it may import. Lower layers first: the torch-free core, the
# torch-free runtime and the PyTorch model, then export and quantization, then the tools.
LAYERS: dict[str, set[str]] = {
    "i2v_core": set(),
    "runtime_py": {"i2v_core"},
    "i2v_adapter": {"i2v_core"},
    "quantize": {"i2v_core", "runtime_py", "i2v_adapter"},
    "export": {"i2v_core", "i2v_adapter", "quantize"},
    "evaluation": {"i2v_core", "runtime_py", "i2v_adapter", "quantize"},
    "benchmarks": {"i2v_core", "runtime_py", "i2v_adapter", "export", "quantize"},
}
TORCH_FREE = ("i2v_core", "runtime_py")
HEAVY = ("torch", "diffusers", "transformers", "accelerate")
# Old `python -m` names that forward to where a command moved (run-time only, no import edge).
FORWARDERS = {
    "i2v_adapter.train": "i2v_adapter.training.train",
    "i2v_adapter.average": "i2v_adapter.training.average",
    "i2v_adapter.convert": "i2v_adapter.checkpoints.convert",
    "i2v_adapter.shipped": "i2v_adapter.training.weights_folder",
    "i2v_adapter.ablation": "evaluation.ablation",
    "runtime_py.verify": "evaluation.verify",
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{a.name}" for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its body (top level or in functions)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_import_cycle():
    assert _cycles(import_graph()) == []


def test_no_subpackage_import_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        for target in targets:
            a, b = module.rsplit(".", 1)[0], target.rsplit(".", 1)[0]
            if a != b and not b.startswith(a + ".") and not a.startswith(b + "."):
                graph[a].add(b)
    assert _cycles(graph) == []


def test_packages_import_only_lower_layers():
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0] and target.split(".")[0] not in LAYERS[module.split(".")[0]]
    )
    assert wrong == []


def test_torch_free_layers_import_no_torch():
    names = [m for m in _modules() if m.split(".")[0] in TORCH_FREE and m not in FORWARDERS]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {', '.join(TORCH_FREE)} imported {out.stdout.strip()}"


@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package")
@pytest.mark.parametrize("old,new", sorted(FORWARDERS.items()))
def test_old_command_names_forward(old, new, monkeypatch, capsys):
    path = _modules()[old]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) == 1 and isinstance(body[0], ast.If), f"{old} should only forward"
    assert f'forward("{old}", "{new}")' in path.read_text(encoding="utf-8")
    assert importlib.util.find_spec(new) is not None
    monkeypatch.setattr(sys, "argv", [old, "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module(old, run_name="__main__", alter_sys=True)
    out = capsys.readouterr()
    assert stop.value.code == 0 and f"is now `python -m {new}`" in out.err and "usage:" in out.out


def test_every_command_has_the_one_cli_shape():
    """`__main__` blocks call `cli.entry` (or forward); logging is configured in `i2v_core.cli` only."""
    wrong = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if "logging.basicConfig" in text and name != "i2v_core.cli":  # the one place logging is set up
            wrong.append(f"{name}: configures logging")
        main_block = text.split('if __name__ == "__main__":', 1)
        if len(main_block) == 2 and "cli.entry(main" not in main_block[1] and "forward(" not in main_block[1]:
            wrong.append(f"{name}: __main__ block does not use cli.entry")
    assert wrong == []
