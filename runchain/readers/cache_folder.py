"""The cache folder as a whole: what it holds (``info``), emptying it (``clear``), and
keeping it to live run files and under its size cap (``prune``).

``prune`` runs after each read that wrote entries (``decode_once.RunFiles``, and
``project_history`` for W&B histories): the cache grows only then. It removes entries
whose run file is gone (a W&B history has none: only the cap removes it), entries of
older formats, damaged
entries, and grids or temporary files no entry names that are older than an hour (a
younger one may be a write under way). Then, while the folder is over
``$RUNCHAIN_CACHE_MAX_MB`` megabytes (default 2048), it removes the least recently used
entries; the entries of the read itself stay, even above the cap. Only files named as
cache entries are ever removed, so a ``RUNCHAIN_CACHE_DIR`` shared with other files is safe;
what a cache file is named is ``cache_entry``'s rule (``cache_file_kind`` and its kin).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Iterator

from ..errors import CacheError
from .cache_entry import (FORMAT, CacheWarning, DamagedEntry, cache_file_kind, entry_file_of,
                          folder_format, format_folder, grid_path, is_shard, read_entry)

DEFAULT_MAX_MB = 2048
STRAY_SECONDS = 3600  # a grid without an entry, or a temporary file, older than this is litter


def max_bytes() -> int:
    """The size cap: ``$RUNCHAIN_CACHE_MAX_MB`` megabytes (default 2048)."""
    env = os.environ.get("RUNCHAIN_CACHE_MAX_MB", "").strip()
    try:
        mb = float(env) if env else DEFAULT_MAX_MB
        if not mb >= 0 or mb == float("inf"):
            raise ValueError
    except ValueError:
        warnings.warn(f"RUNCHAIN_CACHE_MAX_MB={env!r} is not a number of megabytes; using "
                      f"{DEFAULT_MAX_MB}. Set it to e.g. 500, or unset it", CacheWarning)
        mb = DEFAULT_MAX_MB
    return int(mb * (1 << 20))


@dataclasses.dataclass
class CacheInfo:
    """What ``info`` finds in the cache folder."""

    folder: Path
    entries: int  # JSON entries of this format
    bytes: int  # every file named as an entry is, of any format
    max_bytes: int


def not_a_folder(folder: Path) -> str:
    """What to say when the cache path is a file."""
    return (f"the cache path {folder} is a file, not a folder; point RUNCHAIN_CACHE_DIR at a "
            f"folder (or set it to \"\" to turn the cache off)")


def _scandir(folder: str | os.PathLike) -> list[os.DirEntry]:
    """The folder's items; none if it is gone (removed meanwhile, by a clear or a prune)."""
    try:
        with os.scandir(folder) as items:
            return list(items)
    except FileNotFoundError:
        return []


def _is_cache_folder(name: str) -> bool:
    """Whether a folder named ``name`` in the cache folder is runchain's: ``v<N>``, or a
    shard at the top (format 4's)."""
    return folder_format(name) is not None or is_shard(name)


