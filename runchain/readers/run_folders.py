"""Find runs and their checkpoints in a local ``wandb/`` directory (offline or synced runs).

Offline, wandb refuses ``use_artifact``, so a resuming run resolves its parent's
checkpoint from the parent's run files instead: the artifact records name the
artifact, its aliases, its metadata and a manifest of staged files or references.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any

from ..artifact_files import read_checkpoint_json
from ..contract import (CHECKPOINT_FILE, CHECKPOINT_TYPE, CONFIG_KEY, LATEST, LOCAL_STEP,
                        MODEL_TYPE, Breadcrumbs, CheckpointRef, artifact_name, checkpoint_label,
                        framework_checkpoint, logged_checkpoint_step, step_alias,
                        step_metric_of)
from ..errors import CheckpointError, CheckpointNotFoundError, RunNotFoundError
from .runfile import RunFile, read_run_file

_FOLDER_RE = re.compile(r"^(?:offline-)?run-(?P<stamp>\d{8}_\d{6})-(?P<id>.+?)(?:-(?P<n>\d+))?$")


def default_wandb_dir() -> Path:
    """``$WANDB_DIR/wandb`` when ``WANDB_DIR`` is set, else ``./wandb``."""
    return Path(os.environ.get("WANDB_DIR") or ".") / "wandb"


def run_folders(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Map run id -> its run files under ``root``, oldest segment first.

    A run resumed in place has several folders (``...-<id>``, ``...-<id>-1``).
    """
    found: dict[str, list[tuple[str, int, Path]]] = {}
    root = Path(root)
    if not root.is_dir():
        return {}
    for folder in root.iterdir():
        m = _FOLDER_RE.match(folder.name)
        if not m:
            continue
        # The id may itself end in "-<digits>"; the run file's name settles it.
        for run_id in (m["id"] + (f"-{m['n']}" if m["n"] else ""), m["id"]):
            path = folder / f"run-{run_id}.wandb"
            if path.is_file():
                segment = int(m["n"]) if m["n"] and run_id == m["id"] else 0
                found.setdefault(run_id, []).append((m["stamp"], segment, path))
                break
    return {rid: [p for *_, p in sorted(v)] for rid, v in found.items()}


@dataclasses.dataclass
class LocalCheckpoint:
    name: str
    type: str
    version: str  # "v0", "v1", ... per name in logging order, as W&B numbers them on upload
    aliases: list[str]
    metadata: dict[str, Any]
    files: dict[str, str]  # path in the artifact -> staged local path or reference URI
    step: int | None = None  # its local step if it is a checkpoint (contract.logged_checkpoint_step)
    segment: int = 0  # which of the run's files logged it, oldest first
    step_metric: str = LOCAL_STEP  # the axis ``step`` is on (a framework's global step)

    @property
    def label(self) -> str:
        """How a reference names it (``contract.checkpoint_label``)."""
        return self.version if self.step is None else checkpoint_label(self.step, self.aliases,
                                                                         self.version)


@dataclasses.dataclass
class LocalRun:
    run_id: str
    project: str | None
    entity: str | None  # offline runs usually record none
    config: dict[str, Any]
    checkpoints: list[LocalCheckpoint]  # every checkpoint, or artifact named run-<id>-checkpoint
    files: list[Path]
    incomplete: bool
    problems: list[str] = dataclasses.field(default_factory=list)  # unreadable checkpoints

    @property
    def valid_checkpoints(self) -> list[LocalCheckpoint]:
        """The checkpoints that count (``contract.logged_checkpoint_step``, and a framework
        integration's ``model`` artifacts, ``contract.framework_checkpoint``), in logging
        order; at one step, a ``checkpoint`` comes after (and so wins over) a ``model``."""
        found = [c for c in self.checkpoints if c.step is not None]
        return sorted(found, key=lambda c: c.type == CHECKPOINT_TYPE)

    @property
    def step_metric(self) -> str:
        """The axis the run declares: its breadcrumbs' (``_step`` unless they name a step
        metric), else, without breadcrumbs, its checkpoints'."""
        crumbs = self.breadcrumbs
        if crumbs is not None:
            return step_metric_of(crumbs.step_metric)
        axes = [c.step_metric for c in self.valid_checkpoints if c.step_metric != LOCAL_STEP]
        return axes[-1] if axes else LOCAL_STEP

    @property
    def breadcrumbs(self) -> Breadcrumbs | None:
        return Breadcrumbs.from_config(self.config.get(CONFIG_KEY))


