"""parallel.each: the same results, in job order, in a process pool as in one process."""

import pytest

from helpers import pooled


@pytest.mark.parametrize("pool", [False, True])
def test_results_come_back_in_job_order(pool):
    """In a fresh process (``helpers.pooled``), so that no thread another test started keeps
    the pool from forking."""
    calls, (results, caller) = pooled(
        "import os\n"
        "def square(x):  # x squared, and the process that worked it out\n"
        "    return x * x, os.getpid()\n"
        f"result = runchain.parallel.each(square, [(x,) for x in range(7)], 't', {pool}), "
        "os.getpid()\n")
    assert calls == [("square", "t", 7, pool, True)]  # nothing kept the pool from forking
    assert [square for square, _ in results] == [x * x for x in range(7)]
    pids = {pid for _, pid in results}
    assert (caller not in pids) if pool else (pids == {caller})
