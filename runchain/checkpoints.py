"""Save checkpoints (the output edge) and load them back from a reference.

``save_checkpoint`` logs artifact ``run-<id>-checkpoint`` with aliases
``step-<step>`` and ``latest``, metadata ``{"step": step}`` and ``checkpoint.json``.

``load_checkpoint`` resolves a reference *before* ``wandb.init``, so a bad
reference fails before a run exists. Online it asks W&B (``wandb.Api``);
offline it reads the parent's local run files, because wandb refuses
``use_artifact`` offline. ``tracking.start`` then records the input edge.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import filecmp
import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Iterable
from urllib.parse import urlsplit

import wandb

from .artifact_files import local_path, read_checkpoint_json
from .contract import (CHECKPOINT_FILE, CHECKPOINT_TYPE, CONFIG_KEY, SUMMARY_CHECKPOINTS,
                       Breadcrumbs, CheckpointRef, artifact_name, checkpoint_label, is_step,
                       parse_ref, step_alias)
from .errors import CheckpointError, CheckpointNotFoundError, RunNotFoundError
from .readers.run_folders import default_wandb_dir, pick_checkpoint, read_local_run
from .wandb_api import checkpoint_state, checkpoint_step, entity_of, open_api, wandb_requests


LAST_LOGGED: dict[str, int] = {}  # run id -> the last step runchain.log logged in this process


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: where it came from and what ``checkpoint.json`` holds."""

    ref: CheckpointRef  # pinned: alias step-<step>, entity/project filled in where known
    run_id: str  # the run that logged it (the parent)
    step: int  # the parent's local step at save time, inclusive
    version: str | None  # "v3"; offline, the version W&B will give it on upload
    state: dict[str, Any]  # the decoded checkpoint.json
    files: dict[str, str]  # path in the artifact -> offline: staged path or reference URI;
    # online: reference URI, or the path itself (fetch with artifact.download())
    run_breadcrumbs: Breadcrumbs | None  # the parent's own breadcrumbs, None for plain wandb
    online: bool = False  # True: resolved on W&B, so start() calls run.use_artifact
    artifact: Any = None  # online: the wandb Artifact, e.g. checkpoint.artifact.download()

    def path(self, name: str) -> Path:
        """A local path to the checkpoint's file ``name`` (its path in the artifact, e.g.
        ``"ckpt.pt"`` or ``"weights/model.safetensors"``), the same way offline and online.

        Offline it is the copy wandb staged, or a ``file://`` reference's path. Online the
        file is downloaded once into wandb's artifact folder (``$WANDB_ARTIFACT_DIR``, by
        default ``./artifacts``); a later call finds it there.

        Example:
            >>> model.load_state_dict(torch.load(checkpoint.path("ckpt.pt")))  # doctest: +SKIP

        Raises:
            CheckpointError: no such file (the message lists those there are), or a
                reference this machine cannot open (``s3://`` offline).
        """
        if name not in self.files:
            close = difflib.get_close_matches(name, list(self.files), n=3, cutoff=0.5)
            raise CheckpointError(
                f"checkpoint {self.ref} has no file {name!r}"
                + (f"; close matches: {', '.join(close)}" if close else "")
                + f"; it holds {', '.join(sorted(self.files))} (a file is named by its path "
                  f"in the artifact: the base name given to files=, or dir/file for a folder)")
        if self.online:
            with wandb_requests(f"{self.ref} {name}"):
                return Path(self.artifact.get_entry(name).download())
        return local_path(self.files[name], f"file {name!r} of checkpoint {self.ref}")

    def download(self, root: str | os.PathLike | None = None) -> Path:
        """Every file of the checkpoint under one local folder, keeping their paths in the
        artifact; returns the folder. Online, wandb's own ``artifact.download``; offline,
        copies of the staged files and ``file://`` references.

        Args:
            root: the folder; default ``$WANDB_ARTIFACT_DIR/<name>:<version>`` (as wandb).

        Raises:
            CheckpointError: a reference this machine cannot open.
        """
        if self.online:
            with wandb_requests(str(self.ref)):
                return Path(self.artifact.download(root=None if root is None else str(root)))
        folder = Path(root) if root is not None else (
            Path(os.environ.get("WANDB_ARTIFACT_DIR") or "artifacts")
            / f"{self.ref.name}:{self.version}")
        for name in self.files:
            source, target = self.path(name), folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():  # a folder reference
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif not (target.exists() and target.stat().st_size == source.stat().st_size
                      and filecmp.cmp(source, target, shallow=False)):
                shutil.copyfile(source, target)
        return folder


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
    found = pick_checkpoint(run, ref)
    if CHECKPOINT_FILE not in found.files:
        raise CheckpointError(
            f"checkpoint {ref} has no {CHECKPOINT_FILE} (it holds {sorted(found.files)[:8]}); "
            f"every checkpoint needs one with the local step")
    state = read_checkpoint_json(found.files[CHECKPOINT_FILE], str(ref))
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
        artifact = _by_step(api, ref, entity, project) if ref.alias.startswith("step-") else None
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
            with contextlib.suppress(CheckpointError):  # a broken one is not the one asked for
                if step_alias(checkpoint_step(artifact, path)) == ref.alias:
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
        >>> ckpt.step, ckpt.state["model"]

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

    Read from local run files; online, a run with none here is looked up on W&B.

    Example:
        >>> checkpoint_steps("1a2b3c4d")  # doctest: +SKIP
        [49, 99, 149, 199]
    """
    try:
        run = read_local_run(run_id, wandb_dir or default_wandb_dir())
        steps = [c.step for c in run.valid_checkpoints]
    except RunNotFoundError:
        if mode != "online":
            raise
        if not project:
            raise RunNotFoundError(f"looking up run {run_id} on W&B needs a project; pass one")
        api = api or open_api(f"looking up run {run_id} on W&B")
        path = f"{entity_of(api, entity, run_id)}/{project}/{run_id}"
        try:
            remote = api.run(path)
            steps = []
            with wandb_requests(path):
                for artifact in remote.logged_artifacts():
                    with contextlib.suppress(CheckpointError):  # its step cannot be known
                        steps.append(checkpoint_step(artifact, path))
        except (ValueError, wandb.errors.CommError) as e:
            raise RunNotFoundError(f"run {path} not found on W&B ({e})") from None
    steps = sorted({s for s in steps if s is not None})
    if not steps:
        raise CheckpointNotFoundError(f"run {run_id} saved no checkpoints (no artifact of type "
                                      f"{CHECKPOINT_TYPE!r} holding {CHECKPOINT_FILE} with a step)")
    return steps


def save_checkpoint(run: Any, state: dict[str, Any], *, step: int,
                    files: Iterable[str | os.PathLike] = (),
                    references: Iterable[str] = (), step_metric: str | None = None,
                    row_step: int | None = None) -> Any:
    """Log a checkpoint of ``run`` at local step ``step``: the output edge.

    Args:
        run: the ``wandb.Run`` that made the checkpoint.
        state: JSON-serializable loop state, written to ``checkpoint.json`` with ``"step"``.
        step: the run's local step (the ``step=`` of its last ``log``), inclusive.
        files: files or directories to upload with the checkpoint.
        references: URIs (``file://``, ``s3://``, ``gs://``) to record by reference only,
            so W&B stores a pointer instead of the bytes.
        step_metric: the run's declared axis, when ``step`` is not its ``_step`` but the
            value of this metric (a framework's ``train/global_step``; see
            ``runchain.start``). It goes into the metadata and ``checkpoint.json``.
        row_step: on a declared axis, the run's ``_step`` of the last row trained into the
            checkpoint; readers use it to tell a checkpoint a resume in place abandoned.

    Returns:
        The logged ``wandb.Artifact``.

    Example:
        >>> save_checkpoint(run, {"model": weights}, step=39)  # doctest: +SKIP
    """
    if not is_step(step):
        raise CheckpointError(f"checkpoint step must be a non-negative integer, got {step!r}")
    if state.get("step", step) != step:
        raise CheckpointError(f"state['step']={state['step']!r} disagrees with step={step}")
    if step_metric is not None:
        state = {**state, "step_metric": step_metric}
    try:
        text = json.dumps({**state, "step": step})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint state is not JSON-serializable ({e}); convert arrays "
                              f"with .tolist() or save them as files=") from None
    metadata: dict[str, Any] = {"step": step}
    if step_metric is not None:
        metadata["step_metric"] = step_metric
        if row_step is not None:
            metadata["row_step"] = row_step
    artifact = wandb.Artifact(artifact_name(run.id), type=CHECKPOINT_TYPE, metadata=metadata)
    entries = [(str(p), Path(p).name) for p in files] + [
        (uri, PurePosixPath(urlsplit(uri).path).name) for uri in references]
    for where, name in entries:
        if name == CHECKPOINT_FILE:
            raise CheckpointError(f"{where}: {CHECKPOINT_FILE} is reserved for the state runchain "
                                  f"writes; pass its contents as state= instead")
    try:
        for path in map(Path, files):
            if path.is_dir():
                artifact.add_dir(str(path), name=path.name)
            elif path.is_file():
                artifact.add_file(str(path))
            else:
                raise CheckpointError(f"checkpoint file {path} does not exist")
        for uri in references:
            artifact.add_reference(uri)
        with artifact.new_file(CHECKPOINT_FILE) as f:  # last, like a completion marker
            f.write(text)
    except (ValueError, wandb.errors.Error) as e:  # wandb's "Cannot add the same path
        # twice", a folder reference holding checkpoint.json, s3:// without boto3, ...
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"cannot build checkpoint at step {step}: {e}") from e
    logged = LAST_LOGGED.get(run.id)  # not run.step: that waits for wandb's whole backlog
    if logged is not None and step > logged and step_metric is None:
        raise CheckpointError(
            f"checkpoint step {step} is past the last step run {run.id} logged ({logged}): "
            f"step= is the run's local step, the step= of its last runchain.log, not a training "
            f"counter such as iter_num or a framework's global step; pass the step you logged")
    logged = run.log_artifact(artifact, aliases=[step_alias(step), "latest"])
    # The run's checkpoint steps in its summary too: a W&B project listing then shows the
    # whole tree without one artifact request per run (see runchain.readers.project).
    saved = run.summary.get(CONFIG_KEY) or {}
    steps = sorted({*saved.get(SUMMARY_CHECKPOINTS, []), step})
    run.summary[CONFIG_KEY] = {**saved, SUMMARY_CHECKPOINTS: steps}
    return logged

