"""Read a local ``wandb/`` folder as a source: every run's lineage, and chain histories on demand.

Each run file is decoded once (``runfile`` + ``history_columns``) and cached
(``run_cache``); later reads of an unchanged file cost a stat and a small load. When
several files are not cached yet, they are decoded in a process pool on every core
this process may use. A chain's history then loads only the columns asked for, of only
the chain's runs, one run at a time.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import multiprocessing
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from .contract import CHECKPOINT_TYPE, step_alias
from .errors import RunNotFoundError
from .lineage import CheckpointInfo, RunInfo, Segment
from .local_runs import LocalRun, merge_segments, run_folders
from .run_cache import cache_dir, file_key, from_meta, load_meta, open_grid, store
from .runfile import IncompleteRunWarning, RunFile, read_run_file
from .source import Source

PARALLEL_BYTES = 8 << 20  # decode in a process pool when this much is not cached yet


def _decode(path: str, key: list[int],
            folder: str | None) -> tuple[RunFile, list[str], dict | None]:
    """Decode one file and store its entry. Returns the run file (no history), its column
    names, and the columns themselves when they could not be stored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)  # the parent warns, once
        run = read_run_file(path)
    history, run.history = run.history, {}
    if folder is not None:
        try:
            store(Path(folder), path, key, run, history)
            return run, list(history), None  # the entry holds it: send back only names
        except OSError:
            pass
    return run, list(history), history


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


Part = Callable[[], Mapping[str, np.ndarray]]  # opens one file's history columns


def read_files(paths: Sequence[Path]) -> dict[Path, tuple[RunFile, Part]]:
    """Each file's ``RunFile`` (without history), and how to open its history columns."""
    folder = cache_dir()
    out: dict[Path, tuple[RunFile, Part]] = {}
    cold: list[tuple[Path, list[int]]] = []
    for path in paths:
        key = file_key(path)
        meta = load_meta(folder, path, key) if folder is not None else None
        if meta is None:
            cold.append((path, key))
        else:
            out[path] = (from_meta(meta), functools.partial(open_grid, folder, path, meta))
    if folder is not None and cold:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            warnings.warn(f"cannot create the cache folder {folder} ({e.strerror}); reading "
                          f"without a cache. Set RUNCHAIN_CACHE_DIR to a writable folder")
            folder = None
    size = sum(key[1] for _, key in cold)
    workers = min(_workers(), len(cold)) if size >= PARALLEL_BYTES else 1
    args = [(str(p), key, None if folder is None else str(folder)) for p, key in cold]
    with tqdm(total=len(cold), desc="reading run files", unit="file", file=sys.stderr,
              disable=None if len(cold) > 1 else True, leave=False) as bar:
        if workers > 1:
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                futures = {pool.submit(_decode, *a): a for a in args}
                for future in concurrent.futures.as_completed(futures):
                    out[Path(futures[future][0])] = _opener(folder, *futures[future][:2],
                                                            *future.result())
                    bar.update()
        else:
            for a in args:
                out[Path(a[0])] = _opener(folder, *a[:2], *_decode(*a))
                bar.update()
    for path in paths:
        torn = out[path][0].torn
        if torn:
            warnings.warn(f"{path}: {torn}; read the records before it and marked the run "
                          f"incomplete", IncompleteRunWarning, stacklevel=2)
    return out


def _opener(folder: Path | None, path: str, key: list[int], run: RunFile, names: list[str],
            history: dict | None) -> tuple[RunFile, Part]:
    if history is not None:  # not cached: keep the columns in memory
        return run, lambda: history
    meta = {"key": key, "columns": names}
    return run, functools.partial(open_grid, folder, path, meta)


def _cutoffs(first_steps: Sequence[int | None]) -> list[float]:
    """Per file of a run resumed in place: rows at or after this step are superseded.

    A later file starts where its checkpoint left off, so it replaces the earlier
    files' rows from its first step on, as the checkpoint rewound the run there.
    """
    cut, out = math.inf, []
    for first in reversed(first_steps):
        out.append(cut)
        if first is not None:
            cut = min(cut, first)
    return out[::-1]


