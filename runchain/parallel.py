"""Run independent jobs at once, with progress on stderr: decoding on every core this process
may use (``each``), requests on threads (``threads``), and runs whose children wait for them
(``parent_first``)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import threading
from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence

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


def threads(calls: Sequence[tuple[Any, Callable[..., Any], tuple]], workers: int,
            desc: str) -> Iterator[tuple[Any, Any]]:
    """Run each ``(key, fn, args)`` on at most ``workers`` threads (for requests, which wait
    rather than compute); yield (key, result) as each finishes.

    The first failure cancels the calls not yet started and is raised.
    """
    if not calls:
        return
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(fn, *args): key for key, fn, args in calls}
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                           desc=desc, unit="req", file=sys.stderr, disable=None, leave=False):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def parent_first(parents: Mapping[Hashable, Hashable | None], work: Callable[[Hashable], Any],
                 workers: int, desc: str,
                 done: Callable[[Hashable], Any] | None = None) -> list[Hashable]:
    """Run ``work(key)`` for every key of ``parents`` on at most ``workers`` threads; a key
    starts only after its parent's work finished (a parent that is not a key is done already).

    ``done(key)`` runs in this thread as each key finishes. After a failure no new work
    starts, the work under way finishes, and the first failure is raised as
    ``ParentFirstError`` carrying the keys that finished.

    Example:
        >>> parent_first({"a": None, "b": "a"}, print, 2, "runs")  # doctest: +SKIP
        ['a', 'b']

    Returns:
        The keys, in the order they finished.
    """
    waiting = list(parents)
    running: dict[concurrent.futures.Future, Hashable] = {}
    finished: list[Hashable] = []
    failed: tuple[Hashable, BaseException] | None = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(waiting), desc=desc, unit="run", file=sys.stderr, disable=None,
                 leave=False) as bar:
        while waiting or running:
            for key in list(waiting):
                if failed is not None or len(running) >= max(1, workers):
                    break
                parent = parents[key]
                if parent not in parents or parent in finished:
                    waiting.remove(key)
                    running[pool.submit(work, key)] = key
            if not running:
                break  # after a failure: nothing new starts
            ready, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in ready:
                key = running.pop(future)
                try:
                    future.result()
                except Exception as e:  # noqa: BLE001 (raised below, once the rest finished)
                    failed = failed or (key, e)
                    continue
                finished.append(key)
                if done is not None:
                    done(key)
                bar.update()
    if failed is not None:
        raise ParentFirstError(failed[0], failed[1], finished) from failed[1]
    return finished


class ParentFirstError(RuntimeError):
    """``parent_first``'s first failure: the key, its exception, and the keys that finished."""

    def __init__(self, key: Hashable, error: BaseException, finished: list[Hashable]):
        super().__init__(f"{key}: {error}")
        self.key, self.error, self.finished = key, error, finished
