"""Read a local ``wandb/`` folder as a source: every run's lineage, and chain histories on demand.

``open_folder`` works in stages, each a function from plain data to plain data, in the
order the data flows:

1. **discover** the run folders, and read each file's lineage (``decode_once``, cached);
2. **merge** each run's files (several when resumed in place) into one ``FolderRun``;
3. **timelines**: where each file's rows go on its run's axis (``timelines.file_axes``);
4. **edges**: which run produced each checkpoint a run used (its producer, step and axis);
5. **axes**: the run's step axis (``classify.run_axis``) and, on a declared axis, its
   first and last step on it, from its history;
6. **runs**: one ``RunInfo`` per run, for the pure core.

A chain's history then loads only the columns asked for, of only the chain's runs.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core.breadcrumbs import read_breadcrumbs
from ..core.classify import (NOT_HERE, PROPER_TYPES, SHARED_COLLECTION, left_out_notes,
                             run_axis, unlogged_axis_note, unplaceable_note)
from ..core.contract import CHAIN_VIEW_KEY, LOCAL_STEP, fork_point, is_chain_view, is_step, user_config
from ..core.lineage import CheckpointInfo, RunInfo, Segment
from ..core.source import Source
from ..core.stitch import axis_steps, metric_keys, superseded
from ..errors import RunFileError, RunNotFoundError
from .decode_once import RunFiles
from .local_runs import (LocalCheckpoint, LocalRun, empty_note, gone_note, merge_segments,
                         online_note, scan_run_folders)
from .record_log import RunFile
from .resolve import labels
from .run_state import run_state
from .timelines import FileAxis, RunHistory, abandoned_in, file_axes, first_step, last_step

# a used checkpoint: (its producer's key, its step, that step's axis, whether it is a
# checkpoint proper: by type or metadata step, not only by its checkpoint.json)
Used = tuple[str, int, str, bool]
Producers = Mapping[tuple[str | None, str], Used]  # (project or None, "name:label") -> producer


@dataclasses.dataclass(frozen=True)
class FolderRun:
    """One run of the folder, as the stages fill it in."""

    key: str  # its id, or project/id where one id is in several projects
    run_id: str
    paths: tuple[Path, ...]  # its run files, oldest first
    segments: tuple[RunFile, ...]  # their lineage, in the same order
    local: LocalRun
    axes: tuple[FileAxis, ...] = ()  # timelines: where each file's rows go
    notes: tuple[str, ...] = ()  # what the tree should say about it
    used: tuple[Used, ...] = ()  # edges: the checkpoints it used
    unplaced: tuple[str, ...] = ()  # edges: notes on used model artifacts no run's checkpoint is
    step_metric: str = LOCAL_STEP  # axes: its step axis
    span: tuple[int | None, int | None] | None = None  # on a declared axis: (first, last)


# -- 1. discover ----------------------------------------------------------------------------

def _no_runs(root: str | os.PathLike) -> RunNotFoundError:
    return RunNotFoundError(
        f"no runs under {Path(root).resolve()} (looked for run-*/ and offline-run-*/ folders "
        f"holding run-<id>.wandb); pass --dir pointing at a wandb/ folder, or set WANDB_DIR")


def discover(root: str | os.PathLike) -> tuple[dict[str, list[Path]], list[str]]:
    """Run id -> its run files under ``root``, oldest first; and a note on each run folder
    that holds no run file.

    Raises:
        RunNotFoundError: there are none; the message says where it looked.
    """
    found, empty = scan_run_folders(root)
    if not found:
        raise _no_runs(root)
    return found, [empty_note(f) if f.exists() else gone_note(f) for f in empty]


def usable(found: Mapping[str, list[Path]], files: RunFiles) -> tuple[dict[str, list[Path]],
                                                                       list[str]]:
    """``found`` without the files that vanished while read (``RunFiles.gone``) or that hold
    no run (``RunFiles.unstarted``), and a note on each one left out."""
    notes = [gone_note(p) for p in files.gone]
    kept: dict[str, list[Path]] = {}
    for run_id, paths in found.items():
        for path in paths:
            if path not in files.runs:
                continue
            if path in files.unstarted:
                notes.append(empty_note(path.parent))
            else:
                kept.setdefault(run_id, []).append(path)
    return kept, notes


# -- 2. merge -------------------------------------------------------------------------------

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


def merge(folders: Mapping[str, list[Path]], runs: Mapping[Path, RunFile], root: Path,
          only_project: str | None) -> tuple[list[FolderRun], dict[str, tuple]]:
    """The runs (of ``only_project``), each its files merged; and, left out of them, the
    ``runchain publish`` chain views: key -> (the leaf it shows, its project, its files).

    Raises:
        RunNotFoundError: no run of ``only_project``; the message lists the projects.
    """
    if only_project is not None:  # before keying: an id of that project is its bare id
        projects = sorted({str(runs[p].project) for ps in folders.values() for p in ps})
        folders = {run_id: [p for p in ps if runs[p].project in (only_project, None)]
                   for run_id, ps in folders.items()
                   if any(runs[p].project == only_project for p in ps)}
        if not folders:
            raise RunNotFoundError(f"no runs of project {only_project!r} under "
                                   f"{root.resolve()}; it holds {', '.join(projects)}")
    keyed = _keyed(folders, runs)
    merged, chain_views = [], {}
    for key, paths in keyed.items():
        run_id = runs[paths[0]].run_id or key.rpartition("/")[2]
        segments = tuple(runs[p] for p in paths)
        local = merge_segments(run_id, paths, list(segments))
        if is_chain_view(local.config):
            shown = local.config[CHAIN_VIEW_KEY]
            chain_views[key] = (shown.get("leaf") if isinstance(shown, dict) else None,
                          local.project, paths)
        else:
            merged.append(FolderRun(key, run_id, tuple(paths), segments, local))
    return merged, chain_views


# -- 3. timelines ---------------------------------------------------------------------------

def _shared_collections(runs: Sequence[FolderRun]) -> dict[str, list[str]]:
    """Artifact names whose checkpoints several runs logged (HF's ``model-<run name>``)."""
    loggers: dict[str, list[str]] = {}
    for folder_run in runs:
        for name in dict.fromkeys(c.name for c in folder_run.local.valid_checkpoints):
            loggers.setdefault(name, []).append(folder_run.key)
    return {name: keys for name, keys in loggers.items() if len(keys) > 1}


def timelines(runs: Sequence[FolderRun], shared: Mapping[str, list[str]]) -> list[FolderRun]:
    """Each run with its files' axes, and the notes on its restarted counters and on the
    checkpoint collections it shares with other runs (``shared``: ``_shared_collections``)."""
    out = []
    for folder_run in runs:
        axes, notes = file_axes(folder_run.run_id, list(folder_run.segments))
        notes += [f"artifact {name} is logged by runs {', '.join(keys)} (the Trainer names it "
                  f"after run_name); W&B numbers its versions across them, so a use of "
                  f"{name}:vN is not linked here; an alias names the newest run's"
                  for name, keys in shared.items() if folder_run.key in keys]
        out.append(dataclasses.replace(folder_run, axes=tuple(axes),
                                       notes=(*folder_run.notes, *notes)))
    return out


# -- 4. edges -------------------------------------------------------------------------------

def producers(runs: Sequence[FolderRun],
              shared: Mapping[str, list[str]]) -> dict[tuple[str | None, str], Used]:
    """What a used checkpoint's name points at. A use is named ``"<name>:v<N>"`` or
    ``"<name>:<alias>"``, as the code using it wrote it; an alias names the newest version
    carrying it (the newest run wins), in the user's own project first (``(project, name)``,
    else ``(None, name)``). The labels are the resolver's (``resolve.labels``): a collection
    several runs logged (``shared``) is found by alias only."""
    found: dict[tuple[str | None, str], Used] = {}
    for folder_run in sorted(runs, key=lambda r: r.segments[0].start_time or 0.0):
        for c in folder_run.local.valid_checkpoints:
            for label in labels(c, c.name in shared):
                shift = folder_run.axes[c.segment].shift if c.step_metric == LOCAL_STEP else 0
                producer = (folder_run.key, c.step + shift, c.step_metric, c.proper)
                found[folder_run.local.project, f"{c.name}:{label}"] = producer
                found.setdefault((None, f"{c.name}:{label}"), producer)
    return found


def _why_unplaced(runs: Sequence[FolderRun], shared: Mapping[str, list[str]]) -> dict[str, str]:
    """``"name:label"`` -> why a run's artifact of that name is no checkpoint, for the notes
    on its uses; ``"name"`` -> why a use of the collection names no checkpoint here."""
    why: dict[str, str] = {name: SHARED_COLLECTION for name in shared}
    for folder_run in runs:
        for c in folder_run.local.checkpoints:
            why.setdefault(c.name, "no version of it here has that label; name one that "
                                   "`runchain tree` lists")
            if c.step is None and c.reason:
                why.update((f"{c.name}:{label}", c.reason) for label in labels(c, c.name in shared))
    return why


def edges(runs: Sequence[FolderRun], shared: Mapping[str, list[str]]) -> list[FolderRun]:
    """Each run with the checkpoints it used (its ``use_artifact`` records) that a run of the
    folder logged, and one note for each used checkpoint or model that none is
    (``classify.unplaceable_note``: why, and the fix)."""
    made, why = producers(runs, shared), _why_unplaced(runs, shared)
    out = []
    for folder_run in runs:
        names = [name for seg in folder_run.segments for _, name in seg.used]  # any type
        project = folder_run.local.project
        used = tuple(made.get((project, name)) or made[None, name]
                     for name in names if (None, name) in made)
        unplaced = dict.fromkeys(name for seg in folder_run.segments for kind, name in seg.used
                                 if kind in PROPER_TYPES and (None, name) not in made
                                 and folder_run.local.breadcrumbs is None)  # else they say
        notes = [unplaceable_note(name, why.get(name) or why.get(name.partition(":")[0])
                                  or NOT_HERE) for name in unplaced]
        out.append(dataclasses.replace(folder_run, used=used, unplaced=tuple(notes)))
    return out


# -- 5. axes --------------------------------------------------------------------------------

def _axis_span(history: RunHistory, metric: str) -> tuple[str, tuple | None, list[str]]:
    """A run on a declared axis: its axis, its (first, last) step on it, and notes. A run
    that logged no value of the metric is read on ``_step``; a counter that goes back is
    read as a restart (``stitch.superseded``); each with a note."""
    values = np.asarray(history[metric], np.float64) if metric in history else np.empty(0)
    rows = len(history[LOCAL_STEP])
    if not rows:
        return metric, (None, None), []
    if not np.isfinite(values).any() or (rows > 1 and np.nanmax(np.abs(values)) == 0):
        return LOCAL_STEP, None, [unlogged_axis_note(metric)]
    steps = axis_steps(history, metric)
    replaced = superseded(steps)
    notes = []
    if replaced.any():
        j = int(np.flatnonzero(steps[1:] < steps[:-1])[0]) + 1
        notes.append(f"its {metric} goes back from {steps[j - 1]} to {steps[j]} (at its row "
                     f"{j}): read as a restart at {steps[j]}, its later rows replacing the "
                     f"earlier ones from there on (resumed in place without RunchainCallback, "
                     f"or trained twice in one run?)")
    kept = steps[~replaced]
    return metric, (int(kept.min()), int(kept.max())), notes


def step_axes(runs: Sequence[FolderRun], files: RunFiles,
              left_out: list[str]) -> list[FolderRun]:
    """Each run with its step axis (``classify.run_axis``; whether it logged a metric is
    whether its decoded history has the column) and, on a declared axis, its span, read
    from its history (decoded now, and cached for the chains). A run whose file vanished
    meanwhile is left out, with a note added to ``left_out``."""
    out = []
    for folder_run in runs:
        def logs(metric: str, paths: Sequence[Path] = folder_run.paths) -> bool:
            return any(metric in files.columns(p) for p in paths)
        local = folder_run.local
        declared = [seg.declared_axis for seg in folder_run.segments if seg.declared_axis]
        try:
            metric = run_axis(local.breadcrumbs, [c.step_metric for c in local.valid_checkpoints],
                              [axis for key, _, axis, _ in folder_run.used if key != folder_run.key],
                              logs, declared[-1] if declared else None)
            span, notes = None, []
            if metric != LOCAL_STEP:
                key = folder_run.key
                history = files.histories({key: (folder_run.paths, folder_run.axes)})[key]
                metric, span, notes = _axis_span(history, metric)
        except RunFileError as e:  # its file vanished meanwhile: one run's problem
            left_out.append(f"{e}; left out")
            continue
        out.append(dataclasses.replace(folder_run, step_metric=metric, span=span,
                                       notes=(*folder_run.notes, *notes)))
    return out


# -- 6. runs --------------------------------------------------------------------------------

def _checkpoint_timeline(c: LocalCheckpoint, step: int, axes: Sequence[FileAxis]) -> int | None:
    """The timeline a checkpoint belongs to, if a later file abandoned it. On a declared axis
    the files' takeovers are in ``_step``: the checkpoint's ``row_step`` (its ``_step``, as
    runchain's framework callbacks record) says; without one it is on the run's rows."""
    if c.step_metric != LOCAL_STEP:
        row = c.metadata.get("row_step") if isinstance(c.metadata, dict) else None
        if not is_step(row):
            return None
        step = row + axes[c.segment].shift
    return c.segment if abandoned_in(step, c.segment, axes) else None


def run_info(run: FolderRun, keys: set[str]) -> RunInfo:
    """The run as the tree needs it. Breadcrumbs and forks name a parent by id; where the id
    is in several projects (``keys``), the parent is the one in the run's own project."""
    local, segments, axes, metric = run.local, list(run.segments), list(run.axes), run.step_metric
    on_step = metric == LOCAL_STEP  # a restarted _step is shifted; a declared axis is not
    # one per step: a step saved again (resumed in place) has its alias on the newest
    newest = {c.step + (axes[c.segment].shift if on_step else 0): c
              for c in local.valid_checkpoints if c.step_metric == metric}
    off_axis = left_out_notes([(c.name, c.version, f"its step {c.step} is on {c.step_metric}, "
                                f"the run's steps on {metric}")
                               for c in local.valid_checkpoints if c.step_metric != metric])
    checkpoints = tuple(CheckpointInfo(step, c.label, c.version, _checkpoint_timeline(c, step, axes))
                        for step, c in sorted(newest.items()))
    first, last = run.span or (first_step(segments, axes), last_step(segments, axes))

    def parent(run_id: str | None) -> str | None:
        own = f"{segments[0].project}/{run_id}"
        return own if run_id is not None and run_id not in keys and own in keys else run_id
    crumbs = local.breadcrumbs
    if crumbs is not None and parent(crumbs.parent_run) != crumbs.parent_run:
        crumbs = dataclasses.replace(crumbs, parent_run=parent(crumbs.parent_run))
    fork = fork_point(run.run_id, *(segments[0].branch_point or (None, None)))
    named = [s.name for s in segments if s.name]  # a resume in place may give no name: kept
    state = run_state(segments[-1], Path(segments[-1].path))
    if state == "running" and crumbs is None and not run.used and fork is None and _new(segments):
        state = "starting"  # its breadcrumbs or use_artifact record may not be written yet
    return RunInfo(id=run.key, project=segments[0].project, name=named[-1] if named else None,
                   state=state,
                   last_step=last, first_step=first, step_metric=metric,
                   checkpoints=checkpoints,
                   used=tuple((key, step) for key, step, _, proper in run.used if proper),
                   used_other=tuple((key, step) for key, step, _, proper in run.used if not proper),
                   breadcrumbs=crumbs, entity=local.entity,
                   problems=(*read_breadcrumbs(local.config)[1], *local.problems, *run.notes,
                             *off_axis, *run.unplaced),
                   fork=None if fork is None else (parent(fork[0]), fork[1]),
                   config=user_config(local.config), started=segments[0].start_time,
                   timelines=tuple((seg.start_time, axis.start) for seg, axis in zip(segments, axes))
                   if on_step and len(segments) > 1 else ())


STARTING = 30.0  # seconds: two of wandb's 15 s flushes, by when a run's config is in its file


def _new(segments: Sequence[RunFile]) -> bool:
    """Whether a run of one file began less than ``STARTING`` seconds ago: a run that names
    no parent yet may be a child whose breadcrumbs or ``use_artifact`` record are not
    flushed yet, so it is "starting", not a root (``runchain report --watch``)."""
    began = segments[0].start_time
    return len(segments) == 1 and began is not None and time.time() - began < STARTING


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
    found, left_out = discover(root)
    files = RunFiles([p for paths in found.values() for p in paths])
    found, more = usable(found, files)
    left_out += more
    if not found:
        raise _no_runs(root)
    runs, chain_views = merge(found, files.runs, Path(root), only_project)
    shared = _shared_collections(runs)
    runs = step_axes(edges(timelines(runs, shared), shared), files, left_out)
    keys = {r.key for r in runs}
    infos = [run_info(r, keys) for r in sorted(runs, key=lambda r: r.key)]
    folders = {r.key: list(r.paths) for r in runs}
    axes = {r.key: list(r.axes) for r in runs}

    def fetch(segments: Sequence[Segment], keys: Sequence[str] | None) -> Mapping[str, RunHistory]:
        parts = {}
        for seg in segments:  # timeline k: the run as its file k left it
            end = None if seg.timeline is None else seg.timeline + 1
            parts[seg.run_id] = (folders[seg.run_id][:end], axes[seg.run_id][:end])
        return files.histories(parts)

    def metric_names(run_ids: Sequence[str]) -> list[str]:
        """From the decoded columns' names: decoding is cached, so the chains read next
        find their histories ready."""
        paths = [p for run_id in run_ids for p in folders[run_id]]
        files.decode(paths)  # all at once: in a pool when there is much to decode
        return metric_keys(files.columns(p) for p in paths)

    online = [r.local for r in sorted(runs, key=lambda r: r.key) if r.local.checkpoints_on_wandb]
    return Source(str(root), infos, fetch, metric_names, files=folders, chain_views=chain_views,
                  left_out=tuple(left_out), notes=(online_note(online),) if online else ())