class RunHistory(Mapping[str, np.ndarray]):
    """One run's history columns across its files (a run resumed in place has several).

    Cached columns are memory-mapped, so only the slices used are read; a column a file
    lacks is NaN there; rows a later file supersedes are left out (see ``_cutoffs``).
    """

    def __init__(self, parts: Sequence[Part]):
        self._parts = [open_part() for open_part in parts]
        names = {"_step": None}
        for part in self._parts:
            names.update(dict.fromkeys(part))
        self._names = list(names)
        self._keep: list[np.ndarray | None] = [None] * len(self._parts)
        if len(self._parts) > 1:
            steps = [np.asarray(part["_step"]) for part in self._parts]
            cuts = _cutoffs([int(s[0]) if s.size else None for s in steps])
            self._keep = [None if cut == math.inf else s < cut for s, cut in zip(steps, cuts)]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        pieces = [part[name] if name in part else np.full(len(part["_step"]), np.nan)
                  for part in self._parts]
        pieces = [p if keep is None else p[keep] for p, keep in zip(pieces, self._keep)]
        column = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return column.astype(np.int64) if name == "_step" else column

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Histories(Mapping[str, RunHistory]):
    """run id -> its ``RunHistory``, opened on each lookup and never held."""

    def __init__(self, parts: Mapping[str, list[Part]]):
        self._parts = parts

    def __getitem__(self, run_id: str) -> RunHistory:
        return RunHistory(self._parts[run_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


def _state(run: RunFile) -> str:
    if run.exit_code is None:
        return "crashed" if run.torn else "running"
    return "finished" if run.exit_code == 0 else "failed"


def _run_info(run_id: str, local: LocalRun, segments: list[RunFile],
              producers: Mapping[tuple[str, str], int]) -> RunInfo:
    # one per step: a step saved again (resumed in place) has its alias on the newest
    newest = {c.metadata["step"]: c.version for c in local.valid_checkpoints}
    checkpoints = tuple(CheckpointInfo(step, step_alias(step), newest[step]) for step in sorted(newest))
    used = tuple(producers[name] for seg in segments for kind, name in seg.used
                 if kind == CHECKPOINT_TYPE and name in producers)
    last = segments[-1]
    cuts = _cutoffs([s.first_step for s in segments])
    kept = [min(s.last_step, cut - 1) for s, cut in zip(segments, cuts)
            if s.first_step is not None and s.first_step < cut]
    return RunInfo(id=run_id, project=segments[0].project, name=last.name, state=_state(last),
                   last_step=int(max(kept)) if kept else None, checkpoints=checkpoints,
                   used=used, breadcrumbs=local.breadcrumbs)


def open_folder(root: str | os.PathLike) -> Source:
    """Every run under ``root`` as a ``Source``; histories are read when a chain asks.

    Raises:
        RunNotFoundError: ``root`` holds no runs; the message says where it looked.
    """
    folders = run_folders(root)
    if not folders:
        raise RunNotFoundError(
            f"no runs under {Path(root).resolve()} (looked for run-*/ and offline-run-*/ folders "
            f"holding run-<id>.wandb); pass --dir pointing at a wandb/ folder, or set WANDB_DIR")
    files = read_files([p for paths in folders.values() for p in paths])
    merged = {run_id: merge_segments(run_id, paths, [files[p][0] for p in paths])
              for run_id, paths in folders.items()}
    # A used checkpoint is named "run-<id>-checkpoint:v<N>" (or an alias): find its step.
    producers = {}
    for run_id, local in merged.items():
        for c in local.valid_checkpoints:
            for label in (c.version, *c.aliases):
                producers[(f"{c.name}:{label}")] = (run_id, c.metadata["step"])
    infos = [_run_info(run_id, merged[run_id], [files[p][0] for p in folders[run_id]], producers)
             for run_id in sorted(folders)]
    parts = {run_id: [files[p][1] for p in paths] for run_id, paths in folders.items()}

    def fetch(segments: Sequence[Segment], keys: Sequence[str] | None) -> Mapping[str, RunHistory]:
        return _Histories({s.run_id: parts[s.run_id] for s in segments})

    return Source(str(root), infos, fetch)
