"""Read a local ``wandb/`` folder as a source: every run's lineage, and chain histories on demand.

Each run file is decoded once (``runfile`` + ``history_columns``) and cached
(``run_cache``); later reads of an unchanged file cost a stat and a small load. When
several files are not cached yet, they are decoded in a process pool on every core
this process may use. A chain's history then loads only the columns asked for, of only
the chain's runs, one run at a time.
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
from ..contract import (CHAIN_VIEW_KEY, CHECKPOINT_TYPE, LOCAL_STEP, MODEL_TYPE, fork_point,
                        is_chain_view, is_step, read_breadcrumbs, user_config)
from ..errors import RunFileError, RunNotFoundError
from ..lineage import CheckpointInfo, RunInfo, Segment
from ..source import Source
from ..stitch import axis_steps, metric_keys, superseded
from .cache_folder import prune
from .run_cache import (CacheWarning, DamagedEntry, cache_dir, entry_path, file_key, from_meta,
                        load_meta, open_grid, store, to_meta)
from .run_folders import LocalCheckpoint, LocalRun, merge_segments, run_folders
from .runfile import IncompleteRunWarning, RunFile, read_run_file
from .run_state import run_state
from .timelines import (FileAxis, Part, RunHistory, abandoned_in, file_axes, first_step,
                        last_step)

PARALLEL_BYTES = 8 << 20  # decode in a process pool when this much is not cached yet


def _lineage(path: str, key: list[int], folder: str | None) -> RunFile:
    """Read one file's lineage facts (history: only its first and last step); cache them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)  # the parent warns, once
        try:
            run = read_run_file(path, history=False)
        except RunFileError as e:  # one bad file must not hide the other runs
            return RunFile(path=path, torn=f"unreadable ({e})")
    if folder is not None:
        with contextlib.suppress(OSError):  # an unwritable cache only costs speed
            store(Path(folder), path, key, run)
    return run


