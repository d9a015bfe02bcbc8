"""A cache of decoded run files, so reading an unchanged file again costs a stat and a load.

Each ``run-<id>.wandb`` file has one ``CacheEntry``: its lineage facts (the decoded
``RunFile`` without history: identity, config, artifacts, exit, where its whole records
end and their crc32, why reading stopped early), the ``key`` of the version of the file
they were decoded from, and, once its history is decoded, a ``Grid`` describing it. On
disk the entry is ``<path hash>.json`` and the history ``<path hash>-<key hash>.npy``, one
float64 grid of (column, row) that readers map into memory (``cache_grid``). The entry's
JSON is encoded and decoded here alone; every file name in the cache is built and
recognised here alone (``entry_path``, ``grid_path``, ``cache_file_kind``, ...).

The key is the file's size, modification and change times, inode and device, taken
*before* the file is read. A file that grew, was rewritten or replaced has another key,
so it is read again (one that only grew, from where its entry ended: ``grown``):
the cache never serves stale rows. A file that changes while it is
being read keeps its old key in the entry, so the next read sees the mismatch. The grid's
name carries the key, so a JSON entry can only point at the grid decoded with it.

**Damage.** Nothing in the folder is trusted. The JSON entry starts with a line
``runchain-cache <format> <crc32> <length>`` over the rest of it, so a cut, an edit or
garbage is seen before the JSON is used; then its shape is checked, its ``key`` must equal
the run file's and its ``path`` the run file's. Its ``Grid`` (rows, columns, one crc32 per
column) is checked against the grid file as ``cache_grid`` says: size and header on every
open, a column's crc32 when that column is first read. A bad entry raises
``DamagedEntry``: the reader warns once, decodes the run file again and rewrites the entry.

**Writes** go to a temporary file, are fsynced, then renamed into place; the grid first
(its folder fsynced too, so its rename is durable), its JSON entry last, so an entry never
describes a grid that is not whole on disk. The entry's own rename is not waited for: if
a power cut loses it, the old entry or none is there, and either is read correctly.

**Privacy.** The cache holds run configs and metrics, so it is private to its user: the
folders runchain makes are ``0700`` and every entry file ``0600``, whatever the umask
(``atomic``'s one rule for a private file or folder); a
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

import dataclasses
import hashlib
import json
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..atomic import PRIVATE_FILE, atomic_write, fsync_folder, is_temp_name, private_folder
from .cache_grid import DamagedEntry, Grid, map_grid, write_grid
from .record_log import ArtifactRecord, RunFile

__all__ = ["FORMAT", "CacheEntry", "CacheWarning", "DamagedEntry", "Grid", "cache_dir",
           "cache_file_kind", "entry_file_of", "entry_path", "file_key", "folder_format",
           "format_folder", "grid_path", "is_shard", "load_entry", "open_grid", "read_entry",
           "store", "wandb_entry_name"]

FORMAT = 8  # bump when the entry layout or the decoding changes
_MAGIC = b"runchain-cache"
_UNCACHED = ("history", "summary")  # RunFile fields an entry does not hold


class CacheWarning(UserWarning):
    """A damaged cache entry was ignored: the run file is read again and the entry rewritten."""


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One run file's entry: its lineage facts, the version of the file they were decoded
    from, and its cached history grid (None until the history is decoded and cached).

    ``run`` holds no history or summary; its ``record_end``, ``prefix_crc`` and ``torn`` say
    where a grown file goes on (``grown``). A stored entry's ``run.path`` is the run file's
    real path, which ``load_entry`` checks.
    """

    run: RunFile
    key: list[int]  # file_key() of the file, taken before it was read
    grid: Grid | None = None

    @classmethod
    def of(cls, run: RunFile, key: list[int], grid: Grid | None = None) -> CacheEntry:
        """The entry of a freshly decoded ``run`` (its history and summary left out)."""
        return cls(dataclasses.replace(run, **{name: {} for name in _UNCACHED}), key, grid)

    @property
    def columns(self) -> list[str] | None:
        """The cached history's column names, or None when no history is cached."""
        return None if self.grid is None else self.grid.columns


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


# -- cache file names: built and recognised here, and nowhere else (a temporary file's: atomic)
_ENTRY_NAME = re.compile(r"([0-9a-f]{40})\.json")  # sha1 of the run file's real path
_GRID_NAME = re.compile(r"([0-9a-f]{40})-[0-9a-f]{16}\.npy")  # ... and of the file's key
_WANDB_NAME = re.compile(r"([0-9a-f]{40})\.wb[hl]")  # sha1 of a W&B run's path (project_cache):
# its history (.wbh) or its lineage (.wbl)
_FORMAT_NAME = re.compile(r"v(\d+)")
_SHARD_NAME = re.compile(r"[0-9a-f]{2}")  # an entry's first two hex digits


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def format_folder(folder: Path) -> Path:
    """The subfolder of ``folder`` holding this format's entries, ``v<FORMAT>/``."""
    return folder / f"v{FORMAT}"


