"""parallel.each: the same results, in job order, in a process pool as in one process."""

import os

import pytest

import runchain.parallel as parallel


def _square(x: int) -> tuple[int, int]:
    """x squared, and the process that worked it out."""
    return x * x, os.getpid()


@pytest.mark.parametrize("pool", [False, True])
def test_results_come_back_in_job_order(monkeypatch, pool):
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    assert parallel.can_fork(), "another thread runs: the pool would not fork"
    results = parallel.each(_square, [(x,) for x in range(7)], "t", pool)
    assert [square for square, _ in results] == [x * x for x in range(7)]
    pids = {pid for _, pid in results}
    assert (os.getpid() not in pids) if pool else (pids == {os.getpid()})
