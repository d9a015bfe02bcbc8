"""Run independent jobs on every core this process may use, with progress on stderr."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from typing import Any, Callable, Sequence

from tqdm import tqdm


def workers() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def each(func: Callable[..., Any], jobs: Sequence[tuple], desc: str, parallel: bool) -> list[Any]:
    """``[func(*job) for job in jobs]``, in a process pool when ``parallel`` and it helps.

    ``func`` must be a module-level function; its arguments and results are pickled.
    """
    n = min(workers(), len(jobs)) if parallel else 1
    results: list[Any] = [None] * len(jobs)
    with tqdm(total=len(jobs), desc=desc, unit="job", file=sys.stderr,
              disable=None if len(jobs) > 1 else True, leave=False) as bar:
        if n <= 1:
            for i, job in enumerate(jobs):
                results[i] = func(*job)
                bar.update()
            return results
        # fork: the workers start at once with what this process has imported
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        with concurrent.futures.ProcessPoolExecutor(n, mp_context=context) as pool:
            futures = {pool.submit(func, *job): i for i, job in enumerate(jobs)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    return results
