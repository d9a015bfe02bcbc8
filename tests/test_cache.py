"""The run file cache heals itself: a damaged entry is read again from its run file, with one
warning, never a traceback or a wrong row; it is pruned and kept under its size cap; and
``runchain cache info|clear`` show and empty it. On real offline runs and real files."""

import dataclasses
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import runchain
from helpers import cli, plain_run, run_file
from runchain import atomic
from runchain.readers import cache_entry, decode_once, grown
from runchain.readers.cache_entry import CacheEntry, Grid, entry_path
from runchain.readers.record_log import ArtifactRecord, RunFile, read_run_file


def _read_all(directory):
    """Every run's whole history (every column read), and the warnings the read gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = runchain.open_source(directory)
        histories = src.fetch([runchain.Segment(info.id, None, 0) for info in src.runs], None)
        out = {info.id: {k: np.array(v) for k, v in histories[info.id].items()}
               for info in src.runs}
        last = {info.id: info.last_step for info in src.runs}
    return out, last, [str(w.message) for w in caught]


def _equal(a, b):
    assert a.keys() == b.keys()
    for run_id in a:
        assert list(a[run_id]) == list(b[run_id]), run_id
        for key in a[run_id]:
            np.testing.assert_array_equal(a[run_id][key], b[run_id][key], err_msg=key)


@pytest.fixture(scope="module")
def truth(demo_tree):
    """What the run files say, read with the cache off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNCHAIN_CACHE_DIR", "")
        histories, last, _ = _read_all(demo_tree["dir"])
    return histories, last


def _files(cache, directory, run_id):
    """The JSON entry and the grid of one run's file."""
    entry = entry_path(cache, run_file(directory, run_id))
    (grid,) = entry.parent.glob(f"{entry.stem}-*.npy")
    return entry, grid


def _body(entry):
    """The entry's JSON text, and a function writing a new one framed as the old was."""
    data = entry.read_bytes()
    header, _, rest = data.partition(b"\n")
    if not header.startswith(b"runchain-cache"):
        return data, entry.write_bytes

    def write(body):  # with a valid header: damage that a checksum alone does not catch
        import zlib
        fields = header.split(b" ")
        entry.write_bytes(b" ".join([fields[0], fields[1], b"%08x" % zlib.crc32(body),
                                     b"%d" % len(body)]) + b"\n" + body)
    return rest, write


def _retyped(entry, other_entry, other_grid):
    body, write = _body(entry)
    meta = json.loads(body)
    meta["artifacts"] = 5  # a field of the wrong type, in an otherwise well-formed entry
    write(json.dumps(meta).encode())


def _flipped(entry, other_entry, other_grid, grid):
    data = bytearray(grid.read_bytes())
    for at in (len(data) - 8 * 20, len(data) - 3):  # two values of the last column
        data[at] ^= 0x40
    grid.write_bytes(bytes(data))


