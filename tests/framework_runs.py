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

from runchain.readers.runfile import read_run_file


# Runs examples/<name> with RunchainCallback replaced by the framework's empty callback:
# the script as it was before the one added line, W&B's own integration alone.
_PLAIN = """import runpy, sys
import runchain.integrations.{module} as m
m.RunchainCallback = lambda **kwargs: m.{base}()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
_FRAMEWORKS = {"hf_trainer.py": ("transformers", "TrainerCallback"),
               "lightning_trainer.py": ("lightning", "Callback")}


def example(name: str, *args: object, env: dict[str, str] | None = None,
            plain: bool = False) -> str:
    """Run ``examples/<name>`` in a real subprocess; returns the id of the run it made.
    ``plain``: without ``RunchainCallback``, as plain framework code logs to W&B."""
    script = [str(ROOT / "examples" / name)]
    if plain:
        module, base = _FRAMEWORKS[name]
        script = ["-c", _PLAIN.format(module=module, base=base), *script]
    proc = subprocess.run([sys.executable, *script, *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{name} {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return next(line.split()[1].rstrip(":") for line in proc.stdout.splitlines()
                if line.startswith("run "))


def enter(made: types.SimpleNamespace, monkeypatch) -> None:
    """Step into the environment a module fixture made its runs in: its variables, its folder."""
    for k, v in made.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(made.base)


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
                loss: str) -> dict[str, np.ndarray]:
    """The chain ending at ``child``, on the framework's own axis ``step_metric``, keeps
    exactly ``parent``'s rows up to the checkpoint (``step_metric <= cut``), then all of
    ``child``'s, which go on from ``cut`` with no gap and no overlap: the global step is the
    framework's own. Returns the stitched history."""
    segments = json.loads(cli("chain", child, "--dir", wandb_dir, "--json").stdout)
    assert [(s["run_id"], s["last_step"], s["step_metric"]) for s in segments] == [
        (parent, cut, step_metric), (child, segments[1]["last_step"], step_metric)]
    assert segments[1]["global_first"] > cut == segments[0]["global_last"]
    cols = runchain.open_source(wandb_dir).history(child, keys=[loss, step_metric])
    assert np.array_equal(cols["global_step"], cols[step_metric])  # no offset added
    assert np.all(np.diff(cols["global_step"]) >= 0)
    from_parent = cols["run_id"] == parent
    raw_parent, raw_child = raw_history(wandb_dir, parent), raw_history(wandb_dir, child)
    kept = raw_parent[step_metric] <= cut
    assert from_parent.sum() == kept.sum() < len(kept)  # the rows trained into the checkpoint
    assert np.array_equal(cols[loss][from_parent], raw_parent[loss][kept], equal_nan=True)
    assert np.array_equal(cols[loss][~from_parent], raw_child[loss], equal_nan=True)  # all of them
    assert np.nanmax(cols[step_metric][from_parent]) == cut
    assert np.nanmin(cols[step_metric][~from_parent]) > cut
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
