"""A run file that grew since it was cached is decoded only from where the cached part
ended (runchain/readers/grown.py), and gives exactly the rows of a cold read. A file
truncated or rewritten after caching is decoded from scratch; a torn tail stays torn.
Real offline runs, their bytes cut and put back as a live run's file grows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import runchain
from helpers import do_run, isolate, run_file
from runchain.readers import grown
from runchain.readers.record_log import read_run_file

pytestmark = pytest.mark.slow  # one real run of 2,000 steps, read many times


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One real offline run file of about 3 MB (more than one 1 MB read), and a second one."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("grown")
        wdir = isolate(mp, base)
        big = do_run("--n_steps", "2000", "--n_checkpoint_steps", "500", "--n_metrics", "20")
        other = do_run("--n_steps", "2200", "--n_checkpoint_steps", "500", "--n_metrics", "20",
                       "--seed", "3")
        return {"big": run_file(wdir, big).read_bytes(), "other": run_file(wdir, other).read_bytes(),
                "name": run_file(wdir, big).parent.name, "id": big}


@pytest.fixture
def live(made, tmp_path, monkeypatch):
    """A folder holding the run's file as a live run would: write(bytes) puts them there in
    place (same inode); read() reads the folder through the cache and returns the run's
    columns and RunInfo; calls["grew"] counts the reads that went on from the cached part."""
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "wandb" / made["name"]
    folder.mkdir(parents=True)
    path = folder / f"run-{made['id']}.wandb"
    path.write_bytes(b"")
    calls = {"grew": 0}
    resume = grown.resume

    def counted(*args):
        meta = resume(*args)
        calls["grew"] += meta is not None
        return meta

    monkeypatch.setattr("runchain.readers.decode_once.resume", counted)

    def write(data: bytes) -> None:
        with path.open("r+b") as f:  # in place, as wandb appends: the inode stays
            f.write(data)
            f.truncate(len(data))

    def read():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut file is torn, and says so
            source = runchain.open_source(folder.parent)
            history = source.fetch([runchain.Segment(made["id"], None, 0)], None)[made["id"]]
            columns = {k: np.asarray(history[k]) for k in history}
        return columns, source.tree.nodes[made["id"]].info

    return {"path": path, "write": write, "read": read, "calls": calls, "data": made["big"],
            "other": made["other"]}


def _cold(path: Path) -> dict[str, np.ndarray]:
    """The rows of the file as it is now, decoded with no cache at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_run_file(path).history


def _same(columns, expected) -> None:
    assert list(columns) == list(expected) or set(columns) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(columns[key], np.float64),
                                      np.asarray(expected[key], np.float64), err_msg=key)


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.9])
def test_a_file_read_part_written_then_whole_gives_the_rows_of_a_cold_read(live, cut):
    data = live["data"]
    live["write"](data[:int(len(data) * cut)])
    part, run = live["read"]()
    assert part["_step"].size < 2000 and run.state != "finished"
    live["write"](data)
    columns, run = live["read"]()
    assert live["calls"]["grew"] == 1  # decoded from where the cached part ended
    _same(columns, _cold(live["path"]))
    assert columns["_step"].size == 2000 and run.state == "finished"
    assert [c.step for c in run.checkpoints] == [499, 999, 1499, 1999]


def test_a_file_growing_in_many_steps_keeps_every_row_once(live):
    data = live["data"]
    for cut in (0.1, 0.25, 0.26, 0.5, 0.75, 1.0):
        live["write"](data[:int(len(data) * cut)])
        columns, _ = live["read"]()
        _same(columns, _cold(live["path"]))
    assert live["calls"]["grew"] == 5


def test_a_truncated_file_is_decoded_from_scratch(live):
    data = live["data"]
    live["write"](data)
    live["read"]()
    live["write"](data[:len(data) // 2])
    columns, _ = live["read"]()
    assert live["calls"]["grew"] == 0
    _same(columns, _cold(live["path"]))


def test_a_file_rewritten_with_other_bytes_is_decoded_from_scratch(live):
    data, other = live["data"], live["other"]
    live["write"](data[:len(data) // 2])
    live["read"]()
    live["write"](other)  # longer, another run's bytes in the same file
    columns, _ = live["read"]()
    assert live["calls"]["grew"] == 0
    _same(columns, _cold(live["path"]))
    assert columns["_step"].size == 2200


def test_a_torn_tail_stays_torn_until_its_record_is_whole(live):
    data = live["data"]
    half = len(data) // 2
    live["write"](data[:half])
    first, run = live["read"]()
    live["write"](data[:half + 3])  # a few more bytes: still inside the same record
    again, run_again = live["read"]()
    _same(again, first)
    _same(again, _cold(live["path"]))
    assert run.state == run_again.state != "finished"