def _shorter(entry, other_entry, other_grid, grid):
    whole = np.load(grid)
    np.save(grid, whole[:, :whole.shape[1] * 3 // 4])  # a valid .npy of 30 of 40 rows


def _edited(entry, other_entry, other_grid):
    text = entry.read_bytes()
    assert b'"last_step": 39' in text
    entry.write_bytes(text.replace(b'"last_step": 39', b'"last_step": 12'))


META_DAMAGE = {
    "json is []": lambda e, *_: e.write_bytes(b"[]"),
    "json is null": lambda e, *_: e.write_bytes(b"null"),
    "json is {}": lambda e, *_: e.write_bytes(b"{}"),
    "json is empty": lambda e, *_: e.write_bytes(b""),
    "json cut in half": lambda e, *_: e.write_bytes(e.read_bytes()[:len(e.read_bytes()) // 2]),
    "json is random bytes": lambda e, *_: e.write_bytes(os.urandom(300)),
    "json has wrong types": _retyped,
    "json edited": _edited,
}
GRID_DAMAGE = {
    "npy is empty": lambda e, o, og, g: g.write_bytes(b""),
    "npy cut in half": lambda e, o, og, g: g.write_bytes(g.read_bytes()[:g.stat().st_size // 2]),
    "npy is random bytes": lambda e, o, og, g: g.write_bytes(os.urandom(g.stat().st_size)),
    "npy has flipped bytes": _flipped,
    "npy is another run's": lambda e, o, og, g: shutil.copyfile(og, g),
    "npy is shorter": _shorter,
    "npy is missing": lambda e, o, og, g: g.unlink(),
}


@pytest.mark.parametrize("damage", [*META_DAMAGE, *GRID_DAMAGE])
def test_a_damaged_entry_is_read_again_with_one_warning_and_rewritten(
        tree, truth, tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    _read_all(tree["dir"])  # fills the cache
    entry, grid = _files(cache, tree["dir"], tree["root"])
    other_entry, other_grid = _files(cache, tree["dir"], tree["child"])
    if damage in META_DAMAGE:
        META_DAMAGE[damage](entry, other_entry, other_grid)
    else:
        GRID_DAMAGE[damage](entry, other_entry, other_grid, grid)

    histories, last, messages = _read_all(tree["dir"])
    _equal(histories, truth[0])  # never a wrong row
    assert last == truth[1]
    assert len(messages) == 1 and str(entry) in messages[0] and "damaged" in messages[0]

    def no_reading(*args, **kwargs):
        raise AssertionError("the entry was not rewritten: a third read decoded the file")
    monkeypatch.setattr(decode_once, "read_run_file", no_reading)
    histories, _, messages = _read_all(tree["dir"])
    _equal(histories, truth[0])
    assert messages == []


def test_another_runs_entry_in_its_place_is_not_served(tree, truth, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    _read_all(tree["dir"])
    entry, _ = _files(cache, tree["dir"], tree["root"])
    other, _ = _files(cache, tree["dir"], tree["child"])
    shutil.copyfile(other, entry)
    histories, last, messages = _read_all(tree["dir"])
    _equal(histories, truth[0])
    assert last == truth[1]
    assert len(messages) == 1 and str(entry) in messages[0]


def test_a_column_is_checked_when_read_so_an_unread_damaged_column_costs_nothing(
        tree, truth, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    runchain.open_source(tree["dir"]).history(tree["root"])
    entry, grid = _files(cache, tree["dir"], tree["root"])
    *others, damaged = json.loads(_body(entry)[0])["grid"]["columns"]
    _flipped(None, None, None, grid)  # both flips land in the last column
    metric = next(k for k in others if not k.startswith("_") and k != "global_step")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the damaged column was not read
        runchain.open_source(tree["dir"]).history(tree["root"], keys=[metric])
    with pytest.warns(UserWarning, match="damaged") as caught:
        column = runchain.open_source(tree["dir"]).fetch(
            [runchain.Segment(tree["root"], None, 0)], None)[tree["root"]][damaged]
    assert len(caught) == 1
    np.testing.assert_array_equal(column, truth[0][tree["root"]][damaged])


def test_an_empty_grid_left_by_a_power_cut_warns_and_the_chain_cli_exits_0(
        tree, truth, tmp_path, monkeypatch):
    """numpy's EOFError on an empty .npy used to reach click, which printed "Aborted!"."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    clean = tmp_path / "clean.csv"
    cli("chain", tree["child"], "--dir", tree["dir"], "--csv", clean)
    _, grid = _files(cache, tree["dir"], tree["root"])
    grid.write_bytes(b"")
    out = tmp_path / "after.csv"
    proc = cli("chain", tree["child"], "--dir", tree["dir"], "--csv", out, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Aborted" not in proc.stderr and "Traceback" not in proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and grid.name in warned[0], proc.stderr
    assert out.read_text() == clean.read_text()


def _entries(cache):
    return sorted(p.name for p in cache.rglob("*.json"))


def test_entries_of_deleted_run_files_are_pruned_by_the_next_read_that_writes(
        tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    first, second = tmp_path / "a" / "wandb", tmp_path / "b" / "wandb"
    shutil.copytree(tree["dir"], first)
    shutil.copytree(tree["dir"], second)
    _read_all(first)
    gone_entry, gone_grid = _files(cache, first, tree["child"])
    kept_entry, kept_grid = _files(cache, first, tree["root"])
    shutil.rmtree(run_file(first, tree["child"]).parent)
    _read_all(second)  # cold: it writes, so it prunes
    assert not gone_entry.exists() and not gone_grid.exists()
    assert kept_entry.exists() and kept_grid.exists()
    assert len(_entries(cache)) == 3


def test_the_size_cap_removes_the_least_recently_used_entries_first(tree, tmp_path,
                                                                     monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    copies = {name: tmp_path / name / "wandb" for name in "abc"}
    for directory in copies.values():
        shutil.copytree(tree["dir"], directory)
    _read_all(copies["a"])
    one_copy = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    monkeypatch.setenv("RUNCHAIN_CACHE_MAX_MB", str(2.05 * one_copy / (1 << 20)))
    _read_all(copies["b"])
    _read_all(copies["a"])  # warm: a is now used more recently than b
    _read_all(copies["c"])  # cold: three copies do not fit under the cap; b goes
    for name, kept in (("a", True), ("b", False), ("c", True)):
        for run_id in (tree["root"], tree["child"]):
            assert entry_path(cache, run_file(copies[name], run_id)).exists() == kept, name
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) <= 2.05 * one_copy


def test_a_cap_smaller_than_one_read_keeps_that_reads_entries(tree, truth, tmp_path,
                                                              monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    monkeypatch.setenv("RUNCHAIN_CACHE_MAX_MB", "0")
    histories, _, messages = _read_all(tree["dir"])
    _equal(histories, truth[0])
    assert messages == [] and len(_entries(cache)) == 2


@pytest.mark.parametrize("name", ["cache", "vcache"])  # named as a format folder is, nearly
def test_an_older_formats_entries_are_removed_and_others_files_are_left_alone(
        tree, tmp_path, monkeypatch, name):
    cache = tmp_path / name
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    old = cache / "ab" / ("ab" + "0" * 38 + ".json")  # format 4 kept entries at the top
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    mine = cache / "notes.txt"
    mine.write_text("not the cache's")
    _read_all(tree["dir"])
    assert not old.exists() and mine.read_text() == "not the cache's"
    cli("cache", "clear")
    assert mine.exists() and not list(cache.rglob("*.json")) and not list(cache.rglob("*.npy"))


def test_cache_info_and_clear_as_commands(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(cache))
    monkeypatch.setenv("RUNCHAIN_CACHE_MAX_MB", "300")
    cli("tree", "--dir", tree["dir"])
    cli("chain", tree["child"], "--dir", tree["dir"], "--csv", tmp_path / "c.csv")
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    info = cli("cache", "info").stdout
    assert f"cache: {cache}" in info and "entries: 2" in info and "cap: 300 MB" in info
    assert f"size: {size / (1 << 20):.1f} MB" in info
    cleared = cli("cache", "clear").stdout
    assert "removed 2 entries" in cleared
    assert not list(cache.rglob("*.npy")) and not list(cache.rglob("*.json"))
    assert "entries: 0" in cli("cache", "info").stdout
    assert "steps 0-14" in cli("tree", "--dir", tree["dir"]).stdout  # and reading still works


def test_a_bad_cap_setting_is_named_and_the_default_used(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RUNCHAIN_CACHE_MAX_MB", "lots")
    proc = cli("cache", "info")
    assert "RUNCHAIN_CACHE_MAX_MB='lots'" in proc.stderr and "cap: 2048 MB" in proc.stdout


def test_cache_info_says_when_caching_is_off(monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    assert "off" in cli("cache", "info").stdout


def test_a_run_with_no_rows_is_cached_and_read_back(wandb_dir):
    plain_run(wandb_dir, [])
    cold, _, _ = _read_all(wandb_dir)
    warm, _, messages = _read_all(wandb_dir)
    _equal(warm, cold)
    assert messages == [] and list(Path(os.environ["RUNCHAIN_CACHE_DIR"]).rglob("*.npy"))
    assert all(len(column) == 0 for history in warm.values() for column in history.values())


# -- the entry is a typed record, its JSON and its file names are cache_entry's alone -----------

def _every_field_set(path) -> RunFile:
    """A run whose every field an entry holds differs from its default."""
    run = RunFile(path=os.path.realpath(path), run_id="r1", project="p", entity="e", name="n",
                  start_time=1.5, config={"lr": 0.1, "nested": {"a": [1, 2]}},
                  artifacts=[ArtifactRecord("m", "model", ["latest", "step-3"], {"step": 3},
                                            {"checkpoint.json": "/x"}, "d1")],
                  used=[("model", "m:v0")], first_step=0, last_step=9, exit_code=0,
                  branch_point=("parent", 4.0), declared_axis="epoch", host="h",
                  torn="torn record", declared={"loss": "epoch"}, record_end=80, prefix_crc=1234)
    blank = RunFile(path="")
    held = [f.name for f in dataclasses.fields(RunFile) if f.name not in ("history", "summary")]
    assert [f for f in held if getattr(run, f) == getattr(blank, f)] == []
    return run


def test_a_cache_entry_round_trips_through_its_json_equal_to_itself(tmp_path):
    path = tmp_path / "run-r1.wandb"
    path.write_bytes(b"")
    run, key = _every_field_set(path), cache_entry.file_key(path)
    for entry in (CacheEntry.of(run, key), CacheEntry.of(run, key, Grid(["_step", "a"], 3, [1, 2]))):
        assert cache_entry._decode(cache_entry._encode(entry)) == entry
    cache = tmp_path / "cache"
    stored = cache_entry.store(cache, path, key, run, {"_step": np.arange(3), "a": np.ones(3)})
    assert stored == CacheEntry.of(run, key, stored.grid) and stored.columns == ["_step", "a"]
    assert cache_entry.read_entry(entry_path(cache, path)) == stored
    assert cache_entry.load_entry(cache, path, key) == stored
    assert type(stored.run.branch_point) is tuple and type(stored.run.used[0]) is tuple


def test_every_file_the_cache_writes_is_named_as_the_cache_recognises(tmp_path):
    path, cache = tmp_path / "run-r1.wandb", tmp_path / "cache"
    path.write_bytes(b"")
    run, key = _every_field_set(path), cache_entry.file_key(path)
    cache_entry.store(cache, path, key, run, {"_step": np.arange(3)})
    entry_file = entry_path(cache, path)
    kinds = {p.relative_to(cache): cache_entry.cache_file_kind(p.name)
             for p in cache.rglob("*") if p.is_file()}
    assert sorted(kinds.values()) == ["entry", "grid"]
    (grid_file,) = [cache / p for p, kind in kinds.items() if kind == "grid"]
    assert grid_file == cache_entry.grid_path(entry_file, key)
    assert cache_entry.entry_file_of(grid_file) == cache_entry.entry_file_of(entry_file) == entry_file
    assert cache_entry.folder_format(entry_file.parent.parent.name) == cache_entry.FORMAT
    assert cache_entry.is_shard(entry_file.parent.name)
    assert cache_entry.cache_file_kind(atomic._temp_path(entry_file).name) == "temp"
    assert cache_entry.cache_file_kind("notes.txt") is None


def test_decode_once_and_grown_are_handed_cache_entries_never_dicts(tree, tmp_path, monkeypatch):
    """A fresh decode, a file grown since it was cached, and a warm read: every entry that
    crosses into decode_once or grown is a CacheEntry."""
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    source = run_file(tree["dir"], tree["root"])
    path = tmp_path / "wandb" / source.parent.name / source.name
    path.parent.mkdir(parents=True)
    data, seen, resumed = source.read_bytes(), [], []
    real_resume, real_open = decode_once.resume, decode_once.open_grid

    def resume(folder, run_path, key, entry):
        resumed.append(real_resume(folder, run_path, key, entry))
        seen.extend([entry, resumed[-1]])
        return resumed[-1]

    def open_grid(folder, run_path, entry, heal, real=None):
        seen.append(entry)
        return real_open(folder, run_path, entry, heal, real)
    monkeypatch.setattr(decode_once, "resume", resume)
    monkeypatch.setattr(decode_once, "open_grid", open_grid)
    monkeypatch.setattr(grown, "open_grid", open_grid)
    path.write_bytes(b"")
    for part in (data[:len(data) // 2], data, None):  # cold, grown, warm
        if part is not None:
            with path.open("r+b") as f:  # in place, as wandb appends: the inode stays
                f.write(part)
                f.truncate(len(part))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the half file is torn, and says so
            files = decode_once.RunFiles([path])
            entries = [files.entries[path]]
            files.decode([path])
            entries.append(files.entries[path])
            steps = files.opener(path)()["_step"]
        assert all(type(e) is CacheEntry and type(e.grid) in (Grid, type(None)) for e in entries)
        assert type(entries[-1].grid) is Grid and files.runs[path] is entries[-1].run
    assert len(resumed) == 1 and resumed[0] is not None  # the grown file went on from its entry
    assert seen and all(type(e) is CacheEntry for e in seen)
    np.testing.assert_array_equal(steps, read_run_file(path).history["_step"])


def test_a_wandb_history_entry_is_pruned_only_by_the_cap_and_a_damaged_one_raises(tmp_path):
    """A W&B run's cached history has no run file to outlive, so prune keeps it until the
    cache is over its cap; info counts it and clear removes it; a changed byte, another
    run's entry, or a key the listing no longer gives is never served."""
    from runchain.readers import cache_folder, project_cache
    folder = tmp_path / "cache"
    columns = {"_step": np.arange(5), "loss": np.linspace(1, 0, 5), "acc": np.full(5, np.nan)}
    key = [cache_entry.FORMAT, "finished", 5, "2026-12-07T10:00:00", 4]
    project_cache.save(folder, "e/p/run1", key, columns)
    back = project_cache.load(folder, "e/p/run1", key)
    assert back["_step"].dtype == np.int64 and list(back) == ["_step", "loss", "acc"]
    for name in columns:
        np.testing.assert_array_equal(back[name], columns[name])
    assert project_cache.load(folder, "e/p/run1", key[:3] + ["2026-12-07T11:00:00", 4]) is None
    assert project_cache.load(folder, "e/p/other", key) is None
    assert cache_folder.info(folder).entries == 1
    cache_folder.prune(folder)
    (entry,) = folder.rglob("*.wbh")
    assert entry.stat().st_mode & 0o777 == 0o600
    other = project_cache.entry_file(folder, "e/p/run2")
    other.parent.mkdir(exist_ok=True)
    shutil.copy(entry, other)  # another run's bytes under its name
    with pytest.raises(cache_entry.DamagedEntry, match="run1"):
        project_cache.load(folder, "e/p/run2", key)
    data = entry.read_bytes()
    entry.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(cache_entry.DamagedEntry, match="checksum"):
        project_cache.load(folder, "e/p/run1", key)
    other.unlink()
    cache_folder.prune(folder, limit=0)  # over the cap: least recently used first
    assert not list(folder.rglob("*.wbh"))
    project_cache.save(folder, "e/p/run1", key, columns)
    assert cache_folder.clear(folder).entries == 1 and not list(folder.rglob("*.wbh"))
