"""Save checkpoints (the output edge), and ``Checkpoint``: one resolved, with its files.

``save_checkpoint`` logs artifact ``run-<id>-checkpoint`` with aliases
``step-<step>`` and ``latest``, metadata ``{"step": step}`` and ``checkpoint.json``.
``load_checkpoint`` (``runchain.readers.resolve``) gives a ``Checkpoint`` back from a reference.

The run side: this module loads no reader, cache or renderer.
"""

from __future__ import annotations

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

from ..core.breadcrumbs import Breadcrumbs
from ..core.contract import (CHECKPOINT_FILE, CHECKPOINT_TYPE, CONFIG_KEY, SUMMARY_CHECKPOINTS,
                             CheckpointRef, artifact_name, is_step, step_alias)
from ..errors import CheckpointError
from ..wandb_io.api import wandb_requests
from ..wandb_io.artifact_files import check_entry_names, local_path
from .tracking import last_logged_step


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
        check_entry_names([name], f"checkpoint {self.ref}")  # online, wandb writes it there
        if self.online:
            with wandb_requests(f"{self.ref} {name}"):
                return Path(self.artifact.get_entry(name).download())
        return local_path(self.files[name], f"file {name!r} of checkpoint {self.ref}")

    def download(self, root: str | os.PathLike | None = None) -> Path:
        """Every file of the checkpoint under one local folder, keeping their paths in the
        artifact; returns the folder. Online, wandb's own ``artifact.download``; offline,
        copies of the staged files and ``file://`` references.

        Every file name is checked before anything is written: a name that leaves the
        folder (``../x``, ``/x``, see ``artifact_files.leaves_folder``) refuses the whole
        download. A folder that already holds symlinks is written through them: it is yours.

        Args:
            root: the folder; default ``$WANDB_ARTIFACT_DIR/<name>:<version>`` (as wandb).

        Raises:
            CheckpointError: a reference this machine cannot open, or a file name that
                leaves the folder (nothing is written then).
        """
        where = f"checkpoint {self.ref}"
        check_entry_names(self.files, where)
        if self.online:
            with wandb_requests(str(self.ref)):
                check_entry_names(self.artifact.manifest.entries, where)  # what wandb writes
                return Path(self.artifact.download(root=None if root is None else str(root)))
        folder = Path(root) if root is not None else (
            Path(os.environ.get("WANDB_ARTIFACT_DIR") or "artifacts")
            / f"{self.ref.name}:{self.version}")
        sources = {name: self.path(name) for name in self.files}  # every error before a write
        for name, source in sources.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():  # a folder reference
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif not (target.exists() and target.stat().st_size == source.stat().st_size
                      and filecmp.cmp(source, target, shallow=False)):
                shutil.copyfile(source, target)
        return folder


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
    logged = last_logged_step(run)  # not run.step: that waits for wandb's whole backlog
    if logged is not None and step > logged and step_metric is None:
        raise CheckpointError(
            f"checkpoint step {step} is past the last step run {run.id} logged ({logged}): "
            f"step= is the run's local step, the step= of its last runchain.log, not a training "
            f"counter such as iter_num or a framework's global step; pass the step you logged")
    logged = run.log_artifact(artifact, aliases=[step_alias(step), "latest"])
    # The run's checkpoint steps in its summary too: a W&B project listing then shows the
    # whole tree without one artifact request per run (see runchain.readers.from_project).
    saved = run.summary.get(CONFIG_KEY) or {}
    steps = sorted({*saved.get(SUMMARY_CHECKPOINTS, []), step})
    run.summary[CONFIG_KEY] = {**saved, SUMMARY_CHECKPOINTS: steps}
    return logged

