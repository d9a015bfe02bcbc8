"""Shared by the framework callback tests: run an example script, read markers and
history, and the checks every framework's chain must pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

import runchain
from conftest import ROOT, cli

try:  # the readers are moving into runchain/readers/
    from runchain.readers.runfile import read_run_file
except ImportError:
    from runchain.runfile import read_run_file


def example(name: str, *args: object, env: dict[str, str] | None = None) -> str:
    """Run ``examples/<name>`` in a real subprocess; returns the id of the run it made."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{name} {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return next(line.split()[1].rstrip(":") for line in proc.stdout.splitlines()
                if line.startswith("run "))


def marker(path: Path) -> dict:
    return json.loads(path.read_text())


def raw_history(wandb_dir: Path, run_id: str) -> dict[str, np.ndarray]:
    """Every column of ``run_id``'s rows as logged (its own segment, uncut)."""
    source = runchain.open_source(wandb_dir)
    return {k: np.asarray(v) for k, v in source.fetch([runchain.Segment(run_id, None, 0)],
                                                      None)[run_id].items()}


def tree(wandb_dir: Path) -> dict[str, dict]:
    """``runchain tree --json`` in a subprocess, by run id."""
    return {run["id"]: run for run in json.loads(cli("tree", "--dir", wandb_dir, "--json").stdout)}


def artifacts(wandb_dir: Path, run_id: str) -> list:
    """The artifacts ``run_id`` logged, from its run file(s)."""
    return [a for path in sorted(wandb_dir.glob(f"*run-*-{run_id}/run-{run_id}.wandb"))
            for a in read_run_file(path, history=False).artifacts]


def check_chain(wandb_dir: Path, parent: str, child: str, cut: int, step_metric: str,
                parent_last_framework_step: int, loss: str) -> dict[str, np.ndarray]:
    """The chain ending at ``child`` keeps exactly ``parent``'s rows up to the checkpoint
    (``_step <= cut``), then all of ``child``'s, on one global axis with no gap and no
    overlap; returns the stitched history."""
    segments = json.loads(cli("chain", child, "--dir", wandb_dir, "--json").stdout)
    assert [(s["run_id"], s["last_step"]) for s in segments][0] == (parent, cut)
    assert segments[1]["global_first"] == cut + 1
    cols = runchain.open_source(wandb_dir).history(child, keys=[loss, step_metric])
    assert cols["global_step"].tolist() == list(range(len(cols["global_step"])))  # no gap, no overlap
    from_parent = cols["run_id"] == parent
    assert from_parent.sum() == cut + 1
    assert np.nanmax(cols[step_metric][from_parent]) == parent_last_framework_step
    assert np.nanmin(cols[step_metric][~from_parent]) > parent_last_framework_step
    return cols


class OnlineRun:
    """``wandb.Run`` of an online run, as the callbacks use it; records what they call."""

    def __init__(self, run_id: str, project: str, entity: str = "ent"):
        self.id, self.project, self.entity = run_id, project, entity
        self.offline, self.step, self.dir = False, 0, f"/nowhere/wandb/run-{run_id}/files"
        self.config = Config()
        self.use_artifact_calls: list[tuple[str, str | None]] = []
        self.define_metric_calls: list[tuple[str, str | None]] = []

    def use_artifact(self, name: str, type: str | None = None) -> None:
        self.use_artifact_calls.append((name, type))

    def define_metric(self, name: str, step_metric: str | None = None, **kwargs) -> None:
        self.define_metric_calls.append((name, step_metric))


class Config(dict):
    def update(self, values, allow_val_change: bool = False) -> None:
        super().update(values)


def standin_api(wandb_dir: Path):
    """tests/wandb_standin's W&B holding the runs under ``wandb_dir`` as synced; its
    artifacts also get the ``manifest`` that ``load_checkpoint`` reads online."""
    from wandb_standin import StandinApi, project_from_dir

    class Api(StandinApi):
        def artifact(self, name: str, type: str | None = None):
            found = super().artifact(name, type)
            found.manifest = types.SimpleNamespace(
                entries={path: types.SimpleNamespace(ref=None) for path in found.files})
            return found

    return Api(project_from_dir(wandb_dir))