def entry_path(folder: Path, path: str | os.PathLike, real: str | None = None) -> Path:
    """The JSON entry file of run file ``path`` in cache ``folder``; ``real``: ``path``'s
    real path, where the caller has it already (each is an ``lstat`` per folder of it)."""
    digest = _hash(os.path.realpath(path) if real is None else real)
    return format_folder(folder) / digest[:2] / f"{digest}.json"


def wandb_entry_name(run_path: str, kind: str = "h") -> str:
    """The file name of the W&B run ``entity/project/run id``'s entry (``project_cache``):
    its history (``kind`` "h") or its lineage ("l")."""
    return f"{_hash('wandb:' + run_path)}.wb{kind}"


def grid_path(entry_file: Path, key: list[int]) -> Path:
    """The grid file of the entry file ``entry_file``, decoded from the file at ``key``."""
    return entry_file.with_name(f"{entry_file.stem}-{_hash(repr(key))[:16]}.npy")


def cache_file_kind(name: str) -> str | None:
    """What a file named ``name`` in a shard folder is: ``"entry"``, ``"grid"``, ``"wandb"``
    (a W&B run's history, ``project_cache``) or ``"temp"`` (a write under way, or one a
    killed process left); None if runchain names no file so."""
    for kind, matches in (("entry", _ENTRY_NAME.fullmatch), ("grid", _GRID_NAME.fullmatch),
                          ("wandb", _WANDB_NAME.fullmatch), ("temp", is_temp_name)):
        if matches(name):
            return kind
    return None


def entry_file_of(cache_file: Path) -> Path:
    """The entry file a grid file (or an entry file) belongs to; a W&B entry is its own."""
    if _WANDB_NAME.fullmatch(cache_file.name):
        return cache_file
    match = _ENTRY_NAME.fullmatch(cache_file.name) or _GRID_NAME.fullmatch(cache_file.name)
    if match is None:
        raise ValueError(f"{cache_file.name} is not named as a cache entry or grid is")
    return cache_file.with_name(f"{match[1]}.json")


def folder_format(name: str) -> int | None:
    """The format of a format folder named ``name`` (``v7`` -> 7); None for another name."""
    match = _FORMAT_NAME.fullmatch(name)
    return None if match is None else int(match[1])


def is_shard(name: str) -> bool:
    """Whether ``name`` is a shard folder's (an entry's first two hex digits)."""
    return _SHARD_NAME.fullmatch(name) is not None


def store(folder: Path, path: str | os.PathLike, key: list[int], run: RunFile,
          history: Mapping[str, np.ndarray] | None = None) -> CacheEntry:
    """Write the entry of ``path``: ``run``'s lineage facts, and ``history``'s columns if
    given (else the grid already cached for ``key``, if any). Returns the entry written.

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    entry_file = entry_path(folder, path)
    private_folder(entry_file.parent.parent)  # v<FORMAT>/: runchain's own, so tightened
    private_folder(entry_file.parent)
    try:
        old = read_entry(entry_file)
    except (FileNotFoundError, DamagedEntry):
        old = None
    grid = None
    if history is not None:
        grid = write_grid(grid_path(entry_file, key), history)
        fsync_folder(entry_file.parent)  # the grid's rename is durable before its entry's
    elif old is not None and old.key == key:
        grid = old.grid  # the history is cached already; keep it
    entry = CacheEntry.of(dataclasses.replace(run, path=os.path.realpath(path)), key, grid)
    data = _encode(entry)
    atomic_write(entry_file, lambda f: f.write(data), fsync=True, perms=PRIVATE_FILE)
    _mark_used(entry_file)
    if old is not None and old.key != key:  # the grid of an older version of the file
        grid_path(entry_file, old.key).unlink(missing_ok=True)
    return entry


def read_entry(entry_file: Path) -> CacheEntry:
    """The entry an entry file holds, checked against its own checksum and shape (not yet
    against a key or a run file).

    Raises:
        FileNotFoundError: there is no entry.
        DamagedEntry: anything else is wrong with it; the message says what.
    """
    try:
        data = entry_file.read_bytes()
    except NotADirectoryError:  # the cache folder is a file: there are no entries
        raise FileNotFoundError(entry_file) from None
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedEntry(f"unreadable: {e.strerror}") from None
    return _decode(data)


def _encode(entry: CacheEntry) -> bytes:
    """An entry file's bytes: ``runchain-cache <format> <crc32> <length>``, then the JSON."""
    obj = {f.name: getattr(entry.run, f.name) for f in dataclasses.fields(RunFile)
           if f.name not in _UNCACHED}
    obj["artifacts"] = [dict(vars(a)) for a in entry.run.artifacts]  # shallow: asdict deep-copies
    obj.update(key=entry.key, grid=None if entry.grid is None else dataclasses.asdict(entry.grid),
               columns=entry.columns)
    body = json.dumps(obj).encode()
    return _MAGIC + b" %d %08x %d\n" % (FORMAT, zlib.crc32(body), len(body)) + body


