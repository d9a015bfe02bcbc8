"""A cache of decoded run files, so reading an unchanged file again costs a stat and a load.

Each ``run-<id>.wandb`` file gets two entries: ``<path hash>.json`` (identity, config,
artifacts, exit, and the history's column names) and ``<path hash>-<key hash>.npy``,
the history as one float64 grid of (column, row), which readers map into memory and
slice, so a chain reads only the rows and columns it keeps.

The key is the file's size, modification and change times, inode and device, taken
*before* the file is read. A file that grew, was rewritten or replaced has another key,
so it is read again: the cache never serves stale rows. A file that changes while it is
being read keeps its old key in the entry, so the next read sees the mismatch. The grid's
name carries the key, so a JSON entry can only point at the grid decoded with it.

The folder is ``$RUNCHAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/runchain``, else
``~/.cache/runchain``; ``RUNCHAIN_CACHE_DIR=""`` turns caching off. Entries are written
atomically (a temporary file, then a rename). Deleting the folder is always safe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_write
from .runfile import ArtifactRecord, RunFile

FORMAT = 4  # bump when the entry layout or the decoding changes


def cache_dir() -> Path | None:
    """Where entries live, or None when caching is off."""
    env = os.environ.get("RUNCHAIN_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "runchain"


def file_key(path: str | os.PathLike) -> list[int]:
    """What identifies this version of the file: size, mtime, ctime, inode, device."""
    st = os.stat(path)
    return [FORMAT, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def entry_path(folder: Path, path: str | os.PathLike) -> Path:
    digest = _hash(os.path.realpath(path))
    return folder / digest[:2] / f"{digest}.json"


def _grid_path(entry: Path, key: list[int]) -> Path:
    return entry.with_name(f"{entry.stem}-{_hash(repr(key))[:16]}.npy")


def to_meta(run: RunFile, key: list[int]) -> dict[str, Any]:
    meta = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)
            if f.name not in ("history", "summary")}
    meta["artifacts"] = [dataclasses.asdict(a) for a in run.artifacts]
    meta["key"] = key
    return meta


def from_meta(meta: Mapping[str, Any]) -> RunFile:
    """The ``RunFile`` an entry describes, without history columns."""
    fields = {f.name for f in dataclasses.fields(RunFile)} - {"history", "summary"}
    run = RunFile(**{k: v for k, v in meta.items() if k in fields})
    run.artifacts = [ArtifactRecord(**a) for a in meta["artifacts"]]
    run.used = [tuple(u) for u in meta["used"]]
    run.branch_point = tuple(meta["branch_point"]) if meta.get("branch_point") else None
    return run


def store(folder: Path, path: str | os.PathLike, key: list[int], run: RunFile,
          history: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the entry of ``path``: ``run``'s meta, and ``history``'s columns if given.

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    entry = entry_path(folder, path)
    entry.parent.mkdir(parents=True, exist_ok=True)
    old = load_meta(folder, path, None)
    names = None
    if history is not None:
        names = list(history)
        grid = np.stack([np.asarray(history[n], np.float64) for n in names]) if names else \
            np.empty((0, 0))
        atomic_write(_grid_path(entry, key), lambda f: np.save(f, grid))
    elif old is not None and old.get("key") == key:
        names = old.get("columns")  # the history is cached already; keep it
    meta = {**to_meta(run, key), "columns": names}
    atomic_write(entry, lambda f: f.write(json.dumps(meta).encode()))
    if old is not None and old.get("key") != key:  # the grid of an older version of the file
        _grid_path(entry, old["key"]).unlink(missing_ok=True)
    return entry


def load_meta(folder: Path, path: str | os.PathLike,
              key: list[int] | None) -> dict[str, Any] | None:
    """The entry's meta if it exists and matches ``key`` (any key if None); else None."""
    try:
        meta = json.loads(entry_path(folder, path).read_bytes())
    except (OSError, ValueError):
        return None  # missing or unreadable: read the run file again
    return meta if key is None or meta.get("key") == key else None


def open_grid(folder: Path, path: str | os.PathLike,
              meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The entry's history columns (``meta["columns"]`` set), memory-mapped: reading a
    slice reads only that slice.

    Raises:
        OSError: the grid is gone (the cache folder was cleared meanwhile).
    """
    grid_path = _grid_path(entry_path(folder, path), meta["key"])
    try:
        grid = np.load(grid_path, mmap_mode="r")
    except ValueError:  # an empty grid cannot be mapped
        grid = np.load(grid_path)
    return {name: grid[i] for i, name in enumerate(meta["columns"])}
