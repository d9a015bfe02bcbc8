"""The local reader: bulk history decoding, the run file cache, runs resumed in place, and
use_artifact records, on real offline run files."""

import json
import os
import shutil
import struct
import warnings
import zlib

import numpy as np
import pytest
from wandb.proto import wandb_internal_pb2 as pb

import runchain
from helpers import do_run, plain_run, pooled, run_file
import runchain.parallel
from runchain.core import lineage
from runchain.readers import decode_once, history_columns
from runchain.readers.record_log import (IncompleteRunWarning, read_run_file, record_kind,
                                         scan_records)


pytestmark = pytest.mark.slow  # see docs/development.md


def _history_records(path):
    return [r for r in scan_records(path.read_bytes()).records if record_kind(r) == "history"]


def _equal(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_bulk_decoding_equals_per_item_json_on_a_real_file(tree):
    records = _history_records(run_file(tree["dir"], tree["root"]))
    fast = history_columns.decode_history(records)
    _equal(fast, history_columns._slow(records))
    assert fast["_step"].tolist() == list(range(40))
    assert {"loss/00", "global_step", "_runtime"} <= set(fast)


def test_non_numeric_values_fall_back_to_exact_decoding_and_keep_numeric_columns(wandb_dir):
    path = plain_run(wandb_dir, [
        {"loss": 1.5, "note": "warmup", "flag": True, "nested": {"a": 1}},
        {"loss": float("nan"), "note": "x"},
        {"loss": 0.25, "big": float("inf"), "nested": {"a": 2}},
    ])
    records = _history_records(path)
    fast = history_columns.decode_history(records)
    _equal(fast, history_columns._slow(records))
    assert fast["_step"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(fast["loss"], [1.5, np.nan, 0.25])
    np.testing.assert_array_equal(fast["big"], [np.nan, np.nan, np.inf])
    assert "note" not in fast and "flag" not in fast  # strings and booleans are not plotted
    nested = [k for k in fast if k.startswith("nested")]
    assert len(nested) == 1 and fast[nested[0]].tolist()[::2] == [1.0, 2.0]


def test_records_written_with_flat_keys_decode_too():
    """Older writers put the key in HistoryItem.key instead of nested_key."""
    records = []
    for step in range(3):
        record = pb.Record(num=step + 1)
        for key, value in (("_step", step), ("loss", 1.0 / (step + 1)), ("acc", step * 0.5)):
            record.history.item.add(key=key, value_json=json.dumps(value))
        records.append(record.SerializeToString())
    fast = history_columns.decode_history(records)
    _equal(fast, history_columns._slow(records))
    assert fast["loss"].tolist() == [1.0, 0.5, 1.0 / 3] and fast["_step"].tolist() == [0, 1, 2]


def _history_of_every_run(directory):
    src = runchain.open_source(directory)
    histories = src.fetch([runchain.Segment(info.id, None, 0) for info in src.runs], None)
    out = {info.id: {k: np.array(v) for k, v in histories[info.id].items()} for info in src.runs}
    return src, out


def test_warm_read_comes_from_the_cache_and_equals_the_cold_read(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    cold_src, cold = _history_of_every_run(tree["dir"])
    for run_id, columns in cold.items():  # what the cache holds is what the file says
        direct = read_run_file(run_file(tree["dir"], run_id)).history
        _equal(columns, direct)
    assert list((tmp_path / "cache").rglob("*.npy"))

    def no_reading(*args, **kwargs):
        raise AssertionError("a warm read decoded a run file")
    monkeypatch.setattr(decode_once, "read_run_file", no_reading)
    warm_src, warm = _history_of_every_run(tree["dir"])
    assert warm.keys() == cold.keys()
    for run_id in cold:
        _equal(warm[run_id], cold[run_id])
    assert warm_src.runs == cold_src.runs


@pytest.mark.parametrize("change", ["grows", "shrinks", "replaced"])
def test_a_changed_run_file_is_read_again_never_served_stale(tree, tmp_path, monkeypatch, change):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    path = run_file(copy, tree["root"])
    whole = path.read_bytes()
    if change == "grows":  # the process was still writing the first time we looked
        path.write_bytes(whole[:len(whole) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)
        before = runchain.open_source(copy).tree.nodes[tree["root"]].info.last_step
        if change == "grows":
            path.write_bytes(whole)
        elif change == "shrinks":
            path.write_bytes(whole[:len(whole) // 2])
        else:  # same size, other content: the child's file moved over the root's
            other = run_file(copy, tree["child"]).read_bytes()
            os.replace(_write(tmp_path / "new.wandb", other), path)
        after = runchain.open_source(copy)
    expected = read_run_file(path) if change != "shrinks" else None
    node = after.tree.nodes.get(tree["root"])
    if change == "grows":
        assert before < 39 and node.info.last_step == 39
        _equal(after.fetch(after.chain(tree["root"]), None)[tree["root"]], expected.history)
    elif change == "shrinks":
        assert before == 39 and node.info.last_step < 39 and node.info.state == "crashed"
    else:  # the file at that path now holds the child's 15 rows
        assert before == 39 and node.info.last_step == 14
        _equal(after.fetch(after.chain(tree["root"]), None)[tree["root"]], expected.history)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_an_unwritable_cache_folder_warns_and_still_reads(tree, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="RUNCHAIN_CACHE_DIR"):
        src = runchain.open_source(tree["dir"])
    cols = src.history(tree["child"], keys=["loss/00"])
    assert cols["global_step"].tolist() == list(range(35))


def test_a_cache_cleared_while_reading_is_decoded_again(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    src = runchain.open_source(tree["dir"])
    src.history(tree["child"])  # decoded and cached
    shutil.rmtree(tmp_path / "cache")
    cols = src.history(tree["child"], keys=["loss/00"])
    assert cols["global_step"].tolist() == list(range(35))


def test_an_empty_cache_setting_turns_the_cache_off(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    src = runchain.open_source(tree["dir"])
    assert len(src.history(tree["child"])["global_step"]) == 35
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_decoding_in_a_process_pool_gives_what_one_process_gives(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "serial"))
    _, serial = _history_of_every_run(tree["dir"])
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "pool"))
    calls, pooled_histories = pooled(
        "import numpy as np\n"
        f"src = runchain.open_source({str(tree['dir'])!r})\n"
        "histories = src.fetch([runchain.Segment(i.id, None, 0) for i in src.runs], None)\n"
        "result = {i.id: {k: np.array(v) for k, v in histories[i.id].items()} for i in src.runs}\n")
    # both stages in the pool, and it really forked
    assert calls == [("_lineage", "reading run files", 2, True, True),
                     ("_history", "decoding histories", 2, True, True)]
    assert pooled_histories.keys() == serial.keys()
    for run_id in serial:
        _equal(pooled_histories[run_id], serial[run_id])


# -- a run resumed in place: one run, several folders ---------------------------------

def test_a_run_resumed_in_place_reads_as_the_uninterrupted_run(wandb_dir):
    whole = do_run("--n_steps", 60, "--n_checkpoint_steps", 10, "--seed", 4, "--n_metrics", 3)
    do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--seed", 4, "--n_metrics", 3,
           "--run_id", "inplace1")
    do_run("--n_steps", 30, "--n_checkpoint_steps", 10, "--run_id", "inplace1",
           "--checkpoint_artifact", "inplace1@29")
    assert len(list(wandb_dir.glob("offline-run-*-inplace1*"))) == 2
    src = runchain.open_source(wandb_dir)
    node = src.tree.nodes["inplace1"]
    assert node.parent_run is None and node.info.last_step == 59
    assert [c.step for c in node.info.checkpoints] == [9, 19, 29, 39, 49, 59]
    merged = src.history("inplace1")
    expected = src.history(whole)
    assert merged["step"].tolist() == list(range(60))
    for key in ("loss/00", "accuracy/01", "oscillation/02", "global_step"):
        np.testing.assert_array_equal(merged[key], expected[key], err_msg=key)


def test_a_later_segment_supersedes_the_rows_it_rewound(wandb_dir):
    do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--n_metrics", 2, "--run_id", "rewind1")
    do_run("--n_steps", 15, "--n_checkpoint_steps", 10, "--run_id", "rewind1",
           "--checkpoint_artifact", "rewind1@19", "--lr", "0.2")
    first, second = sorted(wandb_dir.glob("offline-run-*-rewind1*"))
    first_rows = read_run_file(next(first.glob("*.wandb"))).history
    second_rows = read_run_file(next(second.glob("*.wandb"))).history
    assert second_rows["_step"].tolist() == list(range(20, 35))
    src = runchain.open_source(wandb_dir)
    assert src.tree.nodes["rewind1"].info.last_step == 34  # not 39: steps 35-39 were rewound
    merged = src.history("rewind1")
    assert merged["step"].tolist() == list(range(35))
    np.testing.assert_array_equal(merged["loss/00"][:20], first_rows["loss/00"][:20])
    np.testing.assert_array_equal(merged["loss/00"][20:], second_rows["loss/00"])
    assert not np.array_equal(first_rows["loss/00"][20:35], second_rows["loss/00"])


# -- use_artifact records: the input edge of runs logged online ------------------------

def _append_records(path, records):
    """Append records to a run file in its own chunk format (the inverse of scan_records)."""
    data = bytearray(path.read_bytes())
    for record in records:
        body = record.SerializeToString()
        first = True
        while True:
            room = 32768 - len(data) % 32768
            if room < 7:
                data += bytes(room)
                continue
            part, body = body[:room - 7], body[room - 7:]
            kind = (1 if not body else 2) if first else (4 if not body else 3)
            crc = zlib.crc32(part, zlib.crc32(bytes((kind,))))
            data += struct.pack("<IHB", crc, len(part), kind) + part
            first = False
            if not body:
                break
    path.write_bytes(bytes(data))


def test_a_plain_wandb_run_whose_file_records_use_artifact_gets_its_parent(tree, tmp_path,
                                                                          wandb_dir):
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    path = plain_run(copy, [{"loss": 1.0}, {"loss": 0.5}])  # no runchain breadcrumbs
    plain = path.name[4:-6]
    root = runchain.open_source(copy).tree.nodes[tree["root"]].info
    version = {c.step: c.version for c in root.checkpoints}[29]
    record = pb.Record(use_artifact=pb.UseArtifactRecord(
        id="QXJ0aWZhY3Q6MQ==", type="checkpoint", name=f"run-{tree['root']}-checkpoint:{version}"))
    _append_records(path, [record])
    read = read_run_file(path)
    assert read.used == [("checkpoint", f"run-{tree['root']}-checkpoint:{version}")]
    assert read.history["_step"].tolist() == [0, 1]  # appending kept every record readable
    src = runchain.open_source(copy)
    node = src.tree.nodes[plain]
    assert node.info.used == ((tree["root"], 29),)
    assert (node.parent_run, node.parent_step, node.global_offset) == (tree["root"], 29, 30)
    assert src.history(plain)["global_step"].tolist()[-3:] == [29, 30, 31]


def test_histories_reads_the_runs_of_every_chain_in_one_batch_then_gives_each_chain(tree, tmp_path,
                                                                                  monkeypatch):
    """``source.histories()``: each leaf's chain as ``history(leaf)`` gives it, in leaf
    order; every run is decoded before the first chain is given, so the rest decode
    nothing; an unknown leaf raises before any read."""
    folder = tmp_path / "wandb"
    shutil.copytree(tree["dir"], folder)
    other = plain_run(folder, [{"loss/00": 1.0 / (i + 1)} for i in range(5)]).name[4:-6]
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    src = runchain.open_source(folder)
    with pytest.raises(runchain.RunNotFoundError):
        next(src.histories(["nosuchrun"]))
    given = src.histories()
    first = next(given)

    def no_decoding(*args):
        raise AssertionError("a chain after the first decoded a run file")
    decode = decode_once._history
    monkeypatch.setattr(decode_once, "_history", no_decoding)
    chains = [first, *given]
    assert [leaf for leaf, _ in chains] == lineage.leaves(src.tree)
    assert {tree["child"], other} <= {leaf for leaf, _ in chains}
    monkeypatch.setattr(decode_once, "_history", decode)
    fresh = runchain.open_source(folder)
    for leaf, columns in chains:
        want = fresh.history(leaf)
        assert columns.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(columns[key], want[key], err_msg=key)
