"""A folder reader's faults stay one run's problem: a run folder renamed away while it is
read (``wandb sync --clean``) is left out with a note, the others read; its history gone
after the tree was built is one named error; folders of runs that never started are left
out with a note. The cache is private (0700 folders, 0600 files), and a cache path that is
a file is one named error for ``cache info|clear``, and no cache for a read.

On real offline runs; each fault is made deterministic by a patched ``open``/``os.stat`` or
a real rename at the moment the reader reaches that run."""

import os
import stat
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2 as pb

import runchain
from helpers import cli, isolate, plain_run
from foreign import _chunks
from runchain.errors import CacheError, RunchainError, RunFileError
from runchain.readers import (cache_folder, cache_entry, decode_once,
                              record_log)
from runchain.readers.record_log import RecordScan, iter_records, record_kind


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three small real offline runs, and a finished one that logged no row."""
    base = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as mp:
        wandb_dir = isolate(mp, base)
        files = [plain_run(wandb_dir, [{"loss": i + k} for i in range(5)]) for k in range(3)]
        silent = plain_run(wandb_dir, [])
    return {"dir": wandb_dir, "files": files, "ids": [_id(f) for f in files], "silent": silent}


@pytest.fixture
def env(three, tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    return three


def _id(path: Path) -> str:
    return path.name.removeprefix("run-").removesuffix(".wandb")


def _read(directory):
    """The source, and the notes of the runs left out: the first of the tree's notes."""
    src = runchain.open_source(directory)
    assert src.tree.notes[:len(src.left_out)] == src.left_out
    return src, list(src.left_out)


def _assert_left_out(src, notes, three, gone):
    kept = [i for i in three["ids"] if i != gone]
    assert set(kept) <= {info.id for info in src.runs}
    assert gone not in {info.id for info in src.runs}
    for run_id in kept:
        assert src.history(run_id, keys=["loss"])["loss"].tolist() == [
            float(i + three["ids"].index(run_id)) for i in range(5)]
    (note,) = [n for n in notes if gone in n]
    assert "vanished" in note and "left out" in note


# -- a run folder renamed away during a read -------------------------------------------------

@pytest.mark.parametrize("cache", [True, False])
def test_a_run_file_gone_at_its_cache_key_stat_is_left_out_with_a_note(env, monkeypatch, cache):
    if not cache:
        monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    gone, real_stat = env["files"][1], os.stat

    def file_key(path):  # listed, then renamed away before its key is taken
        if os.fspath(path) == str(gone):
            raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
        return real_key(path)
    real_key = decode_once.file_key
    monkeypatch.setattr(decode_once, "file_key", file_key)
    src, notes = _read(env["dir"])
    monkeypatch.setattr(decode_once, "file_key", real_key)
    _assert_left_out(src, notes, env, _id(gone))


def test_a_run_file_gone_when_opened_is_left_out_with_a_note(env, monkeypatch):
    gone = env["files"][0]

    def open_(path, *args, **kwargs):
        if os.fspath(path) == str(gone):
            raise FileNotFoundError(2, "No such file or directory", os.fspath(path))
        return open(path, *args, **kwargs)
    monkeypatch.setattr(record_log, "open", open_, raising=False)
    src, notes = _read(env["dir"])
    monkeypatch.delattr(record_log, "open")
    _assert_left_out(src, notes, env, _id(gone))


def test_a_run_folder_renamed_away_while_listed_is_left_out_with_a_note(env, tmp_path, monkeypatch):
    gone = env["files"][2]
    real_is_file, away, calls = Path.is_file, tmp_path / "away", []

    def is_file(path):
        if path == gone:  # open_source looks for runs, then lists them: renamed away then
            calls.append(path)
            if len(calls) == 2:
                gone.parent.rename(away)
        return real_is_file(path)
    monkeypatch.setattr(Path, "is_file", is_file)
    try:
        src, notes = _read(env["dir"])
    finally:
        if away.exists():
            away.rename(gone.parent)
    monkeypatch.setattr(Path, "is_file", real_is_file)
    _assert_left_out(src, notes, env, _id(gone))


