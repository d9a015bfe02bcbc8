"""Find runs and their checkpoints in a local ``wandb/`` directory (offline or synced runs).

The artifact records of a run file name each artifact, its aliases, its metadata and a
manifest of staged files or references; ``merge_segments`` keeps those that are
checkpoints (``classify``), or that a reference could name. Offline, wandb refuses
``use_artifact``, so ``resolve`` resolves a reference from them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any

from ..core.breadcrumbs import Breadcrumbs
from ..core.classify import classify, left_out_notes
from ..core.contract import (CHECKPOINT_TYPE, CONFIG_KEY, LOCAL_STEP, MODEL_TYPE, artifact_name,
                             checkpoint_file, checkpoint_json_paths, checkpoint_label, is_step)
from ..errors import RunNotFoundError
from ..wandb_io.artifact_files import read_checkpoint_json
from .record_log import RecordScan, RunFile, iter_records, read_run_file, record_kind

OFFLINE_PREFIX = "offline-"  # wandb names offline run folders offline-run-*, online ones run-*
_FOLDER_RE = re.compile(rf"^(?:{OFFLINE_PREFIX})?run-(?P<stamp>\d{{8}}_\d{{6}})-(?P<id>.+?)"
                        rf"(?:-(?P<n>\d+))?$")


def logged_online(run_file: str | os.PathLike) -> bool:
    """Whether wandb wrote ``run_file`` online (its folder is ``run-*``, not
    ``offline-run-*``). Online, wandb sends ``log_artifact`` to W&B as a request and writes
    no artifact record, so such a file does not hold the checkpoints its run logged.

    Example:
        >>> logged_online("wandb/run-20261207_101010-a1/run-a1.wandb")
        True
    """
    return not Path(run_file).parent.name.startswith(OFFLINE_PREFIX)


def default_wandb_dir() -> Path:
    """``$WANDB_DIR/wandb`` when ``WANDB_DIR`` is set, else ``./wandb``."""
    return Path(os.environ.get("WANDB_DIR") or ".") / "wandb"


def run_folders(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Map run id -> its run files under ``root``, oldest segment first.

    A run resumed in place has several folders (``...-<id>``, ``...-<id>-1``).
    """
    return scan_run_folders(root)[0]


def scan_run_folders(root: str | os.PathLike) -> tuple[dict[str, list[Path]], list[Path]]:
    """``run_folders(root)``, and the run folders holding no run file (a ``wandb.init`` that
    failed before writing one, or a folder moved away while it was listed)."""
    found: dict[str, list[tuple[str, int, Path]]] = {}
    empty: list[Path] = []
    root = Path(root)
    try:
        folders = list(root.iterdir()) if root.is_dir() else []
    except FileNotFoundError:  # the folder itself went away: it holds no runs now
        folders = []
    for folder in folders:
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
        else:
            empty.append(folder)
    return {rid: [p for *_, p in sorted(v)] for rid, v in found.items()}, sorted(empty)


def gone_note(path: str | os.PathLike) -> str:
    """The note on a run file (or folder) that vanished while it was read (``wandb sync
    --clean``, a cleanup script): its run (or this segment of it) is left out."""
    m = _FOLDER_RE.match(Path(path).name)
    run_id = m["id"] if m else Path(path).name.removeprefix("run-").removesuffix(".wandb")
    what = "run file" if str(path).endswith(".wandb") else "run folder"
    return (f"run {run_id}: its {what} {path} vanished while it was read (moved or removed, "
            f"e.g. by wandb sync --clean); left out. Read again to see the run where it went")


# what a wandb.init that fails (an unreachable server) leaves in its run file: a run record,
# then at once its summary and exit. A run that started writes its telemetry,
# environment, files and stats records first, even if it logs no row.
_UNSTARTED_KINDS = {"header", "run", "summary", "exit", None}


def never_started(run: RunFile) -> bool:
    """Whether a run file holds no run: a run record that ended right after it, with none
    of the records a started run writes (what a failed online ``wandb.init`` leaves). A file
    with no run record yet (empty, or cut in its header) stays: it may be a run in its first
    seconds, and ``run_state`` says running, then crashed once it is stale. So do a run
    record with no exit yet, and a run that finished having logged nothing.
    """
    if run.run_id is None:  # just created, or damaged: shown as it is, with its warning
        return False
    if run.exit_code is None or run.last_step is not None or run.artifacts or run.used:
        return False
    try:
        with open(run.path, "rb") as f:
            return all(record_kind(raw) in _UNSTARTED_KINDS
                       for raw in iter_records(f, run.path, RecordScan()))
    except (OSError, ValueError, IndexError):  # unreadable now: read it as before
        return False


