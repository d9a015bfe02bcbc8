"""A cache of decoded run files, so reading an unchanged file again costs a stat and a load.

Each ``run-<id>.wandb`` file gets two entries: ``<path hash>.json`` (identity, config,
artifacts, exit, and the history's column names) and ``<path hash>-<key hash>.npy``,
the history as one float64 grid of (column, row), which readers map into memory and
slice, so a chain reads only the columns it asks for.

The key is the file's size, modification and change times, inode and device, taken
*before* the file is read. A file that grew, was rewritten or replaced has another key,
so it is read again (one that only grew, from where its entry ended: ``grown``):
the cache never serves stale rows. A file that changes while it is
being read keeps its old key in the entry, so the next read sees the mismatch. The grid's
name carries the key, so a JSON entry can only point at the grid decoded with it.

**Damage.** Nothing in the folder is trusted. The JSON entry starts with a line
``runchain-cache <format> <crc32> <length>`` over the rest of it, so a cut, an edit or
garbage is seen before the JSON is used; then its shape is checked, its ``key`` must equal
the run file's and its ``path`` the run file's. The entry also describes its grid: rows,
columns, and one crc32 per column. Opening the grid checks what is cheap, every time: the
file's size, and its ``.npy`` header byte for byte against the one the entry's shape and
dtype give (so a shorter grid, another run's grid or an empty file is caught before a byte
is mapped). A column's crc32 is checked when that column is first read from the map.
Checking the whole grid on every read would read every column, where a chain reads only
the ones it needs; crc32 of one column costs about as much as copying it once, which the
stitching does anyway. A bad entry raises ``DamagedEntry``: the reader warns once, decodes
the run file again and rewrites the entry.

**Writes** go to a temporary file, are fsynced, then renamed into place; the grid first
(its folder fsynced too, so its rename is durable), its JSON entry last, so an entry never
describes a grid that is not whole on disk. The entry's own rename is not waited for: if
a power cut loses it, the old entry or none is there, and either is read correctly.

**Privacy.** The cache holds run configs and metrics, so it is private to its user: the
folders runchain makes are ``0700`` and every entry file ``0600``, whatever the umask; a
format folder an older runchain made ``0755`` is tightened when an entry is written into
it (if this user owns it). The checksums detect damage, not forgery: a cache shared
between users is not supported.

**Size.** ``cache_folder.prune`` removes entries whose run file is gone, and the least
recently used ones over ``$RUNCHAIN_CACHE_MAX_MB`` (default 2048); reading an entry marks
it used.

The folder is ``$RUNCHAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/runchain``, else
``~/.cache/runchain``; ``RUNCHAIN_CACHE_DIR=""`` turns caching off. Entries live in its
``v<format>/`` subfolder. Deleting the folder is always safe; ``runchain cache clear``
removes only files named as entries are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import mmap
import os
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..atomic import atomic_write, fsync_folder
from .record_log import ArtifactRecord, RunFile

FORMAT = 7  # bump when the entry layout or the decoding changes
_MAGIC = b"runchain-cache"


class DamagedEntry(ValueError):
    """A cache entry is unreadable or does not match its run file; the message says why."""


class CacheWarning(UserWarning):
    """A damaged cache entry was ignored: the run file is read again and the entry rewritten."""


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


def private_folder(folder: Path) -> None:
    """Make ``folder`` (and missing parents) exist, ``0700`` where runchain creates it, and
    tighten it to ``0700`` if this user owns it and others may read it (best effort).

    Raises:
        OSError: it cannot be created.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = os.stat(folder)
        mine = st.st_uid == os.geteuid() if hasattr(os, "geteuid") else True  # Windows: no uid
        if st.st_mode & 0o077 and mine:
            os.chmod(folder, 0o700)
    except OSError:  # someone else's, or a read-only file system: it still serves
        pass


def _private(f: Any) -> None:
    """Make an entry's temporary file ``0600`` before it is renamed into place, whatever
    the umask or the mode of the entry it replaces."""
    if hasattr(os, "fchmod"):
        os.fchmod(f.fileno(), 0o600)


def entry_path(folder: Path, path: str | os.PathLike) -> Path:
    digest = _hash(os.path.realpath(path))
    return folder / f"v{FORMAT}" / digest[:2] / f"{digest}.json"


def grid_path(entry: Path, key: list[int]) -> Path:
    return entry.with_name(f"{entry.stem}-{_hash(repr(key))[:16]}.npy")


