"""Reading a big run file a few blocks at a time and decoding its history in batches gives
what reading it whole gave; the CSV of a chain streams out byte for byte as before.

Memory itself is measured by ``benchmarks/bench_read.py --only-big``, not asserted here."""

import csv
import io
import json
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from wandb.proto import wandb_internal_pb2 as pb

import runchain
from helpers import cli, plain_run, run_file
from runchain.commands import cli as runchain_cli
from runchain.readers import history_columns, record_log
from runchain.readers.record_log import (IncompleteRunWarning, read_run_file, record_kind,
                                         scan_records)
from runchain.core.stitch import STITCHED


pytestmark = pytest.mark.slow  # see docs/development.md

HEADER = b":W&B\xe1\xbe\x00"


def _write(path, records):
    """``records`` (serialized) as a run file, in LevelDB-log chunks; returns the file offset
    where each record's last chunk ends."""
    data, ends = bytearray(HEADER), []
    for body in records:
        first = True
        while True:
            room = record_log.BLOCK_LEN - len(data) % record_log.BLOCK_LEN
            if room < 7:
                data += bytes(room)
                continue
            part, body = body[:room - 7], body[room - 7:]
            kind = (1 if not body else 2) if first else (4 if not body else 3)
            data += struct.pack("<IHB", zlib.crc32(part, zlib.crc32(bytes((kind,)))), len(part), kind)
            data += part
            first = False
            if not body:
                break
        ends.append(len(data))
    path.write_bytes(bytes(data))
    return ends


def _history(step, metrics=8, extra=None):
    record = pb.Record(num=step + 2)
    for m in range(metrics):
        record.history.item.add(nested_key=[f"loss/{m:02d}"], value_json=repr(step / (m + 1)))
    record.history.item.add(nested_key=["_step"], value_json=str(step))
    if extra:
        record.history.item.add(nested_key=[extra], value_json="1.5")
    return record.SerializeToString()


def _records(steps):
    """A run record with a config bigger than three blocks, history rows (a key that only the
    last rows log), a checkpoint artifact, and an exit record."""
    run = pb.Record(num=1, run=pb.RunRecord(run_id="big", project="p"))
    run.run.config.update.add(key="blob", value_json=json.dumps("x" * (3 * record_log.BLOCK_LEN + 5)))
    artifact = pb.Record(artifact=pb.ArtifactRecord(name="run-big-checkpoint", type="checkpoint",
                                                    metadata=json.dumps({"step": 3})))
    rows = [_history(s, extra="late" if s >= steps - 5 else None) for s in range(steps)]
    return [run.SerializeToString(), *rows[:4], artifact.SerializeToString(), *rows[4:],
            pb.Record(exit=pb.RunExitRecord(exit_code=0)).SerializeToString()]


@pytest.mark.parametrize("read_blocks", [1, 3, 32])
def test_records_read_a_few_blocks_at_a_time_are_the_records_written(tmp_path, monkeypatch,
                                                                     read_blocks):
    monkeypatch.setattr(record_log, "READ_BLOCKS", read_blocks)
    written = _records(20_000)
    path = tmp_path / "run-big.wandb"
    _write(path, written)
    assert path.stat().st_size > 4 * read_blocks * record_log.BLOCK_LEN  # many reads
    scan = record_log.RecordScan()
    with open(path, "rb") as f:
        assert list(record_log.iter_records(f, str(path), scan)) == written
    assert scan.reason is None and scan.torn_at is None


def test_a_file_cut_near_read_boundaries_yields_every_record_before_the_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(record_log, "READ_BLOCKS", 2)
    written = _records(800)
    whole = tmp_path / "whole.wandb"
    ends = _write(whole, written)
    data = whole.read_bytes()
    read_len = 2 * record_log.BLOCK_LEN
    cuts = {c for k in range(1, len(data) // read_len + 1)
            for c in range(k * read_len - 9, k * read_len + 9)}
    cuts |= {ends[0] - 1, ends[0] - record_log.BLOCK_LEN, ends[-1] - 1, 8, 7, 3}  # mid-record too
    cut_file = tmp_path / "run-cut.wandb"
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        cut_file.write_bytes(data[:cut])
        expected = [r for r, end in zip(written, ends) if end <= cut]
        scan = record_log.RecordScan()
        with open(cut_file, "rb") as f:
            assert list(record_log.iter_records(f, str(cut_file), scan)) == expected, cut
        assert scan_records(data[:cut]).records == expected, cut
        if scan.reason is not None:
            assert scan.torn_at <= cut
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IncompleteRunWarning)
            run = read_run_file(cut_file)
        assert not run.complete
        rows = [r for r in expected if record_kind(r) == "history"]
        assert run.history["_step"].tolist() == list(range(len(rows))), cut