def read_local_run(run_id: str, root: str | os.PathLike) -> LocalRun:
    """Read every segment of run ``run_id`` under ``root`` (lineage only, no history).

    Raises:
        RunNotFoundError: no run files for that id; the message lists close matches.
    """
    runs = run_folders(root)
    if run_id not in runs:
        close = difflib.get_close_matches(run_id, list(runs), n=3, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else (
            f"; it holds {len(runs)} runs" if runs else "; it holds no runs")
        raise RunNotFoundError(
            f"no local run files for run {run_id!r} under {Path(root).resolve()} (looked for "
            f"*run-*-{run_id}/run-{run_id}.wandb){hint}. Run from the folder that holds wandb/ "
            f"or set WANDB_DIR to it, or use --mode online if the run is on W&B")
    return merge_segments(run_id, runs[run_id], [read_run_file(p, history=False) for p in runs[run_id]])


def merge_segments(run_id: str, files: list[Path], segments: list[RunFile]) -> LocalRun:
    """One run from its segments (several when resumed in place), oldest first."""
    config: dict[str, Any] = {}
    checkpoints: list[LocalCheckpoint] = []
    problems: list[str] = []
    versions: dict[tuple[str, str], str] = {}  # W&B keeps one version per name and content
    counts: dict[str, int] = {}
    for i, seg in enumerate(segments):
        config.update(seg.config)
        for a in seg.artifacts:
            framework = framework_checkpoint(a.type, a.aliases, a.metadata)
            if a.type not in (CHECKPOINT_TYPE, MODEL_TYPE) and a.name != artifact_name(run_id):
                continue  # neither a checkpoint nor what a reference to one could name
            if (a.name, a.digest) not in versions:
                versions[a.name, a.digest] = f"v{counts.get(a.name, 0)}"
                counts[a.name] = counts.get(a.name, 0) + 1
            found = LocalCheckpoint(a.name, a.type, versions[a.name, a.digest], a.aliases,
                                    a.metadata, a.files, segment=i)
            where = f"{a.name}:{found.version} of run {run_id}"
            if a.type == MODEL_TYPE:  # a model without a step in its name is no checkpoint
                found.step, found.step_metric = framework or (None, LOCAL_STEP)
                checkpoints.append(found)
                continue
            found.step_metric = step_metric_of(
                a.metadata.get("step_metric") if isinstance(a.metadata, dict) else None)
            try:
                found.step = logged_checkpoint_step(a.type, a.metadata, lambda: (
                    read_checkpoint_json(a.files[CHECKPOINT_FILE], where)
                    if CHECKPOINT_FILE in a.files else None))
            except CheckpointError as e:
                problems.append(f"checkpoint {where} is left out: {e}")
            checkpoints.append(found)
    entity = next((s.entity for s in segments if s.entity), None)
    return LocalRun(run_id, segments[0].project, entity, config, checkpoints, files,
                    incomplete=not all(s.complete for s in segments), problems=problems)


def pick_checkpoint(run: LocalRun, ref: CheckpointRef) -> LocalCheckpoint:
    """The checkpoint of ``run`` that ``ref``'s alias or version points at now.

    An alias moves to the newest version that carries it, as on W&B. ``step-<s>`` (what
    ``<run_id>@<s>`` means) also finds a checkpoint saved at step ``s`` without that alias,
    as runs not written by runchain have: the newest one.

    Raises:
        CheckpointNotFoundError: no checkpoint matches; the message lists what exists.
        CheckpointError: the match is not of type ``checkpoint``.
    """
    named = [c for c in run.checkpoints if c.name == ref.name]
    if ref.alias == LATEST:  # W&B moves "latest" to the newest version, listed or not
        matches = named
    else:
        matches = [c for c in named if ref.alias in (c.version, *c.aliases)]
    if not matches and ref.alias.startswith("step-"):
        matches = [c for c in run.valid_checkpoints
                   if step_alias(c.step) == ref.alias and c.type == CHECKPOINT_TYPE]
    if not matches:
        newest = {c.step: c for c in run.valid_checkpoints if c.type == CHECKPOINT_TYPE}
        labels = [c.label if c.label == step_alias(s) else f"{c.version} (step {s})"
                  for s, c in sorted(newest.items())]
        listing = (f"it has {', '.join(labels)}" if labels else
                   f"it logged no checkpoint (no artifact of type {CHECKPOINT_TYPE!r} holding "
                   f"{CHECKPOINT_FILE} with a step)")
        if any(c.type == MODEL_TYPE for c in run.valid_checkpoints):
            listing += (f"; its {MODEL_TYPE!r} artifacts are W&B's framework checkpoints, which "
                        f"the framework itself resumes from (resume_from_checkpoint=, ckpt_path=)")
        raise CheckpointNotFoundError(
            f"checkpoint reference {ref} not found: run {run.run_id} has no checkpoint with alias "
            f"or version {ref.alias!r}; {listing} (read from {', '.join(map(str, run.files))})")
    found = matches[-1]
    if found.type != CHECKPOINT_TYPE:
        raise CheckpointError(
            f"artifact {found.name}:{ref.alias} has type {found.type!r}, expected "
            f"{CHECKPOINT_TYPE!r}; log checkpoints with wandb.Artifact(..., type='checkpoint')")
    return found
