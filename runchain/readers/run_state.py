"""Whether a run without an exit record is still running or has crashed.

Where a run file happens to end says nothing: wandb writes it in 32 KiB blocks plus a
flush every 15 s, so a live run's file usually ends inside a record, and one killed with
``kill -9`` can end cleanly. The rule (``docs/chains.md``, "State"):

1. An exit record: ``finished`` (exit code 0) or ``failed``.
2. Else, when the run was written on this machine and its folder's ``logs/debug.log``
   names the writer's pid: ``running`` while that process lives and started no later than
   the run, ``crashed`` once it is gone.
3. Else by the file's age: ``crashed`` once nothing was written for ``STALE_AFTER``
   seconds (a live run writes at least every 15 s: the flush, and system stats), else
   ``running``.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

from .record_log import RunFile

STALE_AFTER = 60.0  # seconds; 4x wandb's 15 s flush and stats interval
_PID = re.compile(r"Configure stats pid to (\d+)|MainThread:(\d+) ")
_STAMP = re.compile(r"-(\d{8}_\d{6})-")  # offline-run-<local time>-<id>


def writer_pid(folder: Path) -> int | None:
    """The pid of the process that called ``wandb.init``, from ``logs/debug.log``."""
    try:
        with open(folder / "logs" / "debug.log", encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    match = _PID.search(head)
    return int(match[1] or match[2]) if match else None


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), None if it does not exist. Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # stat field 22: start time


def run_state(run: RunFile, path: Path, now: float | None = None) -> str:
    """``finished``, ``failed``, ``running`` or ``crashed`` for the newest file of a run."""
    if run.exit_code is not None:
        return "finished" if run.exit_code == 0 else "failed"
    here = sys.platform == "linux" and run.host in (None, socket.gethostname())
    pid = writer_pid(path.parent) if here else None
    if pid is not None:
        started = process_start(pid)
        began = run.start_time or _folder_time(path.parent)
        if started is not None and (began is None or started <= began + 1):
            return "running"  # a pid reused by a later process does not count
        if run.host is not None or started is None:
            return "crashed"
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return "crashed"
    return "crashed" if age > STALE_AFTER else "running"


def _folder_time(folder: Path) -> float | None:
    match = _STAMP.search(folder.name)
    return time.mktime(time.strptime(match[1], "%Y%m%d_%H%M%S")) if match else None
