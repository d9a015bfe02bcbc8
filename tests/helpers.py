"""Helpers the tests import (``from helpers import ...``): isolated W&B folders, the scripts
and the CLI run as a user runs them, and the processes a test starts. Fixtures and hooks
are in ``conftest.py``, which imports what it needs from here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Installs what the framework tests need; the test extra leaves torch out (from the package
# index it is a CUDA build of several GB).
FRAMEWORKS = ("pip install torch --index-url https://download.pytorch.org/whl/cpu && "
              "pip install -e '.[hf,lightning]'")
NO_SKIP = os.environ.get("RUNCHAIN_TEST_NO_SKIP") == "1"  # set by .ci/run: every test runs


def need(*modules: str) -> None:
    """Skip the calling test module unless ``modules`` import. Call it before importing them
    (and before ``framework_runs``); with ``RUNCHAIN_TEST_NO_SKIP=1`` the skip is a failure.

    The reason names the caller: xdist reports only one of identical collection skips."""
    caller = sys._getframe(1).f_globals["__name__"]
    for name in modules:
        pytest.importorskip(name, reason=f"{caller} needs {name}, which is not installed; to run "
                                         f"these tests: {FRAMEWORKS}")


CREDENTIAL_VARS = ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL", "WANDB_ENTITY",
                   "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME")


def isolate(mp: pytest.MonkeyPatch, base: Path, mode: str = "offline", server=None) -> Path:
    """Point every W&B directory into ``base`` and forget any credentials; with ``server``
    (the ``wandb_server`` fixture), go online against it, with its key."""
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        path = base / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        mp.setenv(name, str(path))
    for name in CREDENTIAL_VARS:
        mp.delenv(name, raising=False)
    # wandb.Api or wandb.init in this process starts wandb's service and exports its address:
    # a script given it sends its run to that service, which opens the run's files from its
    # own working folder (a relative dir= then fails online and loses the run file offline)
    mp.delenv("WANDB_SERVICE", raising=False)
    mp.setenv("NETRC", str(base / "no-netrc"))
    mp.setenv("RUNCHAIN_CACHE_DIR", str(base / "runchain_cache"))
    mp.setenv("WANDB_MODE", mode)
    mp.setenv("WANDB_SILENT", "true")
    mp.setenv("TQDM_DISABLE", "1")
    mp.chdir(base)
    if server is not None:
        for name, value in server.env({}).items():  # WANDB_MODE=online among them
            mp.setenv(name, value)
    return base / "wandb_dir" / "wandb"


def child_env() -> dict[str, str]:
    """This process's environment for a child process of its own, as ``python script.py``
    would start: without the address of a wandb service this process started (see
    ``isolate``)."""
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}


def script(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a top-level script (``do_run.py``, ``do_many.py``) in a real subprocess."""
    proc = subprocess.run([sys.executable, str(ROOT / name), *map(str, args)],
                          capture_output=True, text=True, env=child_env(), timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def cli(*args: object, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m runchain ARGS`` in a real subprocess; by default it must exit 0."""
    proc = subprocess.run([sys.executable, "-m", "runchain", *map(str, args)],
                          capture_output=True, text=True, env=child_env(), timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def do_run(*args: str, check: bool = True) -> str:
    """Run ``do_run.py`` and return the id of the run it made."""
    proc = script("do_run.py", *args, check=check)
    return re.search(r"^run (\S+): mode", proc.stdout, re.M)[1]


def plain_run(wandb_dir: Path, rows_to_log: list[dict], name: str | None = None) -> Path:
    """A plain wandb offline run (no runchain) logging ``rows_to_log``; returns its run file.

    In a subprocess: wandb's service may still be writing when an in-process finish() returns.
    """
    code = ("import json, sys, wandb\n"
            "run = wandb.init(project='p', dir=sys.argv[1], mode='offline', name=sys.argv[3] or None)\n"
            "for step, row in enumerate(json.loads(sys.argv[2])):\n"
            "    run.log(row, step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(wandb_dir.parent),
                           json.dumps(rows_to_log), name or ""],
                          capture_output=True, text=True, check=True, timeout=300)
    return run_file(wandb_dir, proc.stdout.split()[-1])


def rows(columns: dict) -> list[dict]:
    """History columns back to rows, as logged: a NaN (key not logged in that row) is left out."""
    names = list(columns)
    values = [columns[n].tolist() for n in names]
    return [{n: v for n, v in zip(names, row) if v == v} for row in zip(*values)]


def run_file(wandb_dir: Path, run_id: str) -> Path:
    (path,) = wandb_dir.glob(f"*run-*-{run_id}/run-{run_id}.wandb")
    return path


def step_into(made: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step into the environment a longer-lived fixture made its runs in (``made["env"]``,
    ``made["cwd"]``), for one test."""
    for name in set(os.environ) - set(made["env"]):
        monkeypatch.delenv(name)
    for name, value in made["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(made["cwd"])


# Runs in a fresh process: a process pool forks only where no other thread runs
# (``parallel.can_fork``), and a test process may hold a thread an earlier test started
# (wandb's, once any test built a wandb.Artifact). The pool is forced on (two workers, any
# size of work) and ``parallel.each`` is watched: each call's function, jobs, whether it
# asked for a pool, and whether a pool could fork then. argv: the code to run, which leaves
# what to send back in ``result``; the file to pickle the calls and the result to.
POOLED = r"""
import pickle, sys
import runchain, runchain.parallel
from runchain.readers import decode_once
from runchain.renderers.report import static
decode_once.PARALLEL_BYTES = 0
static.MIN_PARALLEL = 1
runchain.parallel.workers = lambda: 2
calls, each = [], runchain.parallel.each
def spy(func, jobs, desc, parallel):
    calls.append((func.__name__, desc, len(jobs), parallel, runchain.parallel.can_fork()))
    return each(func, jobs, desc, parallel)
runchain.parallel.each = spy
result = None
exec(sys.argv[1])
with open(sys.argv[2], "wb") as out:
    pickle.dump((calls, result), out)
"""


def pooled(code: str) -> tuple[list[tuple], object]:
    """Run ``code`` in a fresh process with runchain's process pool forced on (``POOLED``);
    returns the calls to ``parallel.each`` and the ``result`` the code left."""
    import pickle
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pooled.pickle"
        proc = subprocess.run([sys.executable, "-c", POOLED, code, str(out)],
                              capture_output=True, text=True, env=os.environ.copy(), timeout=600)
        assert proc.returncode == 0, proc.stderr
        return pickle.loads(out.read_bytes())


