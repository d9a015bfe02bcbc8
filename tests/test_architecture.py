"""The package's shape: imports point down the layers, and no module imports back up.

Layers, lowest first (a module may import its own layer or a lower one, never a higher):

0. rules with no dependencies: ``errors``, ``version``, ``contract``, ``mode``, ``atomic``
1. the pure core and the shared boundaries: ``lineage``, ``stitch``, ``source``,
   ``parallel``, ``artifact_files``, ``wandb_api``
2. readers, which turn run files or a W&B project into a ``Source``: ``readers.*``
3. the run side, called from training scripts: ``checkpoints``, ``tracking``
4. renderers and tools that consume a ``Source``: ``report*``, ``publish``, ``sync``
5. entry points: ``cli``, ``__main__`` and the package's ``__init__``
6. add-ons built on the public API alone, as a user's script would be: ``integrations.*``
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runchain"
LAYERS = {
    "runchain.errors": 0, "runchain.version": 0, "runchain.contract": 0, "runchain.mode": 0,
    "runchain.atomic": 0,
    "runchain.lineage": 1, "runchain.stitch": 1, "runchain.source": 1, "runchain.parallel": 1,
    "runchain.artifact_files": 1, "runchain.wandb_api": 1,
    "runchain.readers": 2, "runchain.readers.folder": 2, "runchain.readers.run_folders": 2,
    "runchain.readers.runfile": 2, "runchain.readers.history_columns": 2,
    "runchain.readers.run_cache": 2, "runchain.readers.cache_folder": 2,
    "runchain.readers.project": 2,
    "runchain.readers.timelines": 2, "runchain.readers.run_state": 2,
    "runchain.checkpoints": 3, "runchain.tracking": 3,
    "runchain.report": 4, "runchain.report_figures": 4, "runchain.report_data": 4,
    "runchain.report_page": 4, "runchain.report_static": 4, "runchain.publish": 4,
    "runchain.sync": 4,
    "runchain.cli": 5, "runchain.__main__": 5, "runchain": 5,
    "runchain.integrations": 6, "runchain.integrations.marker": 6,
    "runchain.integrations.transformers": 6, "runchain.integrations.lightning": 6,
}
CORE = ("runchain.contract", "runchain.lineage", "runchain.stitch", "runchain.source")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The runchain modules ``path`` imports, at the top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
    assert "runchain.parallel" in edges["runchain.readers.folder"]  # `from .. import parallel`
    assert "runchain.report" in edges["runchain.cli"]  # imported inside a function
