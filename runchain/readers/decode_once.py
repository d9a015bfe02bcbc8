"""The run files of a local folder, decoded once and cached: lineage up front, each history
when first asked.

Each run file is decoded once (``record_log`` + ``history_columns``) and cached
(``cache_entry``); later reads of an unchanged file cost a stat and a small load. Each
file's ``CacheEntry`` is what this module holds: read from the cache, gone on from where it
ended when the file grew (``grown``), or made from a fresh decode. When several files are
not cached yet, they are decoded in a process pool on every core this process may use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import warnings
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from .. import parallel
from ..atomic import private_folder
from ..core.contract import LOCAL_STEP
from ..errors import RunFileError
from .cache_entry import (CacheEntry, CacheWarning, DamagedEntry, Grid, cache_dir, entry_path,
                          file_key, load_entry, open_grid, store)
from .cache_folder import not_a_folder, prune
from .grown import resume
from .local_runs import never_started
from .record_log import TORN_TAIL, IncompleteRunWarning, RunFile, read_run_file
from .run_state import run_state
from .timelines import FileAxis, Part, RunHistory

PARALLEL_BYTES = 8 << 20  # decode in a process pool when this much is not cached yet


_GONE = (FileNotFoundError, NotADirectoryError)  # a run file or its folder moved away


def _vanished(error: RunFileError) -> bool:
    """Whether reading failed because the file is no longer there."""
    return isinstance(error.__cause__, _GONE)


def gone_error(path: Path, run_id: str | None) -> RunFileError:
    """The error for a run file that vanished after the runs were read."""
    return RunFileError(f"run {run_id or path.parent.name}: its run file {path} vanished after "
                        f"the runs were read (moved or removed, e.g. by wandb sync --clean); "
                        f"run the command again to read the runs as they are now")


def _lineage(path: str, key: list[int], folder: str | None) -> RunFile | None:
    """Read one file's lineage facts (history: only its first and last step); cache them.
    None if the file vanished before it could be opened."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)  # the parent warns, once
        try:
            run = read_run_file(path, history=False)
        except RunFileError as e:  # one bad file must not hide the other runs
            if _vanished(e):
                return None
            return RunFile(path=path, torn=f"unreadable ({e})")
    if folder is not None:
        with contextlib.suppress(OSError):  # an unwritable cache only costs speed
            store(Path(folder), path, key, run)
    return run


