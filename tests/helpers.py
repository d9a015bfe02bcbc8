"""Helpers the tests import (``from helpers import ...``): isolated W&B folders, the scripts
and the CLI run as a user runs them, and the processes a test starts. Fixtures and hooks
are in ``conftest.py``, which imports what it needs from here."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
import warnings
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
    """Run ``runchain ARGS`` in this process with click's ``CliRunner``, in this process's
    environment and folder; by default it must exit 0. Returns what ``runchain_process``
    would: the exit code, stdout and stderr as a user sees them.

    As a new process would: Python's own warning filters and registries (pytest's are set
    aside), a warning printed to stderr, an uncaught exception's traceback on stderr with exit
    code 1. The signal handlers the command installs (SIGTERM) are this process's again after
    it, and so is ``warnings.showwarning``, which the command replaces.

    Example:
        >>> cli("chain", "1a2b3c4d", "--json").stdout  # doctest: +SKIP
    """
    from click.testing import CliRunner
    from runchain.commands.cli import main
    argv = [str(a) for a in args]
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with warnings.catch_warnings():
            _python_warning_filters()
            warnings.showwarning = _warning_to_stderr
            result = CliRunner().invoke(main, argv, prog_name="runchain")
    finally:
        if threading.current_thread() is threading.main_thread():  # where the CLI sets them
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    returncode, stderr = result.exit_code, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))  # as Python prints it
    if check:
        assert returncode == 0, stderr
    return subprocess.CompletedProcess(["runchain", *argv], returncode, result.stdout, stderr)


def _python_warning_filters() -> None:
    """The warning filters a new Python process starts with (``python -W`` or
    ``PYTHONWARNINGS`` unset); setting them resets every warning registry, so a warning shows
    once per command, as once per process."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__",
                            append=True)
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's own ``showwarning``, to the ``sys.stderr`` of the moment (the runner's)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def runchain_process(*args: object, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m runchain ARGS`` in a real subprocess; by default it must exit 0.

    For what needs a process of its own, else ``cli``: a command that starts a W&B run
    (``publish``: wandb sets up once per process, from the environment of its first run, and
    its service may still write the run's file after ``finish()`` returns), imports blocked
    by ``PYTHONPATH``, and checks of ``cli`` itself. Pipes and signals: ``Processes``."""
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




# -- processes a test signals -----------------------------------------------------------------

# Runs first in each process ``Processes.start`` starts, then becomes the command (exec keeps
# its pid): SIGINT back to its default. A process started with SIGINT ignored (a background
# job: ``nohup python -m pytest &``, as CI runners start the suite) passes that on through
# exec to every process it starts, and a Ctrl-C a test sends them would never arrive. SIGPIPE
# and SIGXFSZ, which Python ignores, go back to theirs too, as ``subprocess`` does for its
# children. Python itself (``-S -I``: no site, no environment) starts in a few milliseconds.
SIGINT_DEFAULT = ("import os, signal, sys\n"
                  "for name in ('SIGINT', 'SIGPIPE', 'SIGXFSZ'):\n"
                  "    signal.signal(getattr(signal, name), signal.SIG_DFL)\n"
                  "os.execvp(sys.argv[1], sys.argv[1:])\n")


class Processes:
    """The processes one test starts and signals, or might leave running; the ``processes``
    fixture yields one and ends them all at teardown, whatever the test did.

    Example:
        >>> with Processes() as started:  # doctest: +SKIP
        ...     proc = started.start([sys.executable, "-m", "runchain", "tree", "--watch"])
        ...     os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, to its whole group
    """

    def __init__(self, grace: float = 3.0):
        self.grace = grace  # seconds from SIGTERM to SIGKILL at the end
        self.started: list[subprocess.Popen] = []

    def start(self, args, **popen) -> subprocess.Popen:
        """Start ``args`` (``subprocess.Popen`` takes ``popen``) as a terminal would for Ctrl-C:
        SIGINT at its default (``SIGINT_DEFAULT``), in a new session and process group whose
        id is its pid, so ``os.killpg(proc.pid, sig)`` reaches it and what it starts, and
        nothing else."""
        proc = subprocess.Popen([sys.executable, "-S", "-I", "-c", SIGINT_DEFAULT,
                                 *map(str, args)], start_new_session=True, **popen)
        self.started.append(proc)
        return proc

    def end(self) -> None:
        """End the group of each process started here: SIGTERM while the process runs, then,
        after ``grace`` seconds at most, SIGKILL to its whole group (what it started too, a
        ``do_run.py`` that ``do_many.py`` started, which may outlive it); close its pipes."""
        for proc in self.started:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=self.grace)
                except subprocess.TimeoutExpired:
                    pass
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=60)  # a hang guard: SIGKILL cannot be caught
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:  # a stdin whose reader is gone
                    pass

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.end()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # its group id is its pid (start_new_session)
    except ProcessLookupError:  # the whole group is gone already
        pass
