"""Shared by the framework callback tests: run an example script, read markers and
history, and the checks every framework's chain must pass."""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

import runchain
from helpers import ROOT, child_env, cli, need, step_into

from runchain.readers.record_log import read_run_file


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


# A process that imports torch and the framework once, then forks one child per example run
# (a request per line on stdin: argv, env, cwd, where stdout and stderr go; the exit code
# back on stdout). Each child is a real, separate process running the script as __main__ in
# its own environment and folder, and importing runchain and wandb itself, as
# ``python script.py`` would; it only skips the 6 s of importing torch and the framework.
_ZYGOTE = r"""
import json, os, runpy, sys, traceback
import torch
for name in sys.argv[1:]:
    __import__(name)
for line in sys.stdin:
    job = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the requests are the zygote's
            for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            sys.argv = job["argv"]
            try:
                if job["code"] is None:
                    runpy.run_path(sys.argv[0], run_name="__main__")
                else:
                    exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__"})
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""
_PRELOAD = {"hf_trainer.py": ["transformers", "accelerate"],
            "lightning_trainer.py": ["lightning.pytorch"]}
_zygotes: dict[str, subprocess.Popen] = {}


def _zygote(name: str) -> subprocess.Popen:
    need("torch", *_PRELOAD[name])  # a test that trains a model skips without them
    if name not in _zygotes or _zygotes[name].poll() is not None:
        _zygotes[name] = subprocess.Popen([sys.executable, "-c", _ZYGOTE, *_PRELOAD[name]],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          text=True)
    return _zygotes[name]


@atexit.register
def _stop_zygotes() -> None:
    for proc in _zygotes.values():
        proc.stdin.close()
        proc.wait(timeout=60)


def example(name: str, *args: object, env: dict[str, str] | None = None,
            plain: bool = False) -> str:
    """Run ``examples/<name>`` in its own process, forked from a process that imported the
    framework (``_ZYGOTE``); returns the id of the run it made. ``plain``: without
    ``RunchainCallback``, as plain framework code logs to W&B."""
    argv, code = [str(ROOT / "examples" / name), *map(str, args)], None
    if plain:
        module, base = _FRAMEWORKS[name]
        argv, code = ["-c", *argv], _PLAIN.format(module=module, base=base)
    zygote = _zygote(name)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        zygote.stdin.write(json.dumps({"argv": argv, "code": code, "cwd": os.getcwd(),
                                       "env": {**child_env(), **(env or {})},
                                       "stdout": str(out), "stderr": str(err)}) + "\n")
        zygote.stdin.flush()
        ready, _, _ = select.select([zygote.stdout], [], [], 900)
        if not ready:
            zygote.kill()
            raise AssertionError(f"{name} {args} did not finish in 900 s")
        line = zygote.stdout.readline()
        if not line:
            raise AssertionError(f"{name} {args}: the process running the examples died "
                                 f"(exit code {zygote.wait()})")
        returncode = int(line)
        stdout, stderr = out.read_text(), err.read_text()
    if returncode != 0:
        raise AssertionError(f"{name} {args} exited {returncode}:\n{stdout}\n{stderr}")
    return next(line.split()[1].rstrip(":") for line in stdout.splitlines()
                if line.startswith("run "))


def enter(made: types.SimpleNamespace, monkeypatch) -> None:
    """Step into the environment a module fixture made its runs in: its variables, its folder
    (``helpers.step_into``)."""
    step_into({"env": made.env, "cwd": made.base}, monkeypatch)


def marker(path: Path) -> dict:
    return json.loads(path.read_text())


def raw_history(wandb_dir: Path, run_id: str) -> dict[str, np.ndarray]:
    """Every column of ``run_id``'s rows as logged (its own segment, uncut)."""
    return own_rows(runchain.open_source(wandb_dir), run_id)


def own_rows(source: runchain.Source, run_id: str) -> dict[str, np.ndarray]:
    """Every column of ``run_id``'s rows as ``source`` holds them (its own segment, uncut)."""
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
    """``check_stitched`` of the chain ending at ``child`` in a folder, its segments as
    ``runchain chain --json`` prints them. Returns the stitched history."""
    segments = json.loads(cli("chain", child, "--dir", wandb_dir, "--json").stdout)["segments"]
    return check_stitched(runchain.open_source(wandb_dir), segments, parent, child, cut,
                          step_metric, loss)


def check_stitched(source: runchain.Source, segments: list[dict], parent: str, child: str,
                   cut: int, step_metric: str, loss: str) -> dict[str, np.ndarray]:
    """The chain ending at ``child``, on the framework's own axis ``step_metric``, keeps
    exactly ``parent``'s rows up to the checkpoint (``step_metric <= cut``), then all of
    ``child``'s, which go on from ``cut`` with no gap and no overlap: the global step is the
    framework's own. ``segments``: the chain's rows as ``runchain chain --json`` has them.
    Returns the stitched history."""
    assert [(s["run_id"], s["last_step"], s["step_metric"]) for s in segments] == [
        (parent, cut, step_metric), (child, segments[1]["last_step"], step_metric)]
    assert segments[1]["global_first"] > cut == segments[0]["global_last"]
    cols = source.history(child, keys=[loss, step_metric])
    assert np.array_equal(cols["global_step"], cols[step_metric])  # no offset added
    assert np.all(np.diff(cols["global_step"]) >= 0)
    from_parent = cols["run_id"] == parent
    raw_parent, raw_child = own_rows(source, parent), own_rows(source, child)
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
    """tests/wandb_standin's W&B holding the runs under ``wandb_dir`` as synced."""
    from wandb_standin import StandinApi, project_from_dir

    return StandinApi(project_from_dir(wandb_dir))
