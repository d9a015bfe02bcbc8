"""Running or crashed is decided by the exit record, the writer process and the file's age,
never by where the run file happens to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import runchain
from runchain.readers.run_state import STALE_AFTER

pytestmark = pytest.mark.slow  # see docs/development.md

WRITER = r'''
import sys, wandb, runchain
run = wandb.init(project="live")
runchain.start(run, None)
runchain.log(run, {"loss": 1.0}, step=0)
print(run.id, flush=True)
sys.stdin.read()  # alive until the test closes stdin or kills it
run.finish()
'''


def start_writer(processes, wandb_dir) -> tuple[subprocess.Popen, str]:
    """A run being written by a live process (``processes``: ended with the test)."""
    proc = processes.start([sys.executable, "-c", WRITER], cwd=wandb_dir.parent,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()  # printed after wandb.init returned


def state(wandb_dir, run_id: str) -> str:
    return runchain.open_source(wandb_dir).tree.nodes[run_id].info.state


def test_a_live_run_is_running_and_a_killed_one_crashed(wandb_dir, processes):
    proc, run_id = start_writer(processes, wandb_dir)
    try:
        assert state(wandb_dir, run_id) == "running"  # however its file ends right now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert state(wandb_dir, run_id) == "crashed"  # its writer is gone: no need to wait


def test_a_run_that_finished_is_finished(wandb_dir, processes):
    proc, run_id = start_writer(processes, wandb_dir)
    proc.communicate("")  # closes stdin: the writer finishes its run
    assert proc.returncode == 0
    assert state(wandb_dir, run_id) == "finished"


def test_without_a_known_writer_a_run_is_crashed_once_its_file_is_stale(wandb_dir, processes):
    """A folder copied from elsewhere (no pid to ask): the file's age decides."""
    proc, run_id = start_writer(processes, wandb_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = wandb_dir.glob(f"offline-run-*-{run_id}")
    (folder / "logs" / "debug.log").unlink()
    run_file = folder / f"run-{run_id}.wandb"
    now = time.time()
    os.utime(run_file, (now, now))
    assert state(wandb_dir, run_id) == "running"  # written just now: it may be alive
    old = now - STALE_AFTER - 5
    os.utime(run_file, (old, old))
    assert state(wandb_dir, run_id) == "crashed"