def _npy_header(columns: int, rows: int) -> bytes:
    """The ``.npy`` header of a C-ordered float64 grid of this shape."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": "<f8", "fortran_order": False, "shape": (columns, rows)})
    return out.getvalue()


def to_meta(run: RunFile, key: list[int]) -> dict[str, Any]:
    meta = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)
            if f.name not in ("history", "summary")}
    meta["artifacts"] = [dict(vars(a)) for a in run.artifacts]  # shallow: asdict deep-copies
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
          history: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Write the entry of ``path``: ``run``'s meta, and ``history``'s columns if given.
    Returns the meta written (``columns`` and ``grid`` None when no history is cached).

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    entry = entry_path(folder, path)
    private_folder(entry.parent.parent)  # v<FORMAT>/: runchain's own, so tightened
    private_folder(entry.parent)
    try:
        old = read_entry(entry)
    except (FileNotFoundError, DamagedEntry):
        old = None
    grid_meta = None
    if history is not None:
        names = list(history)
        # column by column, never stacked: a stacked copy would double a big run's memory
        columns = [np.ascontiguousarray(history[n], np.float64) for n in names]
        rows = columns[0].size if columns else 0
        header = _npy_header(len(columns), rows)
        grid_meta = {"columns": names, "rows": rows,
                     "crc32": [zlib.crc32(column) for column in columns]}

        def write_grid(f):
            _private(f)
            f.write(header)
            for column in columns:
                if column.size:  # a memoryview of no bytes cannot be cast
                    f.write(memoryview(column).cast("B"))
        atomic_write(grid_path(entry, key), write_grid, fsync=True)
        fsync_folder(entry.parent)  # the grid's rename is durable before its entry's
    elif old is not None and old["key"] == key:
        grid_meta = old["grid"]  # the history is cached already; keep it
    meta = {**to_meta(run, key), "path": os.path.realpath(path), "grid": grid_meta,
            "columns": None if grid_meta is None else grid_meta["columns"]}
    body = json.dumps(meta).encode()
    def write_entry(f):
        _private(f)
        f.write(_MAGIC + b" %d %08x %d\n" % (FORMAT, zlib.crc32(body), len(body)) + body)
    atomic_write(entry, write_entry, fsync=True)
    _mark_used(entry)
    if old is not None and old["key"] != key:  # the grid of an older version of the file
        grid_path(entry, old["key"]).unlink(missing_ok=True)
    return meta


def read_entry(entry: Path) -> dict[str, Any]:
    """An entry's meta, checked against its own checksum and shape (not yet against a key).

    Raises:
        FileNotFoundError: there is no entry.
        DamagedEntry: anything else is wrong with it; the message says what.
    """
    try:
        data = entry.read_bytes()
    except NotADirectoryError:  # the cache folder is a file: there are no entries
        raise FileNotFoundError(entry) from None
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedEntry(f"unreadable: {e.strerror}") from None
    line, _, body = data.partition(b"\n")
    parts = line.split(b" ")
    if len(parts) != 4 or parts[0] != _MAGIC or parts[1] != b"%d" % FORMAT:
        raise DamagedEntry("no runchain-cache header line")
    if parts[3] != b"%d" % len(body) or parts[2] != b"%08x" % zlib.crc32(body):
        raise DamagedEntry("its checksum does not match its contents")
    try:
        meta = json.loads(body)
        _check_shape(meta)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise DamagedEntry(f"malformed ({type(e).__name__}: {e})") from None
    return meta


def _check_shape(meta: Any) -> None:
    """Raise ValueError (or TypeError, KeyError) unless ``meta`` is shaped as ``store`` writes."""
    if not isinstance(meta, dict):
        raise ValueError(f"a {type(meta).__name__}, not an object")
    key, grid = meta["key"], meta["grid"]
    if not (isinstance(key, list) and len(key) == 6 and all(type(k) is int for k in key)):
        raise ValueError(f"key {key!r}")
    if not isinstance(meta["path"], str):
        raise ValueError(f"path {meta['path']!r}")
    if grid is not None:
        names, rows, crcs = grid["columns"], grid["rows"], grid["crc32"]
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                and len(set(names)) == len(names) and type(rows) is int and rows >= 0
                and isinstance(crcs, list) and len(crcs) == len(names)
                and all(type(c) is int for c in crcs) and meta["columns"] == names):
            raise ValueError("grid description")
    from_meta(meta)


def load_meta(folder: Path, path: str | os.PathLike,
              key: list[int] | None) -> dict[str, Any] | None:
    """The entry's meta if it exists and matches ``key`` (any key if None); else None.
    A used entry is marked used now (its modification time), for the size cap.

    Raises:
        DamagedEntry: the entry exists but is damaged, or belongs to another file.
    """
    entry = entry_path(folder, path)
    try:
        meta = read_entry(entry)
    except FileNotFoundError:
        return None
    if meta["path"] != os.path.realpath(path):
        raise DamagedEntry(f"it belongs to {meta['path']}")
    if key is not None and meta["key"] != key:
        return None  # the file changed since: read it again
    _mark_used(entry)
    return meta


def _mark_used(entry: Path) -> None:
    """Set the entry's modification time to now, for the size cap's least-recently-used
    order. Given explicitly, it is as fine as the clock; the file system's own is coarser."""
    now = time.time_ns()
    try:
        os.utime(entry, ns=(now, now))
    except OSError:  # a read-only cache still serves
        pass