def _history(path: str, key: list[int], folder: str | None) -> tuple[Grid | None, dict | None]:
    """Decode one file's history and cache it. Returns its cache entry's ``Grid`` if it was
    cached, else the columns themselves (so a worker sends back little); (None, None) if
    the file vanished."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)
        try:
            run = read_run_file(path)
        except RunFileError as e:  # already reported by _lineage; it has no rows to give
            if _vanished(e):
                return None, None
            run = RunFile(path=path, history={LOCAL_STEP: np.empty(0, np.int64)})
    if folder is not None:
        with contextlib.suppress(OSError):
            return store(Path(folder), path, key, run, run.history).grid, None
    return None, run.history


class RunFiles:
    """The run files of a folder: lineage read up front, each history decoded when first asked.

    Both stages go through the cache (``cache_entry``), and decode many files in a pool. A
    damaged cache entry gets one warning, and its file is decoded again. A file that
    vanished before its lineage was read is left out and listed in ``gone``; one that
    vanishes before its history is decoded raises ``RunFileError`` then.
    """

    def __init__(self, paths: Sequence[Path]):
        self.folder = cache_dir()
        self.gone: list[Path] = []  # files that vanished while they were read
        self.keys: dict[Path, list[int]] = {}
        for p in paths:
            try:
                self.keys[p] = file_key(p)
            except _GONE:
                self.gone.append(p)
        paths = [p for p in paths if p in self.keys]
        self.entries: dict[Path, CacheEntry] = {}
        self.real: dict[Path, str] = {}  # each file's real path, found once: it keys its entry
        self.memory: dict[Path, dict[str, np.ndarray]] = {}  # histories when nothing is cached
        # each file's cached grid, opened once for as long as this reader lives: a chain, or
        # every chain of a tree, reads a run's columns through one mapping (its checksums
        # checked once), with the entry it was opened from
        self.opened: dict[Path, tuple[CacheEntry, Mapping[str, np.ndarray]]] = {}
        cold, grown_now = [], []
        for path in paths:
            entry = self._load(path) if self.folder else None
            if entry is not None and entry.key != self.keys[path]:  # the file changed since:
                entry = resume(self.folder, path, self.keys[path], entry)  # if it only grew,
                grown_now += [path] if entry is not None else []  # only its new bytes are read
            if entry is None:
                cold.append(path)
            else:
                self.entries[path] = entry
        if cold and self.folder is not None:
            try:
                private_folder(self.folder, tighten=False)  # private if new
            except OSError as e:
                why = (not_a_folder(self.folder) if self.folder.is_file() else
                       f"cannot create the cache folder {self.folder} ({e.strerror}); set "
                       f"RUNCHAIN_CACHE_DIR to a writable folder")
                warnings.warn(f"{why}; reading without a cache", CacheWarning)
                self.folder = None
        runs = parallel.each(_lineage, [self._job(p) for p in cold], "reading run files",
                             sum(self.keys[p][1] for p in cold) >= PARALLEL_BYTES)
        for path, run in zip(cold, runs):
            if run is None:
                self.gone.append(path)
                del self.keys[path]
                continue
            self.entries[path] = CacheEntry.of(run, self.keys[path])
        cold = [p for p in cold if p in self.keys]
        self.runs = {path: self.entries[path].run for path in paths if path in self.keys}
        # files that hold no run (a wandb.init that never started): left out with a note
        self.unstarted = {path for path, run in self.runs.items() if never_started(run)}
        for path in cold + grown_now:  # once per version of a file: a cached one warned when read
            read = self.runs[path]  # a live run's file ends inside a record between flushes
            torn = read.torn or ""
            live = torn.startswith(TORN_TAIL) and run_state(read, path) == "running"
            if torn and path not in self.unstarted and not live:
                warnings.warn(f"{path}: {self.runs[path].torn}; read the records before it and "
                              f"marked the run incomplete", IncompleteRunWarning, stacklevel=3)
        if cold:
            self._prune()

    def _load(self, path: Path) -> CacheEntry | None:
        """The cache entry of ``path``, of this version of the file or an older one (its
        ``key`` says which); None if there is none."""
        try:
            return load_entry(self.folder, path, None, self._real(path))
        except DamagedEntry as e:
            self._warn(path, str(e))
            return None

    def _real(self, path: Path) -> str:
        if path not in self.real:
            self.real[path] = os.path.realpath(path)
        return self.real[path]

    def _warn(self, path: Path, reason: str) -> None:
        warnings.warn(f"the cache entry {entry_path(self.folder, path)} is damaged ({reason}); "
                      f"ignoring it: {path} is decoded again and the entry rewritten",
                      CacheWarning, stacklevel=4)

    def _prune(self) -> None:
        """Keep the cache to run files that exist, and under its size cap."""
        if self.folder is not None:
            with contextlib.suppress(OSError):  # pruning only saves space
                prune(self.folder,
                      keep={entry_path(self.folder, p, self._real(p)) for p in self.keys})

    def _job(self, path: Path) -> tuple[str, list[int], str | None]:
        return str(path), self.keys[path], None if self.folder is None else str(self.folder)

    def decode(self, paths: Sequence[Path]) -> None:
        """Make sure the history of ``paths`` is decoded (cached or in memory).

        Raises:
            RunFileError: a file vanished since its lineage was read; the message names its
                run and says to read again.
        """
        todo = [p for p in dict.fromkeys(paths)
                if self.entries[p].grid is None and p not in self.memory]
        results = parallel.each(_history, [self._job(p) for p in todo], "decoding histories",
                                sum(self.keys[p][1] for p in todo) >= PARALLEL_BYTES)
        gone = [path for path, (grid, columns) in zip(todo, results) if columns is grid is None]
        for path, (grid, columns) in zip(todo, results):
            if columns is grid is None:
                continue
            if grid is None:
                self.memory[path] = columns
            else:
                self.entries[path] = dataclasses.replace(self.entries[path], grid=grid)
        if todo:
            self._prune()
        if gone:
            raise gone_error(gone[0], self.runs[gone[0]].run_id)

    def histories(self, parts: Mapping[str, tuple[Sequence[Path], Sequence[FileAxis]]]) -> Histories:
        """run id -> the ``RunHistory`` of its files (a timeline: some of them) and their axes;
        every file's history is decoded first, all at once."""
        self.decode([p for paths, _ in parts.values() for p in paths])
        return Histories({run_id: ([self.opener(p) for p in paths], list(axes))
                          for run_id, (paths, axes) in parts.items()})

    def columns(self, path: Path) -> list[str]:
        """The history column names of one file, decoding it first if needed."""
        self.decode([path])
        return list(self.memory[path]) if path in self.memory else self.entries[path].columns

    def opener(self, path: Path) -> Part:
        if path in self.memory:
            return functools.partial(dict, self.memory[path])
        return functools.partial(self._open, path)

    def _open(self, path: Path) -> Mapping[str, np.ndarray]:
        if path in self.memory:  # healed since the opener was made
            return dict(self.memory[path])
        entry, grid = self.opened.get(path, (None, None))
        if entry is self.entries[path]:
            return grid
        try:
            grid = open_grid(self.folder, path, self.entries[path],
                             heal=functools.partial(self._heal, path), real=self._real(path))
            self.opened[path] = (self.entries[path], grid)
            return grid
        except DamagedEntry as e:
            return self._heal(path, str(e))
        except FileNotFoundError:  # a cache cleared meanwhile is no damage; else the grid is lost
            gone = not entry_path(self.folder, path).exists()
            return self._heal(path, None if gone else "its grid is missing")

    def _heal(self, path: Path, reason: str | None) -> dict[str, np.ndarray]:
        """Warn that ``path``'s grid is damaged (if ``reason``); decode ``path`` again, in
        memory, and rewrite its entry."""
        if path not in self.memory:
            if reason is not None:
                self._warn(path, reason)
            _, columns = _history(str(path), self.keys[path], None)
            if columns is None:
                raise gone_error(path, self.runs[path].run_id)
            self.memory[path] = columns
            with contextlib.suppress(OSError):
                store(self.folder, path, self.keys[path], self.runs[path], columns)
        return dict(self.memory[path])


class Histories(Mapping[str, RunHistory]):
    """run id -> its ``RunHistory`` (of one timeline), made at its first lookup, then held
    as long as this mapping is (one fetch: stitch looks each run up several times)."""

    def __init__(self, parts: Mapping[str, tuple[list[Part], list[FileAxis]]]):
        self._parts = parts
        self._made: dict[str, RunHistory] = {}

    def __getitem__(self, run_id: str) -> RunHistory:
        if run_id not in self._made:
            self._made[run_id] = RunHistory(*self._parts[run_id])
        return self._made[run_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)
