"""Resolve a checkpoint reference: ``load_checkpoint`` (``<id>@<step>``, aliases, versions),
``checkpoint_steps``, and the labels a reference can name a checkpoint by.

``load_checkpoint`` resolves a reference *before* ``wandb.init``, so a bad reference fails
before a run exists. Online it asks W&B (``wandb.Api``); offline it reads the parent's
local run files, because wandb refuses ``use_artifact`` offline. ``tracking.start`` then
records the input edge. The folder reader names what a run used by the same ``labels``.

This module reads run files; the run side (``start``, ``log``, ``save_checkpoint``) does
not import it, so a training script that resumes from nothing loads no reader.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import wandb

from ..core.breadcrumbs import Breadcrumbs
from ..core.contract import (CHECKPOINT_FILE, CHECKPOINT_TYPE, LATEST, MODEL_TYPE, CheckpointRef,
                             alias_step, checkpoint_file, checkpoint_label, parse_ref,
                             step_alias)
from ..errors import CheckpointError, CheckpointNotFoundError, RunNotFoundError
from ..training.checkpoints import Checkpoint
from ..wandb_io.api import checkpoint_state, classify_artifact, entity_of, open_api, wandb_requests
from ..wandb_io.artifact_files import read_checkpoint_json
from .local_runs import LocalCheckpoint, LocalRun, default_wandb_dir, read_local_run


def labels(checkpoint: LocalCheckpoint, shared: bool = False) -> tuple[str, ...]:
    """What a reference to one of a run's checkpoints names after the colon: its version
    ``vN`` (unless several runs log its collection, whose versions W&B numbers across them)
    and each of its aliases. ``latest`` also names the newest version of a collection
    (``pick_checkpoint``).

    Example:
        >>> labels(LocalCheckpoint("run-a-checkpoint", "checkpoint", "v1", ["step-19"], {}, {}))
        ('v1', 'step-19')
    """
    return (*(() if shared else (checkpoint.version,)), *checkpoint.aliases)


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
        matches = [c for c in named if ref.alias in labels(c)]
    if not matches and alias_step(ref.alias) is not None:
        matches = [c for c in run.valid_checkpoints
                   if c.step == alias_step(ref.alias) and c.type == CHECKPOINT_TYPE]
    if not matches:
        newest = {c.step: c for c in run.valid_checkpoints if c.type == CHECKPOINT_TYPE}
        known = [c.label if c.label == step_alias(s) else f"{c.version} (step {s})"
                 for s, c in sorted(newest.items())]
        listing = (f"it has {', '.join(known)}" if known else
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


def _check_metadata(metadata: dict[str, Any], step: int, where: str) -> None:
    meta_step = metadata.get("step")
    if meta_step is not None and meta_step != step:
        raise CheckpointError(f"checkpoint {where}: metadata step {meta_step!r} disagrees with "
                              f"{CHECKPOINT_FILE} step {step}")


def _load_local(ref: CheckpointRef, wandb_dir: str | os.PathLike) -> Checkpoint:
    try:
        run = read_local_run(ref.run_id, wandb_dir)
    except RunNotFoundError as e:
        raise RunNotFoundError(f"checkpoint reference {ref}: {e}") from None
    if ref.project and run.project and ref.project != run.project:
        raise CheckpointNotFoundError(
            f"checkpoint reference {ref} names project {ref.project!r}, but the local run "
            f"{ref.run_id} is in project {run.project!r}; fix the project in the reference")
    try:
        found = pick_checkpoint(run, ref)
    except CheckpointNotFoundError as e:
        if not run.checkpoints_on_wandb:
            raise
        raise CheckpointNotFoundError(
            f"{e}. Run {ref.run_id} was logged online, so W&B holds checkpoints of it that its "
            f"local run files do not record: resolve it on W&B with --mode online") from None
    try:
        path = checkpoint_file(found.files)  # at any depth, as the readers take it
    except CheckpointError as e:
        raise CheckpointError(f"checkpoint {ref}: {e}") from None
    if path is None:
        raise CheckpointError(
            f"checkpoint {ref} has no {CHECKPOINT_FILE} (it holds {sorted(found.files)[:8]}); "
            f"every checkpoint needs one with the local step")
    state = read_checkpoint_json(found.files[path], str(ref))
    step = state["step"]
    _check_metadata(found.metadata, step, str(ref))
    # pinned to a label the checkpoint really has: step-<s> for runchain's own, else vN
    pinned = dataclasses.replace(ref, alias=found.label, entity=None,
                                 project=ref.project or run.project)
    return Checkpoint(pinned, ref.run_id, step, found.version, state, dict(found.files),
                      run.breadcrumbs)


def _load_remote(ref: CheckpointRef, project: str | None, entity: str | None,
                 api: Any) -> Checkpoint:
    api = api or open_api(f"resolving checkpoint {ref} on W&B")
    entity = entity_of(api, ref.entity or entity, ref)
    project = ref.project or project
    if not project:
        raise CheckpointNotFoundError(f"checkpoint reference {ref} names no project; pass "
                                      f"--project or use entity/project/{ref.short}")
    path = f"{entity}/{project}/{ref.short}"
    try:
        artifact = api.artifact(path)
    except (ValueError, wandb.errors.CommError) as e:
        artifact = _by_step(api, ref, entity, project) if alias_step(ref.alias) is not None else None
        if artifact is None:
            raise CheckpointNotFoundError(f"checkpoint {path} not found on W&B ({e}); check the "
                                          f"run id and alias in the W&B UI, Artifacts tab") from None
    if artifact.type != CHECKPOINT_TYPE:
        raise CheckpointError(f"artifact {path} has type {artifact.type!r}, expected "
                              f"{CHECKPOINT_TYPE!r}")
    with wandb_requests(path):
        state = checkpoint_state(artifact, path)
    if state is None:
        raise CheckpointError(f"checkpoint {path} has no {CHECKPOINT_FILE}; the contract needs "
                              f"one, holding the step")
    step = state["step"]
    _check_metadata(artifact.metadata or {}, step, path)
    producer = artifact.logged_by()
    crumbs = Breadcrumbs.from_config(producer.config.get("runchain")) if producer else None
    # pinned to a label the checkpoint really has: step-<s> for runchain's own, else vN
    pinned = CheckpointRef(ref.run_id, checkpoint_label(step, artifact.aliases, artifact.version),
                           entity, project)
    files = {name: getattr(e, "ref", None) or name for name, e in artifact.manifest.entries.items()}
    return Checkpoint(pinned, ref.run_id, step, artifact.version, state, files, crumbs,
                      online=True, artifact=artifact)


def _by_step(api: Any, ref: CheckpointRef, entity: str, project: str) -> Any:
    """The newest checkpoint ``ref.run_id`` logged at the step ``ref``'s ``step-<s>`` names,
    for runs that did not alias their checkpoints by step (not written by runchain)."""
    path = f"{entity}/{project}/{ref.run_id}"
    found = None
    with wandb_requests(path):
        try:
            logged = list(api.run(path).logged_artifacts())
        except (ValueError, wandb.errors.CommError):
            return None
        for artifact in logged:
            step = classify_artifact(artifact, path).step  # a broken one is not the one asked for
            if step is not None and artifact.type == CHECKPOINT_TYPE and step == alias_step(ref.alias):
                found = artifact
    return found


def load_checkpoint(ref: str | CheckpointRef, *, mode: str, project: str | None = None,
                    entity: str | None = None, wandb_dir: str | os.PathLike | None = None,
                    api: Any = None) -> Checkpoint:
    """Resolve a checkpoint reference and read its ``checkpoint.json``. Call before ``wandb.init``.

    Args:
        ref: any form ``parse_ref`` accepts, e.g. ``"1a2b3c4d@39"``.
        mode: ``"online"`` (ask W&B) or ``"offline"`` (read local run files).
        project, entity: defaults for references that do not name them (online).
        wandb_dir: the local ``wandb/`` folder (offline); default ``$WANDB_DIR/wandb`` or ``./wandb``.
        api: a ``wandb.Api`` to use (online); default a new one.

    Example:
        >>> ckpt = load_checkpoint("1a2b3c4d@39", mode="offline")  # doctest: +SKIP
        >>> ckpt.step, ckpt.state["model"]  # doctest: +SKIP

    Raises:
        ReferenceSyntaxError, RunNotFoundError, CheckpointNotFoundError, CheckpointError,
        CredentialsError: each names the reference and where runchain looked.
    """
    if not isinstance(ref, CheckpointRef):
        ref = parse_ref(ref)
    if mode == "online":
        return _load_remote(ref, project, entity, api)
    return _load_local(ref, wandb_dir or default_wandb_dir())


def checkpoint_steps(run_id: str, *, mode: str = "offline", project: str | None = None,
                     entity: str | None = None, wandb_dir: str | os.PathLike | None = None,
                     api: Any = None) -> list[int]:
    """Local steps of every checkpoint run ``run_id`` saved, ascending.

    Read from local run files. Online, W&B is asked for a run with no files here, and for
    one with a file logged online that records no checkpoint (wandb sends an online run's
    artifacts to W&B and writes no record of them: ``LocalRun.checkpoints_on_wandb``); its
    entity and project default to those its files record. Either way a checkpoint is what
    ``classify`` says: of type ``checkpoint`` with a step, or a framework integration's
    ``model`` artifact with a step.

    Example:
        >>> checkpoint_steps("1a2b3c4d")  # doctest: +SKIP
        [49, 99, 149, 199]

    Raises:
        RunNotFoundError: no such run here (offline) or on W&B (online).
        CheckpointNotFoundError: the run saved no checkpoints; offline, for a run logged
            online, the message says to ask W&B with mode online.
    """
    try:
        run = read_local_run(run_id, wandb_dir or default_wandb_dir())
    except RunNotFoundError:
        if mode != "online":
            raise
        run = None
    if run is not None and not (mode == "online" and run.checkpoints_on_wandb):
        steps = [c.step for c in run.valid_checkpoints]
    else:
        project = project or (run and run.project)
        if not project:
            raise RunNotFoundError(f"looking up run {run_id} on W&B needs a project; pass one")
        api = api or open_api(f"looking up run {run_id} on W&B")
        path = f"{entity_of(api, entity or (run and run.entity), run_id)}/{project}/{run_id}"
        try:
            remote = api.run(path)
            with wandb_requests(path):  # classify: a broken one's step cannot be known
                steps = [classify_artifact(a, path).step for a in remote.logged_artifacts()]
        except (ValueError, wandb.errors.CommError) as e:
            raise RunNotFoundError(f"run {path} not found on W&B ({e})") from None
    steps = sorted({s for s in steps if s is not None})
    if not steps:
        hint = ("; it was logged online, so W&B holds its checkpoints, which its local run "
                "files do not record: ask W&B with mode online (--mode online)"
                if run is not None and mode != "online" and run.checkpoints_on_wandb else "")
        raise CheckpointNotFoundError(f"run {run_id} saved no checkpoints (no artifact of type "
                                      f"{CHECKPOINT_TYPE!r} holding {CHECKPOINT_FILE} with a "
                                      f"step){hint}")
    return steps