RELEASE_BYTES = 256 << 10  # columns this big give their mapped pages back once read
_CHECKED: dict[tuple, set[int]] = {}  # grid file identity -> columns whose crc32 matched


class _Columns(Mapping[str, np.ndarray]):
    """A mapped grid's columns by name. Each column's crc32 is checked when it is first read;
    on a mismatch ``heal(reason)`` gives the columns decoded again, which are served instead."""

    def __init__(self, grid: np.ndarray, grid_meta: Mapping[str, Any],
                 heal: Callable[[str], Mapping[str, np.ndarray]],
                 mapped: mmap.mmap | None = None, offset: int = 0, identity: tuple = ()):
        self._grid, self._crcs, self._heal = grid, grid_meta["crc32"], heal
        self._mapped, self._offset = mapped, offset
        self._index = {name: i for i, name in enumerate(grid_meta["columns"])}
        # columns already checked in this process, in this version of the grid file (a file
        # rewritten or damaged since has another mtime, so it is checked again)
        self._checked = _CHECKED.setdefault(identity, set()) if identity else set()
        self._healed: Mapping[str, np.ndarray] | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        """The column, read once into memory: checked, then its mapped pages are given back,
        so reading a big run holds one column at a time beside what the caller builds."""
        if self._healed is not None:
            return self._healed[name]
        i = self._index[name]
        column = np.array(self._grid[i])
        if i not in self._checked:
            if zlib.crc32(column) != self._crcs[i]:
                self._healed = self._heal(f"column {name!r} fails its checksum")
                return self._healed[name]
            self._checked.add(i)
        if column.nbytes >= RELEASE_BYTES:  # a small column's pages cost less than the call
            self._release(i)
        return column

    def _release(self, i: int) -> None:
        """Drop column ``i``'s pages from this process (clean file pages: free to drop; a
        later read faults them back in from the page cache)."""
        if self._mapped is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = self._offset + 8 * i * self._grid.shape[1]
        end = start + 8 * self._grid.shape[1]
        start -= start % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):
            self._mapped.madvise(mmap.MADV_DONTNEED, start, end - start)

    def __contains__(self, name: object) -> bool:  # without reading the column
        return name in (self._index if self._healed is None else self._healed)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index if self._healed is None else self._healed)

    def __len__(self) -> int:
        return len(self._index if self._healed is None else self._healed)


def open_grid(folder: Path, path: str | os.PathLike, meta: Mapping[str, Any],
              heal: Callable[[str], Mapping[str, np.ndarray]]) -> Mapping[str, np.ndarray]:
    """The entry's history columns (``meta["grid"]`` set), memory-mapped: reading a
    column reads only that column. ``heal(reason)`` is called, once, if a column read
    turns out damaged, and must return the columns decoded again.

    Raises:
        FileNotFoundError: the grid is missing (the cache may have been cleared meanwhile).
        DamagedEntry: its size or header is not what ``meta`` says, or it is unreadable.
    """
    grid_meta = meta["grid"]
    shape = (len(grid_meta["columns"]), grid_meta["rows"])
    header = _npy_header(*shape)
    size = len(header) + 8 * shape[0] * shape[1]
    grid_file = grid_path(entry_path(folder, path), meta["key"])
    try:
        with open(grid_file, "rb") as f:
            st = os.fstat(f.fileno())
            actual = st.st_size
            if actual != size:
                raise DamagedEntry(f"its grid {grid_file.name} is {actual} bytes, not {size}")
            if f.read(len(header)) != header:
                raise DamagedEntry(f"its grid {grid_file.name} is not of shape {shape}")
            mapped = None
            if size == len(header):  # nothing to map
                grid = np.empty(shape)
            else:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                grid = np.frombuffer(mapped, "<f8", shape[0] * shape[1], len(header))
                grid = grid.reshape(shape)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(grid_file) from None
    except OSError as e:
        raise DamagedEntry(f"its grid {grid_file.name} is unreadable: {e.strerror}") from None
    identity = (str(grid_file), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return _Columns(grid, grid_meta, heal, mapped, len(header), identity)