def _files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every file in ``folder`` named as a cache file is, in any format's subfolder.

    Raises:
        CacheError: ``folder`` is a file.
    """
    try:
        tops = [d for d in _scandir(folder) if d.is_dir(follow_symlinks=False)
                and _is_cache_folder(d.name)]
    except NotADirectoryError:
        raise CacheError(not_a_folder(folder)) from None
    for top in tops:
        subs = [top] if is_shard(top.name) else [  # format 4 had no v<N>/ level
            d for d in _scandir(top.path) if is_shard(d.name)]
        for sub in subs:
            for item in _scandir(sub.path):
                if cache_file_kind(item.name) and item.is_file(follow_symlinks=False):
                    try:
                        yield Path(item.path), item.stat(follow_symlinks=False)
                    except FileNotFoundError:  # another process removed it meanwhile
                        pass


def info(folder: Path) -> CacheInfo:
    """How many entries the cache holds, and their size.

    Raises:
        CacheError: ``folder`` is a file; the message says to point RUNCHAIN_CACHE_DIR at a
            folder.
    """
    files = list(_files(folder))
    current = format_folder(folder)
    entries = sum(cache_file_kind(p.name) in ("entry", "wandb") and p.parent.parent == current
                  for p, _ in files)  # a run file's, or a W&B run's history (project_cache)
    return CacheInfo(folder, entries, sum(st.st_size for _, st in files), max_bytes())


def clear(folder: Path) -> CacheInfo:
    """Remove every cache file (only files named as entries are) and the emptied
    subfolders. Returns what was removed.

    Raises:
        CacheError: ``folder`` is a file (nothing is removed).
    """
    removed = info(folder)
    for path, _ in _files(folder):
        path.unlink(missing_ok=True)
    _remove_empty(folder)
    return removed


def _remove_empty(folder: Path) -> None:
    for sub in sorted(folder.glob("*/*"), reverse=True) + sorted(folder.glob("*")):
        if sub.is_dir() and _is_cache_folder(sub.name):
            try:
                sub.rmdir()
            except OSError:  # not empty: someone else's files, or a new entry
                pass


def prune(folder: Path, keep: set[Path] = frozenset(), limit: int | None = None) -> int:
    """Remove entries of run files that no longer exist, entries of older formats, damaged
    entries and stray files; then the least recently used entries until the folder holds
    at most ``limit`` bytes (default ``max_bytes()``). Entries in ``keep`` stay.
    Returns the bytes removed.
    """
    limit = max_bytes() if limit is None else limit
    current, now = format_folder(folder), time.time()
    # entry file (the JSON) -> [its files], and when it was last used
    groups: dict[Path, list[tuple[Path, os.stat_result]]] = {}
    used: dict[Path, float] = {}
    no_run_file: set[Path] = set()  # W&B histories' entries (project_cache)
    removed = 0

    def remove(path: Path, st: os.stat_result) -> None:
        nonlocal removed
        path.unlink(missing_ok=True)
        removed += st.st_size

    for path, st in _files(folder):
        if path.parent.parent != current:
            top = path.parent.parent  # v<N>/, or the folder itself for format 4's shards
            version = None if top == folder else folder_format(top.name)
            if version is None or version < FORMAT:
                remove(path, st)  # an older format's, never read again (a newer one's stays)
        elif cache_file_kind(path.name) == "temp":
            if now - st.st_mtime > STRAY_SECONDS:
                remove(path, st)
        else:
            entry_file = entry_file_of(path)
            groups.setdefault(entry_file, []).append((path, st))
            if path == entry_file:
                used[entry_file] = st.st_mtime
            if cache_file_kind(path.name) == "wandb":
                no_run_file.add(entry_file)  # no run file here to outlive: only the cap removes it
    for entry_file, files in groups.items():
        if entry_file in keep or entry_file in no_run_file:
            continue
        try:
            cached = read_entry(entry_file) if entry_file in used else None
        except (OSError, DamagedEntry):
            cached = None
        if entry_file in used and (cached is None or not os.path.exists(cached.run.path)):
            doomed = {p for p, _ in files}  # damaged, or its run file is gone
        else:
            grid = (None if cached is None or cached.grid is None else
                    grid_path(entry_file, cached.key))
            doomed = {p for p, st in files  # a grid no entry names, and not just written
                      if p not in (entry_file, grid) and now - st.st_mtime > STRAY_SECONDS}
        for path, st in files:
            if path in doomed:
                remove(path, st)
        files[:] = [(p, st) for p, st in files if p not in doomed]
    total = sum(st.st_size for files in groups.values() for _, st in files)
    for entry_file in sorted(used, key=used.get):
        if total <= limit:
            break
        if entry_file not in keep:
            for path, st in groups.get(entry_file, []):
                remove(path, st)
                total -= st.st_size
    return removed