def test_a_big_real_run_read_in_small_pieces_decodes_as_wandbs_record_class_does(
        wandb_dir, monkeypatch):
    code = ("import math, sys, wandb\n"
            "run = wandb.init(project='p', dir=sys.argv[1], mode='offline')\n"
            "for step in range(1500):\n"
            "    row = {f'm/{k:02d}': step * 0.5 + k for k in range(30)}\n"
            "    row.update(note=f'row {step}', gone=math.nan if step % 5 == 0 else step)\n"
            "    if step % 7 == 0:\n"
            "        row['sparse'] = step\n"
            "    run.log(row, step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(wandb_dir.parent)],
                          capture_output=True, text=True, check=True, timeout=300)
    path = run_file(wandb_dir, proc.stdout.split()[-1])
    whole_records = scan_records(path.read_bytes()).records
    rows = [r for r in whole_records if record_kind(r) == "history"]
    assert path.stat().st_size > 8 * record_log.BLOCK_LEN  # many reads of one block
    expected = history_columns._slow(rows)  # wandb's own Record class, item by item

    monkeypatch.setattr(record_log, "READ_BLOCKS", 1)
    monkeypatch.setattr(history_columns, "BATCH_BYTES", 20_000)  # dozens of batches
    run = read_run_file(path)
    assert list(run.history) == list(expected)
    for key in expected:
        assert run.history[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(run.history[key], expected[key], err_msg=key)
    assert run.history["_step"].tolist() == list(range(1500))
    assert np.isnan(run.history["sparse"]).sum() == 1500 - len(range(0, 1500, 7))
    assert "note" not in run.history
    lineage = read_run_file(path, history=False)
    assert (lineage.first_step, lineage.last_step, lineage.history) == (0, 1499, {})
    assert lineage.complete and lineage.run_id == run.run_id


def test_a_key_first_logged_in_a_later_batch_is_nan_in_the_earlier_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(history_columns, "BATCH_BYTES", 5_000)
    path = tmp_path / "run-big.wandb"
    _write(path, _records(400))
    run = read_run_file(path)
    assert run.history["_step"].tolist() == list(range(400))
    late = run.history["late"]
    assert np.isnan(late[:395]).all() and late[395:].tolist() == [1.5] * 5
    np.testing.assert_array_equal(run.history["loss/03"], np.arange(400) / 4)
    assert run.complete and run.artifacts[0].metadata == {"step": 3}


def test_an_undecodable_history_record_midway_still_lets_the_records_after_it_count(
        tmp_path, monkeypatch):
    monkeypatch.setattr(history_columns, "BATCH_BYTES", 5_000)
    records = _records(300)
    bad = b"\x08\x07" + b"\x12\x04\x0a\x09\xff\xff"  # num 7, a history whose item runs past it
    assert record_kind(bad) == "history"
    records.insert(150, bad)
    path = tmp_path / "run-bad.wandb"
    _write(path, records)
    with pytest.warns(IncompleteRunWarning, match="undecodable record"):
        run = read_run_file(path)
    assert run.torn == "undecodable record" and run.history["_step"].size == 0
    assert run.exit_code == 0 and [a.name for a in run.artifacts] == ["run-big-checkpoint"]


def _whole_column_csv(columns):
    """The CSV writer before it streamed: every column as one Python list, then csv.writer."""
    keys = list(STITCHED) + [k for k in columns if k not in STITCHED]
    values = [columns[k].tolist() for k in keys]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(keys)
    writer.writerows(zip(*[[("" if isinstance(v, float) and v != v else v) for v in col]
                           for col in values]))
    return out.getvalue().encode()


def test_chain_csv_of_a_real_run_is_byte_identical_to_the_whole_column_writer(
        wandb_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    logged = [{"loss": 1.0 / (s + 1), "acc": (s if s % 3 else float("nan")), "big": 10.0 ** (s - 20),
               **({"rare": -0.0} if s % 11 == 0 else {})} for s in range(60)]
    run_id = plain_run(wandb_dir, logged).name[len("run-"):-len(".wandb")]
    out = tmp_path / "chain.csv"
    cli("chain", run_id, "--dir", wandb_dir, "--csv", out)
    columns = runchain.open_source(wandb_dir).history(run_id)
    assert out.read_bytes() == _whole_column_csv(columns)
    text = out.read_text()
    assert f"0,{run_id},0," in text  # global_step and step are ints, not 0.0
    assert ",," in text  # NaN is an empty field


def test_csv_across_many_chunks_is_byte_identical_to_the_whole_column_writer(tmp_path):
    n = 20_000  # more than two chunks of rows, and a partial one
    rng = np.random.default_rng(1)
    metric = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    metric[rng.integers(0, n, 500)] = np.nan
    metric[[0, 8191, 8192, 16383, 16384, n - 1]] = [np.nan, np.inf, -np.inf, -0.0, np.nan, 1e308]
    steps = np.arange(n, dtype=np.int64) * (2 ** 40)
    columns = {"global_step": steps, "run_id": np.array(["ab"] * (n // 2) + ["cdef"] * (n // 2)),
               "step": np.arange(n, dtype=np.int64), "loss": metric, "empty": np.full(n, np.nan)}
    path = tmp_path / "c.csv"
    runchain_cli._write_csv(columns, str(path))
    assert path.read_bytes() == _whole_column_csv(columns)