def empty_note(folder: str | os.PathLike) -> str:
    """The note on a run folder holding no run (``scan_run_folders``, ``never_started``)."""
    return (f"run folder {folder} holds no run (a wandb.init that never started?); left out")


@dataclasses.dataclass
class LocalCheckpoint:
    name: str
    type: str
    version: str  # "v0", "v1", ... per name in logging order, as W&B numbers them on upload
    aliases: list[str]
    metadata: dict[str, Any]
    files: dict[str, str]  # path in the artifact -> staged local path or reference URI
    step: int | None = None  # its local step if it is a checkpoint (classify.classify)
    segment: int = 0  # which of the run's files logged it, oldest first
    step_metric: str = LOCAL_STEP  # the axis ``step`` is on (a framework's global step)
    proper: bool = True  # a checkpoint by type or metadata step, not only by its checkpoint.json
    reason: str = ""  # with no step: why it is no checkpoint (classify.classify)

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
        """The checkpoints that count (``classify.classify``: of type ``checkpoint``, and a
        framework integration's ``model`` artifacts), in logging order; at one step, a
        ``checkpoint`` comes after (and so wins over) a ``model``."""
        found = [c for c in self.checkpoints if c.step is not None]
        return sorted(found, key=lambda c: c.type == CHECKPOINT_TYPE)

    @property
    def breadcrumbs(self) -> Breadcrumbs | None:
        return Breadcrumbs.from_config(self.config.get(CONFIG_KEY))

    @property
    def checkpoints_on_wandb(self) -> bool:
        """Whether W&B holds checkpoints of the run that its files do not: a file of it was
        logged online (``logged_online``) and records no checkpoint, such as the online
        part of a run resumed in place after an offline one."""
        recorded = {c.segment for c in self.checkpoints}
        return any(logged_online(p) and i not in recorded for i, p in enumerate(self.files))


def online_note(runs: list[LocalRun]) -> str:
    """The one note on a folder's runs whose checkpoints only W&B holds
    (``LocalRun.checkpoints_on_wandb``), naming the project to read instead."""
    ids = [r.run_id for r in runs]
    where = sorted({f"{r.entity}/{r.project}" if r.entity else r.project for r in runs
                    if r.project} or {"ENTITY/PROJECT"})
    shown = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
    return (f"{len(ids)} run(s) here were logged online ({shown}): W&B holds the checkpoints "
            f"they logged, which their run files do not record, so this tree shows none and "
            f"places their children only by breadcrumbs or fork_from; read them from W&B with "
            + " or ".join(f"`runchain tree --project {w}`" for w in where))


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
    for seg in segments:
        config.update(seg.config)
    # a plain run's checkpoints count on the axis it declared with define_metric
    declared = [seg.declared_axis for seg in segments if seg.declared_axis]
    axis = declared[-1] if declared and CONFIG_KEY not in config else LOCAL_STEP
    broken: list[tuple[str, str, str]] = []
    for i, seg in enumerate(segments):
        for a in seg.artifacts:
            if (a.type not in (CHECKPOINT_TYPE, MODEL_TYPE) and not checkpoint_json_paths(a.files)
                    and not (isinstance(a.metadata, dict) and is_step(a.metadata.get("step"))) and a.name != artifact_name(run_id)):
                continue  # neither a checkpoint nor what a reference to one could name
            if (a.name, a.digest) not in versions:
                versions[a.name, a.digest] = f"v{counts.get(a.name, 0)}"
                counts[a.name] = counts.get(a.name, 0) + 1
            version = versions[a.name, a.digest]
            found = classify(a.type, a.aliases, a.metadata,
                             lambda: _state(a.files, f"{a.name}:{version} of run {run_id}"),
                             axis)
            if found.broken:
                broken.append((a.name, version, found.reason))
            checkpoints.append(LocalCheckpoint(a.name, a.type, version, a.aliases, a.metadata,
                                               a.files, found.step, i, found.step_metric,
                                               found.proper, found.reason))
    problems += left_out_notes(broken, of=f" of run {run_id}")
    entity = next((s.entity for s in segments if s.entity), None)
    return LocalRun(run_id, segments[0].project, entity, config, checkpoints, files,
                    incomplete=not all(s.complete for s in segments), problems=problems)


def _state(files: dict[str, str], where: str) -> dict[str, Any] | None:
    """An artifact's one ``checkpoint.json`` (``contract.checkpoint_file``), read and
    validated; None when it has none.

    Raises:
        CheckpointError: it is broken, or there are several.
    """
    path = checkpoint_file(files)
    return read_checkpoint_json(files[path], where) if path else None
