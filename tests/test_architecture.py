"""The package's shape: its folders are its layers, imports point down them, and no module
imports back up.

The layers, lowest first, are the folders of ``runchain/`` in the order ``LAYERS`` gives
(docs/development.md draws them). A module may import its own layer or a lower one, never a
higher:

0. the base, the modules at the top of ``runchain/``: errors, the version, atomic writes,
   the process pool. They import nothing of runchain but each other.
1. ``core/``: the contract's rules and the pure graph and chain logic (no I/O).
2. ``wandb_io/``: the W&B boundary: the public API, artifact files, the mode.
3. ``training/``: what a training script imports: checkpoints, tracking, in-place resume,
   the state check.
4. ``readers/``: run files or a W&B project in, a ``Source`` out.
5. ``renderers/``: what a tree and its chains look like: text, JSON, CSV, the report.
6. ``commands/``: the command line and what only it runs: watch, sync, publish.
7. the entry points: ``runchain/__init__.py`` (the public API) and ``__main__.py``.
8. ``integrations/``: add-ons built on the public API alone, as a user's script would be.

A module in a folder not in ``LAYERS`` is outside every layer, and fails the tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "runchain"
LAYERS = ("core", "wandb_io", "training", "readers", "renderers", "commands", "integrations")
ENTRY = ("runchain", "runchain.__main__")


def layer(name: str) -> int:
    """The layer of module ``name``, from where it sits; -1 for a folder outside every layer."""
    parts = name.split(".")
    if name in ENTRY:
        return LAYERS.index("commands") + 2
    if len(parts) == 2 and not (PACKAGE / parts[1]).is_dir():
        return 0
    return LAYERS.index(parts[1]) + 1 + (parts[1] == "integrations") if parts[1] in LAYERS else -1


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The runchain modules ``path`` imports, at the top or inside a function; not those
    under ``if TYPE_CHECKING:``, which only annotations see."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "runchain")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "runchain":
                continue
            for alias in node.names:  # `from . import parallel` imports a module
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) for name, path in mods.items()}


def test_every_module_sits_in_a_layer():
    outside = [name for name in modules() if layer(name) < 0]
    assert not outside, f"move these into a layer's folder, or add the folder to LAYERS: {outside}"


def test_at_most_ten_modules_at_the_top():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 10, top


def test_the_drawing_in_docs_names_the_layers_in_order():
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    drawing = text[text.index("<!-- layers -->"):text.index("<!-- /layers -->")]
    drawn = re.findall(r"runchain/(\w+)/", drawing)  # drawn top down: the highest layer first
    assert list(dict.fromkeys(reversed(drawn))) == list(LAYERS), drawn


def test_the_layer_rule_fails_an_upward_import():
    """The check below, on a made-up graph: a reader importing the command line is caught."""
    assert layer("runchain.readers.x") < layer("runchain.commands.cli")
    assert layer("runchain.errors") < layer("runchain.core.contract") < layer("runchain.wandb_io.api")
    assert layer("runchain.training.tracking") < layer("runchain.readers.resolve")
    assert layer("runchain.elsewhere.x") == -1
    assert upward({"runchain.readers.x": {"runchain.commands.cli"}}) == [
        "runchain.readers.x (layer 4) imports runchain.commands.cli (layer 6)"]


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
            for a, targets in sorted(edges.items()) for b in sorted(targets) if layer(b) > layer(a)]


def test_imports_point_down_the_layers():
    wrong = upward(graph())
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_inside_runchain():
    edges = graph()
    state: dict[str, str] = {}  # "open" while on the walk, "done" after

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_the_core_imports_no_reader_and_no_renderer():
    for name in (n for n in modules() if n.startswith("runchain.core.")):
        wrong = {b for b in graph()[name] if layer(b) > layer("runchain.core.x")}
        assert not wrong, f"{name} imports {wrong}"


def test_the_import_graph_sees_relative_and_function_level_imports():
    """The graph sees function-level and relative imports, or the tests above prove nothing."""
    edges = graph()
    assert "runchain.readers.from_folder" in edges["runchain.readers"]
    assert "runchain.core.source" in edges["runchain.readers.from_folder"]  # `from ..source import`
    assert "runchain.parallel" in edges["runchain.readers.decode_once"]  # `from .. import parallel`
    assert "runchain.renderers.report" in edges["runchain.commands.cli"]  # imported inside a function
    assert "runchain.training.checkpoints" not in edges["runchain.training.tracking"]  # for annotations only


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"split these modules: {long}"


def test_integrations_use_the_public_api_alone():
    """The callbacks are built as a user's script would be: ``import runchain`` and the names
    in ``runchain.__all__``, never a module inside the package."""
    import runchain
    public = set(runchain.__all__)
    wrong = []
    for path in sorted((PACKAGE / "integrations").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                if node.module.startswith("runchain") and node.module != "runchain":
                    wrong.append(f"{path.name}: from {node.module} import ...")
                elif node.module == "runchain":
                    wrong += [f"{path.name}: from runchain import {a.name}"
                              for a in node.names if a.name not in public]
            elif isinstance(node, ast.Import):
                wrong += [f"{path.name}: import {a.name}" for a in node.names
                          if a.name.startswith("runchain.")]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "runchain" and node.attr not in public):
                wrong.append(f"{path.name}: runchain.{node.attr}")
    assert not wrong, "\n".join(wrong)


LEAN = r'''
import json, sys, tempfile, wandb
import runchain
run = wandb.init(project="lean", mode="offline", dir=sys.argv[1])
runchain.start(run)
for step in range(3):
    runchain.log(run, {"loss": 1.0 / (step + 1)}, step=step)
runchain.save_checkpoint(run, {"model": [1, 2]}, step=2)
with tempfile.NamedTemporaryFile("w", suffix=".pt", delete=False) as f:
    f.write("weights")
checkpoint = runchain.Checkpoint(runchain.CheckpointRef(run.id, "step-2"), run.id, 2, "v0",
                                 {"step": 2}, {"ckpt.pt": f.name}, None)
assert checkpoint.path("ckpt.pt").read_text() == "weights"
loaded = sorted(m for m in sys.modules if m.startswith("runchain"))
run.finish()
print(json.dumps(loaded))
'''


def test_a_training_script_loads_no_reader_cache_report_sync_or_publish(tmp_path):
    """``import runchain``, then ``start``, ``log``, ``save_checkpoint`` and
    ``Checkpoint.path`` in a real offline run: only the run side and what it needs load."""
    import json
    import os
    import subprocess
    import sys
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           **{name: str(tmp_path / name.lower()) for name in
              ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")}}
    proc = subprocess.run([sys.executable, "-c", LEAN, str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "runchain.training.tracking" in loaded and "runchain.training.checkpoints" in loaded  # it did run
    heavy = [m for m in loaded if m.startswith(("runchain.readers", "runchain.renderers.report",
                                                "runchain.commands.sync", "runchain.commands.publish",
                                                "runchain.renderers.formats", "runchain.commands.cli"))]
    assert not heavy, f"a training script loaded {heavy}"
    assert all(layer(m) <= layer("runchain.training.x") for m in loaded if m != "runchain"), loaded


def test_no_two_modules_of_a_package_differ_only_by_an_underscore_or_a_plural():
    """``runfile``/``run_files``/``run_folders``/``folder`` once sat side by side."""
    def plain(name: str) -> str:
        return name.replace("_", "").removesuffix("s")

    clashes = []
    for folder in sorted({p.parent for p in PACKAGE.rglob("*.py")}):
        names = sorted(p.stem for p in folder.glob("*.py")) + sorted(
            p.name for p in folder.iterdir() if (p / "__init__.py").is_file())
        seen: dict[str, str] = {}
        for name in names:
            if plain(name) in seen:
                clashes.append(f"{folder.relative_to(PACKAGE.parent)}: {seen[plain(name)]} and {name}")
            seen.setdefault(plain(name), name)
    assert not clashes, clashes
