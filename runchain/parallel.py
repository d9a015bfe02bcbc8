"""Run independent jobs on every core this process may use, with progress on stderr."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import threading
from typing import Any, Callable, Sequence

from tqdm import tqdm
from tqdm._monitor import TMonitor


def workers() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether a process pool may fork: Linux, and no other thread runs (wandb starts some
    after ``wandb.Api()``) that a fork could copy in the middle of holding a lock.

    spawn and forkserver are not used instead: they re-import the caller's main module, which
    breaks scripts without an ``if __name__ == "__main__"`` guard.
    """
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not isinstance(t, TMonitor)]
    return sys.platform == "linux" and not others


def each(func: Callable[..., Any], jobs: Sequence[tuple], desc: str, parallel: bool) -> list[Any]:
    """``[func(*job) for job in jobs]``, in a process pool when ``parallel`` and forking is
    safe (``can_fork``), else one after the other.

    ``func`` must be a module-level function; its arguments and results are pickled.
    """
    n = min(workers(), len(jobs)) if parallel and can_fork() else 1
    results: list[Any] = [None] * len(jobs)
    with tqdm(total=len(jobs), desc=desc, unit="job", file=sys.stderr,
              disable=None if len(jobs) > 1 else True, leave=False) as bar:
        if n <= 1:
            for i, job in enumerate(jobs):
                results[i] = func(*job)
                bar.update()
            return results
        context = multiprocessing.get_context("fork")  # workers start with what is imported
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=context) as pool:
            futures = {pool.submit(func, *job): i for i, job in enumerate(jobs)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    return results
