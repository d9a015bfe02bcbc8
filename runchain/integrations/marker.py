"""What both framework callbacks share: the marker a checkpoint folder carries, the
checkpoint artifact, and attaching a new run to the checkpoint it resumed from.

The marker is a small JSON object the callback writes next to the framework's own
checkpoint files. It names the run, the checkpoint's step and the runchain artifact, so
a later ``resume_from_checkpoint=`` / ``ckpt_path=`` finds its parent with no flag and
no id to copy.

Steps (see ``docs/frameworks.md``): a framework run's axis is the framework's own
counter (``train/global_step``, ``trainer/global_step``), declared in its breadcrumbs. A
checkpoint's ``step`` is the last value of it trained into the checkpoint; ``row_step``
is the ``_step`` of that row, which tells a resume in place where to go on.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Any, Sequence

import runchain

MARKER_VERSION = 2  # 2: "step" on the framework's axis (1: the run's _step)
CONFIG_KEY = runchain.CONFIG_KEY  # run.config key of the breadcrumbs (docs/contract.md, section 5)


def run_wandb_dir(run: Any) -> str:
    """The ``wandb/`` folder ``run`` writes its run folder into, absolute."""
    return str(Path(run.dir).resolve().parents[1])


def last_row(run: Any) -> int | None:
    """The ``_step`` of the run's last row, None before its first."""
    return run.step - 1 if run.step > 0 else None  # wandb's counter: the next row's step


def write_marker(path: str | os.PathLike, marker: dict[str, Any]) -> None:
    """Write ``marker`` to ``path`` through a temporary file, so a reader never sees half of it.

    The temporary name is random and created exclusively (mode ``"x"``: ``O_EXCL``, which
    refuses a planted symlink), as ``runchain.atomic`` does; integrations use the public API
    alone, which does not export it."""
    path = Path(path)
    text = json.dumps(marker, indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    f = open(tmp, "x", encoding="utf-8")
    done = False
    try:
        with f:
            f.write(text)
        os.replace(tmp, path)
        done = True
    finally:  # Ctrl-C or a SIGTERM too: no partial file left
        if not done:
            tmp.unlink(missing_ok=True)


def read_marker(path: str | os.PathLike) -> dict[str, Any] | None:
    """The marker at ``path``; None when there is none.

    Raises:
        runchain.CheckpointError: the file exists but is not a runchain marker.
    """
    try:
        marker = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise runchain.CheckpointError(f"runchain marker {path} cannot be read ({e}); delete it "
                                       f"to resume this checkpoint as a new root") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("run"), str) \
            or not runchain.is_step(marker.get("step")):
        raise runchain.CheckpointError(f"runchain marker {path} holds {marker!r}, expected an "
                                       f'object with "run" and "step" (a non-negative integer); '
                                       f"delete it to resume as a root")
    return marker


def make(run: Any, *, framework: str, framework_step: int, step_metric: str,
         step: int) -> dict[str, Any]:
    """The marker of ``run``'s checkpoint: the framework saved it at ``framework_step``, and
    ``step`` is the last value of ``step_metric`` logged into it (inclusive), the run's axis."""
    ref = runchain.CheckpointRef(run.id, runchain.step_alias(step), run.entity or None,
                                 run.project or None)
    return {
        "runchain_marker": MARKER_VERSION,
        "run": run.id,
        "step": step,  # inclusive, on step_metric: where the chain cuts this run
        "row_step": last_row(run),  # the _step of the run's last row: a resume in place goes on after it
        "checkpoint": str(ref),  # what runchain.load_checkpoint(...) resolves
        "framework": framework,
        "step_metric": step_metric,
        "framework_step": framework_step,
        "wandb_dir": run_wandb_dir(run),  # where an offline parent's run files are
        "breadcrumbs": dict(run.config.get(CONFIG_KEY) or {}) or None,  # for a resume in place
    }


def save(run: Any, marker: dict[str, Any], *, paths: Sequence[str | os.PathLike],
         marker_paths: Sequence[str | os.PathLike], upload: bool) -> None:
    """Write ``marker`` to each of ``marker_paths``, then log the checkpoint artifact.

    ``paths`` (the framework's checkpoint folder or files, markers included) are uploaded
    with ``upload=True``, else stored by ``file://`` reference.
    """
    for path in marker_paths:
        write_marker(path, marker)
    state = {key: marker[key] for key in ("framework", "framework_step")}
    state["checkpoint_paths"] = [str(Path(p).resolve()) for p in paths]
    stored = ({"files": list(paths)} if upload else
              {"references": [Path(p).resolve().as_uri() for p in paths]})
    runchain.save_checkpoint(run, state, step=marker["step"], step_metric=marker["step_metric"],
                             row_step=marker["row_step"], **stored)


