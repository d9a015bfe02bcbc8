"""The package's shape: imports point down the layers, and no module imports back up.

Layers, lowest first (a module may import its own layer or a lower one, never a higher):

0. rules with no dependencies: ``errors``, ``version``, ``contract``, ``classify``, ``mode``,
   ``atomic``
1. the pure core and the shared boundaries: ``lineage``, ``stitch``, ``source``,
   ``parallel``, ``artifact_files``, ``wandb_api``
2. the run side, called from training scripts: ``checkpoints``, ``tracking``
3. readers, which turn run files or a W&B project into a ``Source``, and the resolver of
   checkpoint references: ``readers.*``
4. renderers and tools that consume a ``Source``: ``views``, ``report.*``, ``publish``,
   ``sync``
5. entry points: ``cli``, ``__main__`` and the package's ``__init__``
6. add-ons built on the public API alone, as a user's script would be: ``integrations.*``
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runchain"
LAYERS = {
    "runchain.errors": 0, "runchain.version": 0, "runchain.contract": 0, "runchain.classify": 0,
    "runchain.mode": 0, "runchain.atomic": 0, "runchain.state_check": 0,
    "runchain.lineage": 1, "runchain.parents": 1, "runchain.stitch": 1, "runchain.source": 1,
    "runchain.parallel": 1,
    "runchain.artifact_files": 1, "runchain.wandb_api": 1,
    "runchain.checkpoints": 2, "runchain.tracking": 2, "runchain.in_place": 2,
    "runchain.readers": 3, "runchain.readers.folder": 3, "runchain.readers.run_folders": 3,
    "runchain.readers.run_files": 3, "runchain.readers.resolve": 3,
    "runchain.readers.runfile": 3, "runchain.readers.history_columns": 3,
    "runchain.readers.run_cache": 3, "runchain.readers.cache_folder": 3,
    "runchain.readers.project": 3, "runchain.readers.grown": 3,
    "runchain.readers.timelines": 3, "runchain.readers.run_state": 3,
    "runchain.views": 4, "runchain.watch": 4, "runchain.report": 4, "runchain.report.figures": 4,
    "runchain.report.data": 4, "runchain.report.page": 4, "runchain.report.static": 4,
    "runchain.report.palette": 4, "runchain.publish": 4, "runchain.sync": 4,
    "runchain.sync_plan": 4,
    "runchain.cli": 5, "runchain.cli_cache": 5, "runchain.cli_watch": 5, "runchain.__main__": 5, "runchain": 5,
    "runchain.integrations": 6, "runchain.integrations.marker": 6,
    "runchain.integrations.transformers": 6, "runchain.integrations.lightning": 6,
}
CORE = ("runchain.contract", "runchain.classify", "runchain.lineage", "runchain.parents",
        "runchain.stitch", "runchain.source")


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


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYERS), "add new modules to LAYERS, or remove gone ones"


def test_imports_point_down_the_layers():
    upward = [f"{a} (layer {LAYERS[a]}) imports {b} (layer {LAYERS[b]})"
              for a, targets in graph().items() for b in sorted(targets) if LAYERS[b] > LAYERS[a]]
    assert not upward, "\n".join(upward)


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
    for name in CORE:
        wrong = {b for b in graph()[name] if LAYERS[b] >= 2}
        assert not wrong, f"{name} imports {wrong}"


def test_the_import_graph_sees_relative_and_function_level_imports():
    """The graph sees function-level and relative imports, or the tests above prove nothing."""
    edges = graph()
    assert "runchain.readers.folder" in edges["runchain.readers"]
    assert "runchain.source" in edges["runchain.readers.folder"]  # `from ..source import`
    assert "runchain.parallel" in edges["runchain.readers.run_files"]  # `from .. import parallel`
    assert "runchain.report" in edges["runchain.cli"]  # imported inside a function
    assert "runchain.checkpoints" not in edges["runchain.tracking"]  # for annotations only


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
    assert "runchain.tracking" in loaded and "runchain.checkpoints" in loaded  # it did run
    heavy = [m for m in loaded if m.startswith(("runchain.readers", "runchain.report",
                                                "runchain.sync", "runchain.publish",
                                                "runchain.views", "runchain.cli"))]
    assert not heavy, f"a training script loaded {heavy}"
    assert all(LAYERS[m] <= 2 for m in loaded if m != "runchain"), loaded