@pytest.mark.parametrize("cache", [True, False])
def test_a_history_gone_after_the_tree_was_built_is_one_named_error(env, tmp_path, monkeypatch,
                                                                    cache):
    if not cache:
        monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    src, notes = _read(env["dir"])
    assert not notes
    gone, other = env["files"][1], env["ids"][0]
    gone.parent.rename(tmp_path / "away")
    try:
        with pytest.raises(RunFileError, match=rf"run {_id(gone)}: .*vanished.*run the command "
                                               rf"again") as caught:
            src.history(_id(gone), keys=["loss"])
        assert isinstance(caught.value, RunchainError) and "\n" not in str(caught.value)
        assert src.history(other, keys=["loss"])["loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    finally:
        (tmp_path / "away").rename(gone.parent)


# -- folders of runs that never started ------------------------------------------------------

def _records(path: Path) -> list[bytes]:
    with open(path, "rb") as f:
        return list(iter_records(f, str(path), RecordScan()))


def _write_run(wandb_dir: Path, source: Path, run_id: str, kinds: set[str]) -> Path:
    """A run folder for ``run_id`` whose run file holds ``source``'s records of ``kinds``
    (its run record renamed to ``run_id``)."""
    folder = wandb_dir / f"offline-run-20260101_000000-{run_id}"
    folder.mkdir()
    path = folder / f"run-{run_id}.wandb"
    data = bytearray(source.read_bytes()[:record_log.HEADER_LEN])
    for raw in _records(source):
        if record_kind(raw) not in kinds:
            continue
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "run":
            record.run.run_id = run_id
        data += _chunks(record.SerializeToString(), len(data))
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def unstarted(env, tmp_path):
    """A copy of the three runs' folder, with the folders failed ``wandb.init`` calls leave."""
    wandb_dir = tmp_path / "copy" / "wandb"
    wandb_dir.mkdir(parents=True)
    for f in [*env["files"], env["silent"]]:
        (wandb_dir / f.parent.name).symlink_to(f.parent)
    silent = env["silent"]
    # what an unreachable server left, seen with wandb 0.31: a run record, a summary, an exit
    _write_run(wandb_dir, silent, "failedinit", {"header", "run", "summary", "exit"})
    _write_run(wandb_dir, silent, "headeronly", set())  # the header alone
    (wandb_dir / "run-20260101_000000-nofile" / "logs").mkdir(parents=True)  # no run file
    _write_run(wandb_dir, silent, "starting", {"header", "run"})  # live: no exit yet
    return wandb_dir


def test_folders_of_runs_that_never_started_are_left_out_with_one_note_each(env, unstarted):
    src, notes = _read(unstarted)
    ids = {info.id for info in src.runs}
    # a run record and no rows is a run; so is a file with no run record yet (a run in its
    # first seconds: running, then crashed once stale, as run_state says)
    assert {*env["ids"], _id(env["silent"]), "starting", "headeronly"} <= ids
    for run_id in ("failedinit", "nofile"):
        assert run_id not in ids
        (note,) = [n for n in notes if f"-{run_id}" in n]
        assert "holds no run (a wandb.init that never started?); left out" in note
    assert len([n for n in notes if "holds no run" in n]) == 2
    proc = cli("tree", "--dir", unstarted)  # the command line says it once, as a note
    assert proc.stderr.count("holds no run (a wandb.init that never started?)") == 2
    assert all(line.startswith("note: ") for line in proc.stderr.splitlines()
               if "holds no run" in line)
    report = cli("report", "--dir", unstarted, "-o", unstarted.parent / "r.html")
    assert report.returncode == 0  # and the report lists it among its notes
    assert (unstarted.parent / "r.html").read_text().count("holds no run") == 2


# -- the cache is private --------------------------------------------------------------------

def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(os.stat(p).st_mode)
            for p in [folder, *folder.rglob("*")]}


def test_cache_folders_are_0700_and_entries_0600_whatever_the_umask(env, tmp_path):
    old = os.umask(0o022)
    try:
        src, _ = _read(env["dir"])
        src.history(env["ids"][0], keys=["loss"])  # writes a grid too
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "cache")
    assert any(name.endswith(".npy") for name in modes) and any(n.endswith(".json") for n in modes)
    for name, mode in modes.items():
        assert mode == (0o700 if (tmp_path / "cache" / name).is_dir() else 0o600), name


def test_an_older_cache_of_0755_folders_and_0644_entries_is_tightened_when_written(env, tmp_path):
    old = os.umask(0o022)
    try:
        _read(env["dir"])
        cache = tmp_path / "cache"
        for p in [*cache.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        for f in env["files"] + [env["silent"]]:  # a new version of every file: entries rewritten
            os.utime(f)
        _read(env["dir"])
    finally:
        os.umask(old)
    for name, mode in _modes(cache).items():
        if name != ".":  # the folder RUNCHAIN_CACHE_DIR names may be shared: left as it is
            assert mode == (0o700 if (cache / name).is_dir() else 0o600), name


def test_cache_info_and_clear_on_a_file_raise_one_named_error(tmp_path):
    path = tmp_path / "cachefile"
    path.write_text("not a folder")
    for call in (cache_folder.info, cache_folder.clear):
        with pytest.raises(CacheError, match=rf"cache path {path} is a file.*RUNCHAIN_CACHE_DIR "
                                             rf"at a folder") as caught:
            call(path)
        assert isinstance(caught.value, RunchainError) and "\n" not in str(caught.value)
    assert path.read_text() == "not a folder"


def test_runchain_cache_info_and_clear_on_a_file_are_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "cachefile"
    path.write_text("not a folder")
    for command in ("info", "clear"):
        proc = subprocess.run([sys.executable, "-m", "runchain", "cache", command],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "RUNCHAIN_CACHE_DIR": str(path)})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"Error: the cache path {path} is a file, not a folder; point RUNCHAIN_CACHE_DIR at "
            f'a folder (or set it to "" to turn the cache off)']
    assert path.read_text() == "not a folder"


def test_a_read_with_the_cache_path_a_file_warns_and_reads_without_a_cache(env, tmp_path,
                                                                          monkeypatch):
    path = tmp_path / "cachefile"
    path.write_text("not a folder")
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(path))
    with pytest.warns(cache_entry.CacheWarning, match=rf"cache path {path} is a file.*without a cache"):
        src = runchain.open_source(env["dir"])
    assert src.history(env["ids"][2], keys=["loss"])["loss"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert path.read_text() == "not a folder"
