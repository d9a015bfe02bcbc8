"""parallel.each: the same results in a process pool as in one process, from a list or a generator."""

import os
import time
from pathlib import Path

import pytest

import runchain.parallel as parallel


def _square_in(folder: str, x: int) -> tuple[int, int]:
    """x squared and the process that worked it out; leaves a file named x behind."""
    Path(folder, str(x)).touch()
    return x * x, os.getpid()


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    assert parallel.can_fork(), "another thread runs: the pool would not fork"


@pytest.mark.parametrize("pool", [False, True])
def test_results_come_back_in_job_order(tmp_path, two_workers, pool):
    results = parallel.each(_square_in, [(str(tmp_path), x) for x in range(7)], "t", pool)
    assert [square for square, _ in results] == [x * x for x in range(7)]
    pids = {pid for _, pid in results}
    assert (os.getpid() not in pids) if pool else (pids == {os.getpid()})


def test_the_pool_works_on_given_jobs_while_a_generator_makes_the_next(tmp_path, two_workers):
    seen = []

    def jobs():
        yield str(tmp_path), 0
        for _ in range(600):  # a guard against a hang, not a time limit: 0 shows up at once
            if (tmp_path / "0").exists():
                break
            time.sleep(0.1)
        seen.append((tmp_path / "0").exists())
        yield str(tmp_path), 1

    results = parallel.each(_square_in, jobs(), "t", parallel=True, total=2)
    assert seen == [True]  # job 0 was done before the generator made job 1
    assert [square for square, _ in results] == [0, 1]
    assert os.getpid() not in {pid for _, pid in results}


def test_a_generator_is_read_lazily_in_one_process_too(tmp_path):
    made = []

    def jobs():
        for x in range(3):
            made.append(x)
            yield str(tmp_path), x
            assert (tmp_path / str(x)).exists()  # worked out before the next one is made

    assert [s for s, _ in parallel.each(_square_in, jobs(), "t", False, total=3)] == [0, 1, 4]
    assert made == [0, 1, 2]
