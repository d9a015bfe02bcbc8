"""Reading .wandb run files: checksums, torn files from crashed processes, bad headers."""

import random
import os
import shutil
import time
import warnings

import pytest

import runchain
from helpers import cli, do_run, isolate, run_file
from runchain.readers.record_log import IncompleteRunWarning, read_run_file, scan_records


pytestmark = pytest.mark.slow  # see docs/development.md


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A real run file of several 32 KiB blocks, so records cross block boundaries."""
    with pytest.MonkeyPatch.context() as mp:
        wandb_dir = isolate(mp, tmp_path_factory.mktemp("whole"))
        path = run_file(wandb_dir, do_run("--n_steps", 150, "--n_checkpoint_steps", 50))
    return path, path.read_bytes(), scan_records(path.read_bytes()).records


def test_complete_file_reads_every_record_and_the_exit(whole):
    path, data, records = whole
    run = read_run_file(path)
    assert run.complete and run.exit_code == 0 and run.torn is None
    assert len(run.history["_step"]) == 150 and run.last_step == 149 and len(run.artifacts) == 3
    assert len(data) > 3 * 32 * 1024


def test_file_cut_anywhere_yields_exactly_the_records_before_the_cut(whole, tmp_path):
    path, data, records = whole
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(7, len(data)), 50))
    for cut in cuts:
        torn = tmp_path / "run-torn.wandb"
        torn.write_bytes(data[:cut])
        scan = scan_records(torn.read_bytes())
        assert records[:len(scan.records)] == scan.records  # a prefix, in order
        complete_before = sum(1 for _ in _record_ends(data) if _ <= cut)
        assert len(scan.records) == complete_before, cut
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = read_run_file(torn)
        assert not run.complete
        assert run.torn is None or any(w.category is IncompleteRunWarning for w in caught)


def _record_ends(data):
    """Byte offsets where each record's last chunk ends, recomputed independently."""
    import struct
    pos, ends = 7, []
    while pos < len(data):
        room = 32768 - pos % 32768
        if room < 7:
            pos += room
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        pos += 7 + length
        if kind in (1, 4):
            ends.append(pos)
    return ends


def test_flipped_byte_stops_at_the_checksum(whole, tmp_path):
    path, data, records = whole
    ends = _record_ends(data)
    middle = len(ends) // 2
    broken = bytearray(data)
    broken[ends[middle] - 1] ^= 0xFF  # the last data byte of the middle record
    scan = scan_records(bytes(broken))
    assert scan.reason == "chunk checksum mismatch"
    assert scan.records == records[:middle]


def test_not_a_run_file_raises_runchains_own_error(tmp_path):
    bogus = tmp_path / "run-x.wandb"
    bogus.write_bytes(b"hello world, not a run file")
    with pytest.raises(runchain.RunFileError, match="not a W&B run file"):
        read_run_file(bogus)
    with pytest.raises(runchain.RunFileError, match="cannot read"):
        read_run_file(tmp_path / "missing.wandb")


def test_crashed_parent_still_resolves_checkpoints_saved_before_the_crash(tree, tmp_path):
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    path = run_file(copy, tree["root"])
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])  # the process died partway
    with pytest.warns(IncompleteRunWarning):
        ckpt = runchain.load_checkpoint(f"{tree['root']}@9", mode="offline", wandb_dir=copy)
    assert ckpt.step == 9
    with pytest.warns(IncompleteRunWarning), pytest.raises(runchain.CheckpointNotFoundError):
        runchain.load_checkpoint(f"{tree['root']}@39", mode="offline", wandb_dir=copy)


def test_empty_and_bogus_run_files_do_not_hide_the_other_runs(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    for run_id, data in (("starting", b""), ("halfhead", b":W&"), ("bogus", b"not a run file at all")):
        folder = copy / f"offline-run-20260101_000000-{run_id}"
        folder.mkdir()
        (folder / f"run-{run_id}.wandb").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = runchain.open_source(copy)
        history = src.history("starting")
    assert {tree["root"], tree["child"], "starting", "halfhead", "bogus"} <= set(src.tree.nodes)
    # just written, with no writer to ask: it may be a run in its first seconds
    assert src.tree.nodes["starting"].info.state == "running"
    assert src.tree.nodes["starting"].info.last_step is None and history["step"].size == 0
    assert src.tree.nodes[tree["child"]].parent_run == tree["root"]
    messages = " ".join(str(w.message) for w in caught)
    assert "not a W&B run file" in messages
    assert "file ends inside its header" not in messages  # still being written: no warning
    stale = time.time() - 3600
    os.utime(copy / "offline-run-20260101_000000-starting" / "run-starting.wandb", (stale, stale))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert runchain.open_source(copy).tree.nodes["starting"].info.state == "crashed"
    assert any("run-starting.wandb: file ends inside its header" in str(w.message) for w in caught)


def test_a_torn_file_warns_once_then_the_tree_shows_its_state(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    path = run_file(copy, tree["child"])
    path.write_bytes(path.read_bytes()[:-100])  # the process died partway
    stale = time.time() - 3600
    os.utime(path, (stale, stale))
    first = cli("tree", "--dir", copy)
    assert first.stderr.count("warning:") == 1 and "marked the run incomplete" in first.stderr
    again = cli("tree", "--dir", copy)  # the same file, cached: no warning again
    assert "warning:" not in again.stderr
    line = next(l for l in again.stdout.splitlines() if tree["child"] in l)
    assert "  crashed  " in line


def test_a_live_runs_torn_tail_is_no_warning(tree, tmp_path, monkeypatch):
    """wandb flushes a live run's file every 15 s, so it usually ends inside a record: that
    is no warning (``runchain tree --watch`` would print one at every poll)."""
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "wandb"
    shutil.copytree(tree["dir"], copy)
    path = run_file(copy, tree["child"])
    path.write_bytes(path.read_bytes()[:-100])  # written just now, by a run still running
    shutil.rmtree(path.parent / "logs")  # no writer's pid to ask: its fresh file says running
    proc = cli("tree", "--dir", copy)
    assert "warning:" not in proc.stderr
    line = next(l for l in proc.stdout.splitlines() if tree["child"] in l)
    assert "  running  " in line