def attach(run: Any, marker: dict[str, Any] | None, step_metric: str, where: str,
           api: Any = None) -> None:
    """Record ``run``'s place in its tree, from the marker of the checkpoint it resumed from.

    - No marker: a root (``runchain.start(run)``), or, when the framework did resume
      (``where`` names the checkpoint), a root with a warning.
    - A marker of version 1 (its step a ``_step``): a new run is a root, with a warning, as
      its steps are on another axis than this run's; a resume in place raises
      ``CheckpointError``.
    - The marker names this run: a resume in place, no edge; the breadcrumbs stay
      (offline ones are restored from the marker), and so do the rows up to the checkpoint.
      Online, a run that W&B holds rows of past the checkpoint's row raises
      ``ResumeError`` (``runchain.in_place_init``): its new rows would be dropped.
    - Another run: that run's checkpoint is loaded (offline, from the parent's run files)
      and ``runchain.start`` records the breadcrumbs, and online the input edge.

    ``api`` is the ``wandb.Api`` an online load uses (default: a new one).

    ``runchain.start`` gets ``step_metric``: the breadcrumbs declare the framework's counter
    as the run's axis, and it becomes every key's x axis (not ``global_step``, which
    framework rows do not carry: wandb's step sync would put them all at 0). A resume in
    place that keeps its breadcrumbs declares it here.
    """
    old = marker is not None and marker.get("runchain_marker") != MARKER_VERSION
    if old and marker["run"] == run.id:
        raise runchain.CheckpointError(
            f"{where}: its runchain marker is of version {marker.get('runchain_marker')}, from "
            f"an older runchain whose steps counted rows, so run {run.id} cannot go on from it "
            f"in place on the framework's steps; resume it in a new run (without "
            f"WANDB_RUN_ID / WandbLogger(id=...)), which starts a new tree")
    if old:
        warnings.warn(f"{where}: its runchain marker is of version "
                      f"{marker.get('runchain_marker')}, from an older runchain whose steps "
                      f"counted rows; run {run.id} starts a new tree", stacklevel=3)
        marker, where = None, ""
    if marker is None:
        if where:
            warnings.warn(f"{where} has no runchain marker (it was saved without "
                          f"RunchainCallback); run {run.id} starts a new tree", stacklevel=3)
        runchain.start(run, None, step_metric)
    elif marker["run"] == run.id:
        row = marker.get("row_step")
        if runchain.is_step(row) and not getattr(run, "offline", False):
            # Online, wandb resumed the run at its last step on W&B: rows below it are dropped.
            runchain.in_place_init(run.id, row, last_row(run), fork_hint=(
                f"resume {where or 'the checkpoint'} in a new run (without WANDB_RUN_ID / "
                f"WandbLogger(id=...))"))
        crumbs = runchain.Breadcrumbs.from_config(run.config.get(CONFIG_KEY)) \
            or runchain.Breadcrumbs.from_config(marker.get("breadcrumbs"))
        if crumbs is not None:
            run.config.update({CONFIG_KEY: crumbs.to_config()}, allow_val_change=True)
        else:
            runchain.start(run, None, step_metric)
        if runchain.is_step(row) and run.step <= row:
            # wandb restarted the counter (offline it cannot know the run's last step). The
            # next row goes right after the checkpoint's, so the rows up to it are kept and
            # the readers take the rows after it as rewound; this adds no row.
            run.log({}, step=row + 1, commit=False)
    else:
        try:
            checkpoint = load(run, marker, api)
        except runchain.RunchainError as e:  # same type, with the checkpoint resumed from named
            raise type(e)(f"resuming from {where or 'a checkpoint'} (its runchain marker names "
                          f"{marker['checkpoint']}): {e}") from e
        runchain.start(run, checkpoint, step_metric)
    run.define_metric(step_metric)
    run.define_metric("*", step_metric=step_metric, step_sync=True)


def load(run: Any, marker: dict[str, Any], api: Any = None) -> runchain.Checkpoint:
    """The checkpoint ``marker`` names, resolved the way ``run`` logs: online on W&B, or
    offline from the parent's local run files (the marker's folder, else this run's)."""
    ref = runchain.parse_ref(marker["checkpoint"])
    if not getattr(run, "offline", False):
        return runchain.load_checkpoint(ref, mode="online", project=run.project,
                                        entity=run.entity or None, api=api)
    folders = list(dict.fromkeys(f for f in (marker.get("wandb_dir"), run_wandb_dir(run)) if f))
    for folder in folders[:-1]:
        try:
            return runchain.load_checkpoint(ref, mode="offline", wandb_dir=folder)
        except runchain.RunNotFoundError:
            continue  # the parent's folder moved; try where this run writes
    return runchain.load_checkpoint(ref, mode="offline", wandb_dir=folders[-1])