def _decode(data: bytes) -> CacheEntry:
    """The entry ``_encode`` wrote as ``data``.

    Raises:
        DamagedEntry: ``data`` is not that; the message says what is wrong.
    """
    line, _, body = data.partition(b"\n")
    parts = line.split(b" ")
    if len(parts) != 4 or parts[0] != _MAGIC or parts[1] != b"%d" % FORMAT:
        raise DamagedEntry("no runchain-cache header line")
    if parts[3] != b"%d" % len(body) or parts[2] != b"%08x" % zlib.crc32(body):
        raise DamagedEntry("its checksum does not match its contents")
    try:
        return _from_json(json.loads(body))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise DamagedEntry(f"malformed ({type(e).__name__}: {e})") from None


def _from_json(obj: Any) -> CacheEntry:
    """The entry a decoded JSON object describes. Raises ValueError (or TypeError, KeyError)
    unless it is shaped as ``_encode`` writes."""
    if not isinstance(obj, dict):
        raise ValueError(f"a {type(obj).__name__}, not an object")
    key, grid = obj["key"], obj["grid"]
    if not (isinstance(key, list) and len(key) == 6 and all(type(k) is int for k in key)):
        raise ValueError(f"key {key!r}")
    if not isinstance(obj["path"], str):
        raise ValueError(f"path {obj['path']!r}")
    if grid is not None:
        names, rows, crcs = grid["columns"], grid["rows"], grid["crc32"]
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                and len(set(names)) == len(names) and type(rows) is int and rows >= 0
                and isinstance(crcs, list) and len(crcs) == len(names)
                and all(type(c) is int for c in crcs) and obj["columns"] == names):
            raise ValueError("grid description")
        grid = Grid(names, rows, crcs)
    fields = {f.name for f in dataclasses.fields(RunFile)} - set(_UNCACHED)
    run = RunFile(**{k: v for k, v in obj.items() if k in fields})
    run.artifacts = [ArtifactRecord(**a) for a in obj["artifacts"]]
    run.used = [tuple(u) for u in obj["used"]]
    run.branch_point = tuple(obj["branch_point"]) if obj.get("branch_point") else None
    return CacheEntry(run, key, grid)


def load_entry(folder: Path, path: str | os.PathLike, key: list[int] | None,
               real: str | None = None) -> CacheEntry | None:
    """The entry of run file ``path`` (real path ``real``, if the caller has it) if it
    exists and matches ``key`` (any key if None); else None. A used entry is marked used
    now (its modification time), for the size cap.

    Raises:
        DamagedEntry: the entry exists but is damaged, or belongs to another file.
    """
    real = os.path.realpath(path) if real is None else real
    entry_file = entry_path(folder, path, real)
    try:
        entry = read_entry(entry_file)
    except FileNotFoundError:
        return None
    if entry.run.path != real:
        raise DamagedEntry(f"it belongs to {entry.run.path}")
    if key is not None and entry.key != key:
        return None  # the file changed since: read it again
    _mark_used(entry_file)
    return entry


def _mark_used(entry_file: Path) -> None:
    """Set the entry file's modification time to now, for the size cap's least-recently-used
    order. Given explicitly, it is as fine as the clock; the file system's own is coarser."""
    now = time.time_ns()
    try:
        os.utime(entry_file, ns=(now, now))
    except OSError:  # a read-only cache still serves
        pass


def open_grid(folder: Path, path: str | os.PathLike, entry: CacheEntry,
              heal: Callable[[str], Mapping[str, np.ndarray]],
              real: str | None = None) -> Mapping[str, np.ndarray]:
    """The cached history columns of run file ``path`` (real path ``real``, if the caller
    has it; ``entry.grid`` set), memory-mapped (``cache_grid.map_grid``); ``heal(reason)``
    gives them decoded again if a column read turns out damaged.

    Raises:
        FileNotFoundError: the grid is missing (the cache may have been cleared meanwhile).
        DamagedEntry: its size or header is not what ``entry`` says, or it is unreadable.
    """
    return map_grid(grid_path(entry_path(folder, path, real), entry.key), entry.grid, heal)
