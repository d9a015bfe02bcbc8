"""Which logged artifact is a checkpoint, at which step on which axis, and which axis a run
counts on: one rule each, called by both readers (a local folder, a W&B project) and by
``checkpoint_steps``. Pure: an artifact's ``checkpoint.json`` is read only through the
``read_state`` its caller passes.

- **A checkpoint** (``classify``) is an artifact of any type whose metadata holds an
  integer ``step``, or that holds one ``checkpoint.json`` (at any depth) with its local
  step, on the axis its metadata or ``checkpoint.json`` names (``step_metric``), else
  ``_step``; or a W&B framework integration's ``model`` artifact whose step is in an alias
  or a file name (``framework_checkpoint``).
- **A run's axis** (``run_axis``): its breadcrumbs'; else its checkpoints'; else the step
  metric it declared for *all* its metrics with ``define_metric`` (``*``), when it logged
  it; else the axis of the checkpoint it used from another run, when it logged that metric
  too; else ``_step``. A declaration for some metrics (``val/*`` on ``epoch``) moves
  neither the run nor its checkpoints off ``_step``. A checkpoint of a run without
  breadcrumbs whose metadata names no axis is on the run's declared ``*`` axis.
- **A declared axis never logged** (``unlogged_axis_note``): the run is read on ``_step``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence  # abc's isinstance: typing's is slower
from typing import Any

from ..errors import CheckpointError
from .breadcrumbs import Breadcrumbs
from .contract import (CHECKPOINT_FILE, CHECKPOINT_TYPE, HF_STEP_METRIC, LIGHTNING_STEP_METRIC,
                       LOCAL_STEP, MODEL_TYPE, is_step, step_metric_of)

# artifact types wandb makes itself (run.log_code, launch jobs, logged tables, the parquet
# history): never a checkpoint, so no reader asks them for checkpoint.json
WANDB_OWN_TYPES = frozenset({"code", "job", "run_table", "wandb-history"})

_HF_ALIAS_RE = re.compile(r"^checkpoint_global_step_(?P<step>[0-9]{1,18})$")
_LIGHTNING_FILE_RE = re.compile(r"(?:^|[^A-Za-z0-9_])step=(?P<step>[0-9]{1,18})(?:[^0-9]|$)")
CONTRACT_DOC = "docs/contract.md"  # where a note's fix is explained
FIX = (f'log it with metadata={{"step": N}} (N: the run\'s _step when it saved), or put a '
       f'{CHECKPOINT_FILE} holding {{"step": N}} in it; see {CONTRACT_DOC}')
UNPLACEABLE = ("it is a model artifact with no step in its metadata, a checkpoint.json, an "
               f"alias checkpoint_global_step_N or its file name step=N; {FIX}")
PROPER_TYPES = (CHECKPOINT_TYPE, MODEL_TYPE)  # what a checkpoint is logged as, by name
SHARED_COLLECTION = ("it is a version of a collection several runs logged, which W&B numbers "
                     "across them; use it by an alias, which names one run's version")
NOT_HERE = ("no run read here logged it; read it with the run that logged it (its folder or "
            "W&B project)")

@dataclasses.dataclass(frozen=True)
class Classified:
    """What ``classify`` says of one logged artifact."""

    step: int | None  # its local step, inclusive; None: not a checkpoint runchain can place
    step_metric: str = LOCAL_STEP  # the axis ``step`` is on
    reason: str = ""  # with no step: why not
    broken: bool = False  # meant as a checkpoint, but its step cannot be known: a problem to say
    # a checkpoint by its type (checkpoint, model) or metadata step; False: an artifact of
    # another type that is one only by its checkpoint.json, a parent only when the run used
    # no checkpoint proper (``parents.parent_of``)
    proper: bool = True


def classify(type: str, aliases: Any, metadata: Any, read_state: Callable[[], Any],
             run_axis: str = LOCAL_STEP) -> Classified:
    """The one rule for which logged artifact is a checkpoint, at which step, on which axis.

    - Of any type, a metadata ``step`` (an integer) is its step; else its one
      ``checkpoint.json``'s, at any depth in it; else a framework integration's alias or
      file name (``framework_checkpoint``).
    - The axis is the ``step_metric`` its metadata (or ``checkpoint.json``) names, else
      ``run_axis``.
    - An artifact of type ``checkpoint`` whose step cannot be known, or any artifact with
      several ``checkpoint.json`` files or a broken one, is ``broken``: a note says so.
    - Without a step, ``reason`` says why, and what to do.

    Args:
        type, aliases, metadata: the artifact's.
        read_state: returns its validated ``checkpoint.json`` (None when it has none), or
            raises ``CheckpointError`` (a broken one, or several); called only when the
            metadata holds no step.
        run_axis: the axis of a step that names none: the step metric the logging run
            declared for ``*`` with ``define_metric`` (``RunFile.declared_axis``) when it has
            no breadcrumbs, else ``_step``.

    Example:
        >>> classify("checkpoint", ["step-39"], {"step": 39}, dict)
        Classified(step=39, step_metric='_step', reason='', broken=False, proper=True)
        >>> classify("model", ["v0"], {"step": 50, "iter_num": 50}, dict).step
        50
        >>> classify("checkpoint", [], {"iter_num": 50}, lambda: None).broken
        True
    """
    if type in WANDB_OWN_TYPES:
        return Classified(None, reason=f"its type {type!r} is one wandb makes itself")
    meta = metadata if isinstance(metadata, Mapping) else {}
    named = meta.get("step_metric") if isinstance(meta.get("step_metric"), str) else None
    if is_step(meta.get("step")):
        return Classified(meta["step"], step_metric_of(named if named else run_axis))
    framework = framework_checkpoint(type, aliases, metadata)
    if framework is not None:  # no read: its step is in an alias or a file name
        return Classified(*framework)
    try:
        state = read_state()  # validated by the reader (``contract.checkpoint_step``)
    except CheckpointError as e:
        return Classified(None, step_metric_of(run_axis), str(e), broken=True)
    if state is not None:
        own = state.get("step_metric")  # checkpoint.json may name the axis too
        named = own if isinstance(own, str) and own else named
        return Classified(state["step"], step_metric_of(named if named else run_axis),
                          proper=type in PROPER_TYPES)
    if type == CHECKPOINT_TYPE:
        keys = f" (it has {', '.join(sorted(map(str, meta))[:6])})" if meta else ""
        return Classified(None, reason=f"it has type {CHECKPOINT_TYPE!r}, but neither its "
                          f"metadata{keys} nor a {CHECKPOINT_FILE} holds its step; {FIX}",
                          broken=True)
    return Classified(None, reason=UNPLACEABLE if type == MODEL_TYPE else
                      f"its type is {type!r} and it holds no {CHECKPOINT_FILE}")


def left_out(where: str, reason: str) -> str:
    """The note for a checkpoint ``classify`` found broken, as both readers say it."""
    return f"checkpoint {where} is left out: {reason}"


def left_out_notes(broken: Sequence[tuple[str, str, str]], of: str = "") -> list[str]:
    """The notes on one run's broken checkpoints, ``(name, version, reason)`` in logging
    order: one line per collection and reason, however many versions it has ("31 versions
    of ckpt-X are left out: ..."). ``of`` follows the name (`` of run R``); a reason naming
    its version (``name:vN`` + ``of``) is grouped under the collection's name.

    Example:
        >>> left_out_notes([("ck", "v0", "no step"), ("ck", "v1", "no step")])
        ['2 versions of ck (v0, v1) are left out: no step']
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for name, version, reason in broken:
        generic = reason.replace(f"{name}:{version}{of}", f"{name}{of}")
        groups.setdefault((name, generic), []).append(version)
    notes = []
    for (name, reason), versions in groups.items():
        if len(versions) == 1:
            notes.append(left_out(f"{name}:{versions[0]}{of}", reason))
            continue
        shown = ", ".join(versions if len(versions) <= 4 else [*versions[:3], "...", versions[-1]])
        notes.append(f"{len(versions)} versions of {name}{of} ({shown}) are left out: {reason}")
    return notes


def unplaceable_note(name: str, why: str = UNPLACEABLE) -> str:
    """The note for an artifact a run used that no reader can place, as both readers say
    it; ``why`` (a ``Classified.reason``, ``NOT_HERE``, ``SHARED_COLLECTION``) ends with
    what to do."""
    return f"it used {name}, which runchain cannot place, so it is no edge: {why}"


def framework_checkpoint(type: str, aliases: Any, metadata: Any) -> tuple[int, str] | None:
    """A W&B framework integration's checkpoint: an artifact of type ``model``
    (``model-<run id>``) whose step is in an alias or a file name. Returns (the last step of
    the run's axis trained into it, inclusive; that axis), or None.

    - Hugging Face ``WandbCallback`` (``WANDB_LOG_MODEL=checkpoint``): the alias
      ``checkpoint_global_step_N`` on ``train/global_step``; the Trainer logs step N's row
      before it saves, so N is kept.
    - Lightning ``WandbLogger(log_model=...)``: ``step=N`` in the metadata's
      ``original_filename`` on ``trainer/global_step``. Lightning logs the batch that makes
      step N at ``trainer/global_step`` N - 1, so the checkpoint holds rows up to N - 1
      (``step=0`` holds none: no cut).

    Example:
        >>> framework_checkpoint("model", ["checkpoint_global_step_20", "latest"], {})
        (20, 'train/global_step')
        >>> framework_checkpoint("model", ["latest"], {"original_filename": "epoch=0-step=20.ckpt"})
        (19, 'trainer/global_step')
    """
    if type != MODEL_TYPE:
        return None
    for alias in aliases if isinstance(aliases, (list, tuple)) else ():
        match = _HF_ALIAS_RE.match(alias) if isinstance(alias, str) else None
        if match:
            return int(match["step"]), HF_STEP_METRIC
    filename = metadata.get("original_filename") if isinstance(metadata, Mapping) else None
    match = _LIGHTNING_FILE_RE.search(filename) if isinstance(filename, str) else None
    if match and int(match["step"]) > 0:
        return int(match["step"]) - 1, LIGHTNING_STEP_METRIC
    return None


def run_axis(crumbs: Breadcrumbs | None, checkpoint_axes: Sequence[str],
             used_axes: Sequence[str], logs: Callable[[str], bool],
             declared: str | None = None) -> str:
    """The one rule for the axis a run's steps count on.

    Args:
        crumbs: the run's breadcrumbs, None for a plain wandb run.
        checkpoint_axes: the axes of the checkpoints it logged, in logging order, a
            ``checkpoint`` after a ``model`` (``classify``).
        used_axes: the axes of the checkpoints it used from other runs.
        logs: whether the run logged a metric (asked of a used checkpoint's axis and of
            ``declared``).
        declared: the step metric the run declared with ``define_metric``
            (``RunFile.declared_axis``; online, its config's ``_wandb.m``).

    Returns:
        Its breadcrumbs' axis (``_step`` unless they name a step metric); else, without
        breadcrumbs, the last declared axis of its checkpoints; else the step metric it
        declared with ``define_metric``, when it logged it (W&B's charts use that axis);
        else the last declared axis of a checkpoint it used, when it logged that metric too
        (a framework run resumed from a ``model`` artifact goes on with the framework's
        step); else ``_step``.

    Example:
        >>> run_axis(None, [], ["train/global_step"], lambda metric: True)
        'train/global_step'
        >>> run_axis(None, ["_step"], ["train/global_step"], lambda metric: False)
        '_step'
    """
    if crumbs is not None:
        return step_metric_of(crumbs.step_metric)
    saved = [axis for axis in checkpoint_axes if axis != LOCAL_STEP]
    if saved:
        return saved[-1]
    if declared and declared != LOCAL_STEP and logs(declared):
        return declared
    used = [axis for axis in used_axes if axis != LOCAL_STEP]
    return used[-1] if used and logs(used[-1]) else LOCAL_STEP


def unlogged_axis_note(metric: str) -> str:
    """The one fallback for a run whose breadcrumbs or checkpoints put its steps on
    ``metric`` but that logged no value of it other than 0: it is read on ``_step``, and the
    run's notes say so in these words."""
    return (f"its breadcrumbs or checkpoints put its steps on {metric}, but it logged no value "
            f"of {metric} other than 0 (wandb's step sync writes 0 into rows logged before "
            f"any); read on _step")