def _history(path: str, key: list[int], folder: str | None) -> tuple[dict | None, dict | None]:
    """Decode one file's history and cache it. Returns the entry's meta if it was cached,
    else the columns themselves (so a worker sends back little)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IncompleteRunWarning)
        try:
            run = read_run_file(path)
        except RunFileError:  # already reported by _lineage; it has no rows to give
            run = RunFile(path=path, history={LOCAL_STEP: np.empty(0, np.int64)})
    if folder is not None:
        with contextlib.suppress(OSError):
            return store(Path(folder), path, key, run, run.history), None
    return None, run.history


class RunFiles:
    """The run files of a folder: lineage read up front, each history decoded when first asked.

    Both stages go through the cache (``run_cache``), and decode many files in a pool. A
    damaged cache entry gets one warning, and its file is decoded again.
    """

    def __init__(self, paths: Sequence[Path]):
        self.folder = cache_dir()
        self.keys = {p: file_key(p) for p in paths}
        self.metas: dict[Path, dict] = {}
        self.memory: dict[Path, dict[str, np.ndarray]] = {}  # histories when nothing is cached
        cold = []
        for path in paths:
            meta = self._load(path) if self.folder else None
            if meta is None:
                cold.append(path)
            else:
                self.metas[path] = meta
        if cold and self.folder is not None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                warnings.warn(f"cannot create the cache folder {self.folder} ({e.strerror}); "
                              f"reading without a cache. Set RUNCHAIN_CACHE_DIR to a writable "
                              f"folder")
                self.folder = None
        runs = parallel.each(_lineage, [self._job(p) for p in cold], "reading run files",
                             sum(self.keys[p][1] for p in cold) >= PARALLEL_BYTES)
        for path, run in zip(cold, runs):
            self.metas[path] = {**to_meta(run, self.keys[path]), "columns": None, "grid": None}
        self.runs = {path: from_meta(self.metas[path]) for path in paths}
        for path in cold:  # once per version of a file: a cached one warned when it was read
            if self.runs[path].torn:
                warnings.warn(f"{path}: {self.runs[path].torn}; read the records before it and "
                              f"marked the run incomplete", IncompleteRunWarning, stacklevel=3)
        if cold:
            self._prune()

    def _load(self, path: Path) -> dict | None:
        """The cached meta of ``path``, None if there is none for this version of the file."""
        try:
            return load_meta(self.folder, path, self.keys[path])
        except DamagedEntry as e:
            self._warn(path, str(e))
            return None

    def _warn(self, path: Path, reason: str) -> None:
        warnings.warn(f"the cache entry {entry_path(self.folder, path)} is damaged ({reason}); "
                      f"ignoring it: {path} is decoded again and the entry rewritten",
                      CacheWarning, stacklevel=4)

    def _prune(self) -> None:
        """Keep the cache to run files that exist, and under its size cap."""
        if self.folder is not None:
            with contextlib.suppress(OSError):  # pruning only saves space
                prune(self.folder, keep={entry_path(self.folder, p) for p in self.keys})

    def _job(self, path: Path) -> tuple[str, list[int], str | None]:
        return str(path), self.keys[path], None if self.folder is None else str(self.folder)

    def decode(self, paths: Sequence[Path]) -> None:
        """Make sure the history of ``paths`` is decoded (cached or in memory)."""
        todo = [p for p in dict.fromkeys(paths)
                if self.metas[p]["grid"] is None and p not in self.memory]
        results = parallel.each(_history, [self._job(p) for p in todo], "decoding histories",
                                sum(self.keys[p][1] for p in todo) >= PARALLEL_BYTES)
        for path, (meta, columns) in zip(todo, results):
            if meta is None:
                self.memory[path] = columns
            else:
                self.metas[path] = {**self.metas[path], "columns": meta["columns"],
                                    "grid": meta["grid"]}
        if todo:
            self._prune()

    def columns(self, path: Path) -> list[str]:
        """The history column names of one file, decoding it first if needed."""
        self.decode([path])
        return list(self.memory[path]) if path in self.memory else self.metas[path]["columns"]

    def opener(self, path: Path) -> Part:
        if path in self.memory:
            return functools.partial(dict, self.memory[path])
        return functools.partial(self._open, path)

    def _open(self, path: Path) -> Mapping[str, np.ndarray]:
        if path in self.memory:  # healed since the opener was made
            return dict(self.memory[path])
        try:
            return open_grid(self.folder, path, self.metas[path],
                             heal=functools.partial(self._heal, path))
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
            self.memory[path] = columns
            with contextlib.suppress(OSError):
                store(self.folder, path, self.keys[path], self.runs[path], columns)
        return dict(self.memory[path])


class _Histories(Mapping[str, RunHistory]):
    """run id -> its ``RunHistory`` (of one timeline), opened on each lookup and never held."""

    def __init__(self, parts: Mapping[str, tuple[list[Part], list[FileAxis]]]):
        self._parts = parts

    def __getitem__(self, run_id: str) -> RunHistory:
        return RunHistory(*self._parts[run_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


Producers = Mapping[tuple[str | None, str], tuple[str, int, str]]  # -> (run, step, its axis)


def _used(local: LocalRun, segments: list[RunFile], producers: Producers) -> list[tuple[str, int, str]]:
    """(producer, step, axis) of each checkpoint the run used, as named in its use_artifact
    records, in its own project first."""
    return [producers.get((local.project, name)) or producers[None, name]
            for seg in segments for kind, name in seg.used
            if kind in (CHECKPOINT_TYPE, MODEL_TYPE) and (None, name) in producers]


def _checkpoint_timeline(c: LocalCheckpoint, step: int, axes: list[FileAxis]) -> int | None:
    """The timeline a checkpoint belongs to, if a later file abandoned it. On a declared axis
    the files' takeovers are in ``_step``: the checkpoint's ``row_step`` (its ``_step``, as
    runchain's framework callbacks record) says; without one it is on the run's rows."""
    if c.step_metric != LOCAL_STEP:
        row = c.metadata.get("row_step") if isinstance(c.metadata, dict) else None
        if not is_step(row):
            return None
        step = row + axes[c.segment].shift
    return c.segment if abandoned_in(step, c.segment, axes) else None


def _run_info(key: str, run_id: str, local: LocalRun, segments: list[RunFile],
              axes: list[FileAxis], notes: list[str], producers: Producers,
              used: list[tuple[str, int, str]], step_metric: str,
              span: tuple[int | None, int | None] | None) -> RunInfo:
    """``used``: ``_used`` of the run; ``span``: its (first, last) step on its declared axis,
    None on ``_step``."""
    on_step = step_metric == LOCAL_STEP  # a restarted _step is shifted; a declared axis is not
    # one per step: a step saved again (resumed in place) has its alias on the newest
    newest = {c.step + (axes[c.segment].shift if on_step else 0): c
              for c in local.valid_checkpoints if c.step_metric == step_metric}
    notes = [*notes, *(f"checkpoint {c.name}:{c.version} is left out: its step {c.step} is on "
                       f"{c.step_metric}, the run's steps on {step_metric}"
                       for c in local.valid_checkpoints if c.step_metric != step_metric)]
    checkpoints = tuple(CheckpointInfo(step, c.label, c.version, _checkpoint_timeline(c, step, axes))
                        for step, c in sorted(newest.items()))
    notes += [f"it used {name}, which runchain cannot place (a model artifact with no step in "
              f"an alias checkpoint_global_step_N or its file name step=N, or a version of a "
              f"collection several runs logged); it is no edge"
              for seg in segments for kind, name in seg.used
              if kind == MODEL_TYPE and (None, name) not in producers]
    first, last = span or (first_step(segments, axes), last_step(segments, axes))
    return RunInfo(id=key, project=segments[0].project, name=segments[-1].name,
                   state=run_state(segments[-1], Path(segments[-1].path)),
                   last_step=last, first_step=first, step_metric=step_metric,
                   checkpoints=checkpoints, used=tuple((run, step) for run, step, _ in used),
                   breadcrumbs=local.breadcrumbs,
                   entity=local.entity,
                   problems=(*read_breadcrumbs(local.config)[1], *local.problems, *notes),
                   fork=fork_point(run_id, *(segments[0].branch_point or (None, None))),
                   config=user_config(local.config))


def _step_metric(key: str, local: LocalRun, used: list[tuple[str, int, str]], files: RunFiles,
                 paths: Sequence[Path]) -> str:
    """The run's axis: the one it declares (``LocalRun.step_metric``), else the axis of the
    checkpoint it used when it logged that metric too (a framework run resumed from a
    ``model`` artifact goes on with the framework's step), else ``_step``."""
    if local.breadcrumbs is not None or local.step_metric != LOCAL_STEP:
        return local.step_metric
    axes = [metric for run, _, metric in used if run != key and metric != LOCAL_STEP]
    if axes and any(axes[-1] in files.columns(p) for p in paths):
        return axes[-1]
    return LOCAL_STEP


def _shared_collections(runs: Mapping[str, LocalRun]) -> dict[str, list[str]]:
    """Artifact names whose checkpoints several runs logged (HF's ``model-<run name>``)."""
    loggers: dict[str, list[str]] = {}
    for key, local in runs.items():
        for name in dict.fromkeys(c.name for c in local.valid_checkpoints):
            loggers.setdefault(name, []).append(key)
    return {name: keys for name, keys in loggers.items() if len(keys) > 1}


def _axis_span(history: RunHistory, metric: str,
               notes: list[str]) -> tuple[str, tuple[int | None, int | None] | None]:
    """A run on a declared axis: (its axis, its (first, last) step on it). A run that logged
    no value of the metric is read on ``_step``; a counter that goes back is read as a
    restart (``stitch.superseded``); each with a note."""
    values = np.asarray(history[metric], np.float64) if metric in history else np.empty(0)
    rows = len(history[LOCAL_STEP])
    if not rows:
        return metric, (None, None)
    if not np.isfinite(values).any() or (rows > 1 and np.nanmax(np.abs(values)) == 0):
        notes.append(f"its breadcrumbs or checkpoints put its steps on {metric}, but it "
                     f"logged no value of {metric} other than 0 (wandb's step sync writes 0 "
                     f"into rows logged before any); read on _step")
        return LOCAL_STEP, None
    steps = axis_steps(history, metric)
    replaced = superseded(steps)
    if replaced.any():
        j = int(np.flatnonzero(steps[1:] < steps[:-1])[0]) + 1
        notes.append(f"its {metric} goes back from {steps[j - 1]} to {steps[j]} (at its row "
                     f"{j}): read as a restart at {steps[j]}, its later rows replacing the "
                     f"earlier ones from there on (resumed in place without RunchainCallback, "
                     f"or trained twice in one run?)")
    kept = steps[~replaced]
    return metric, (int(kept.min()), int(kept.max()))


def _keyed(folders: Mapping[str, list[Path]], runs: Mapping[Path, RunFile]) -> dict[str, list[Path]]:
    """Each run's files under its key: its id, or ``project/id`` when one id is in several
    projects of the folder (a file with no run record yet joins its id's only project)."""
    keyed: dict[str, list[Path]] = {}
    for run_id, paths in folders.items():
        projects: dict[str | None, list[Path]] = {}
        for path in paths:
            projects.setdefault(runs[path].project, []).append(path)
        named = [p for p in projects if p is not None]
        if len(named) <= 1:
            keyed[run_id] = paths
            continue
        for project in named:
            keyed[f"{project}/{run_id}"] = projects[project]
        if None in projects:
            keyed[run_id] = projects[None]
    return keyed


def _resolve(info: RunInfo, keys: set[str]) -> RunInfo:
    """Breadcrumbs and forks name a parent by id; where the id is in several projects, the
    parent is the one in the run's own project."""
    def key(parent: str | None) -> str | None:
        own = f"{info.project}/{parent}"
        return own if parent is not None and parent not in keys and own in keys else parent
    crumbs, fork = info.breadcrumbs, info.fork
    if crumbs is not None and key(crumbs.parent_run) != crumbs.parent_run:
        crumbs = dataclasses.replace(crumbs, parent_run=key(crumbs.parent_run))
    if fork is not None:
        fork = (key(fork[0]), fork[1])
    return dataclasses.replace(info, breadcrumbs=crumbs, fork=fork)


def open_folder(root: str | os.PathLike, only_project: str | None = None) -> Source:
    """Every run under ``root`` as a ``Source``; histories are read when a chain asks.

    Runs are keyed by id, or by ``project/id`` where one id is in several projects.

    Args:
        root: a ``wandb/`` folder.
        only_project: keep only the runs of this W&B project.

    Raises:
        RunNotFoundError: ``root`` holds no runs (of ``only_project``); the message says
            where it looked.
    """
    found = run_folders(root)
    if not found:
        raise RunNotFoundError(
            f"no runs under {Path(root).resolve()} (looked for run-*/ and offline-run-*/ folders "
            f"holding run-<id>.wandb); pass --dir pointing at a wandb/ folder, or set WANDB_DIR")
    files = RunFiles([p for paths in found.values() for p in paths])
    folders = _keyed(found, files.runs)
    if only_project is not None:
        projects = sorted({str(files.runs[ps[0]].project) for ps in folders.values()})
        folders = {k: ps for k, ps in folders.items() if files.runs[ps[0]].project == only_project}
        if not folders:
            raise RunNotFoundError(f"no runs of project {only_project!r} under "
                                   f"{Path(root).resolve()}; it holds {', '.join(projects)}")
    ids = {key: files.runs[paths[0]].run_id or key.rpartition("/")[2]
           for key, paths in folders.items()}
    merged = {key: merge_segments(ids[key], paths, [files.runs[p] for p in paths])
              for key, paths in folders.items()}
    views = {}
    for key in [k for k, local in merged.items() if is_chain_view(local.config)]:
        shown = merged[key].config[CHAIN_VIEW_KEY]
        views[key] = (shown.get("leaf") if isinstance(shown, dict) else None,
                      merged[key].project, folders[key])
        del merged[key], folders[key]
    axes = {key: file_axes(ids[key], [files.runs[p] for p in paths])
            for key, paths in folders.items()}
    # A used checkpoint is named "<name>:v<N>" or "<name>:<alias>", as the code using it
    # wrote it: find its producer and step (an alias names the newest version carrying it),
    # in the user's own project first.
    producers: dict[tuple[str | None, str], tuple[str, int, str]] = {}
    shared = _shared_collections(merged)
    notes: dict[str, list[str]] = {key: list(axes[key][1]) for key in folders}
    for name, keys in shared.items():
        for key in keys:
            notes[key].append(
                f"artifact {name} is logged by runs {', '.join(keys)} (the Trainer names it "
                f"after run_name); W&B numbers its versions across them, so a use of "
                f"{name}:vN is not linked here; an alias names the newest run's")
    started = {key: files.runs[folders[key][0]].start_time or 0.0 for key in merged}
    for key, local in sorted(merged.items(), key=lambda item: started[item[0]]):  # newest wins
        for c in local.valid_checkpoints:
            versions = () if c.name in shared else (c.version,)
            for label in (*versions, *c.aliases):
                shift = axes[key][0][c.segment].shift if c.step_metric == LOCAL_STEP else 0
                found = (key, c.step + shift, c.step_metric)
                producers[local.project, f"{c.name}:{label}"] = found
                producers.setdefault((None, f"{c.name}:{label}"), found)

    def fetch(segments: Sequence[Segment], keys: Sequence[str] | None) -> Mapping[str, RunHistory]:
        parts = {}
        for seg in segments:  # timeline k: the run as its file k left it
            end = None if seg.timeline is None else seg.timeline + 1
            parts[seg.run_id] = (folders[seg.run_id][:end], axes[seg.run_id][0][:end])
        files.decode([p for paths, _ in parts.values() for p in paths])
        return _Histories({run_id: ([files.opener(p) for p in paths], run_axes)
                           for run_id, (paths, run_axes) in parts.items()})

    used = {key: _used(local, [files.runs[p] for p in folders[key]], producers)
            for key, local in merged.items()}
    metrics = {key: _step_metric(key, local, used[key], files, folders[key])
               for key, local in merged.items()}
    spans: dict[str, tuple[int | None, int | None]] = {}
    for key, metric in metrics.items():
        if metric != LOCAL_STEP:  # its history decoded now, and cached for the chains
            metrics[key], spans[key] = _axis_span(fetch([Segment(key, None, 0)], [metric])[key],
                                                  metric, notes[key])
    infos = [_resolve(_run_info(key, ids[key], merged[key], [files.runs[p] for p in folders[key]],
                                axes[key][0], notes[key], producers, used[key], metrics[key],
                                spans.get(key)),
                      set(folders))
             for key in sorted(folders)]

    def metric_names(run_ids: Sequence[str]) -> list[str]:
        """From the decoded columns' names: decoding is cached, so the chains read next
        find their histories ready."""
        paths = [p for run_id in run_ids for p in folders[run_id]]
        files.decode(paths)  # all at once: in a pool when there is much to decode
        return metric_keys(files.columns(p) for p in paths)

    return Source(str(root), infos, fetch, metric_names, files=folders, views=views)
