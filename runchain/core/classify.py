"""Which logged artifact is a checkpoint, at which step on which axis, and which axis a run
counts on: one rule each, called by both readers (a local folder, a W&B project) and by
``checkpoint_steps``. Pure: an artifact's ``checkpoint.json`` is read only through the
``read_state`` its caller passes.

- **A checkpoint** (``classify``) is an artifact of any type whose ``checkpoint.json``
  holds its local step, or of type ``checkpoint`` whose metadata does
  (``logged_checkpoint_step``), on the axis its metadata names (``step_metric``, else
  ``_step``); or a W&B framework integration's ``model`` artifact whose step is in an alias
  or a file name (``framework_checkpoint``).
- **A run's axis** (``run_axis``): its breadcrumbs'; else its checkpoints'; else the step
  metric it declared with ``define_metric`` (for ``*``, else for most metrics), when it
  logged it; else the axis of the checkpoint it used from another run, when it logged that
  metric too; else ``_step``. A checkpoint of a run without breadcrumbs whose metadata names
  no axis is on the run's declared axis.
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
UNPLACEABLE = ("a model artifact with no step in an alias checkpoint_global_step_N or its file "
               "name step=N")


@dataclasses.dataclass(frozen=True)
class Classified:
    """What ``classify`` says of one logged artifact."""

    step: int | None  # its local step, inclusive; None: not a checkpoint runchain can place
    step_metric: str = LOCAL_STEP  # the axis ``step`` is on
    reason: str = ""  # with no step: why not
    broken: bool = False  # of type ``checkpoint`` but its step cannot be known: a problem to say


def classify(type: str, aliases: Any, metadata: Any, read_state: Callable[[], Any],
             run_axis: str = LOCAL_STEP) -> Classified:
    """The one rule for which logged artifact is a checkpoint, at which step, on which axis.

    Args:
        type, aliases, metadata: the artifact's.
        read_state: returns its validated ``checkpoint.json`` (None when it has none), or
            raises ``CheckpointError``; called only when the metadata holds no step.
        run_axis: the axis of a step whose metadata names none: the step metric the
            logging run declared with ``define_metric`` (``RunFile.declared_axis``) when it
            has no breadcrumbs, else ``_step``.

    Example:
        >>> classify("checkpoint", ["step-39"], {"step": 39}, dict)
        Classified(step=39, step_metric='_step', reason='', broken=False)
        >>> classify("model", ["latest"], {}, lambda: None).reason
        'a model artifact with no step in an alias checkpoint_global_step_N or its file name step=N'
        >>> classify("checkpoint", [], {}, lambda: None).broken
        True
    """
    framework = framework_checkpoint(type, aliases, metadata)
    if framework is not None:
        return Classified(*framework)
    if type in WANDB_OWN_TYPES:
        return Classified(None, reason=f"its type {type!r} is one wandb makes itself")
    named = metadata.get("step_metric") if isinstance(metadata, Mapping) else None
    metric = step_metric_of(named if isinstance(named, str) and named else run_axis)
    try:
        step = logged_checkpoint_step(type, metadata, read_state)
    except CheckpointError as e:
        return Classified(None, metric, str(e), broken=True)
    if step is None:
        return Classified(None, metric, UNPLACEABLE if type == MODEL_TYPE else
                          f"its type is {type!r} and it holds no {CHECKPOINT_FILE}")
    return Classified(step, metric)


def left_out(where: str, reason: str) -> str:
    """The note for a checkpoint ``classify`` found broken, as both readers say it."""
    return f"checkpoint {where} is left out: {reason}"


def unplaceable_note(name: str) -> str:
    """The note for a used model artifact no reader can place, as both readers say it."""
    return (f"it used {name}, which runchain cannot place ({UNPLACEABLE}, or a version of a "
            f"collection several runs logged); it is no edge")


def logged_checkpoint_step(type: str, metadata: Any, read_state: Callable[[], Any]) -> int | None:
    """A logged artifact's local step as a checkpoint: for type ``checkpoint``, its
    metadata's ``step``, else its ``checkpoint.json``'s; for any other type (``model``, as
    ``run.log_model`` writes, or a team's own), its ``checkpoint.json``'s; None when an
    artifact of another type holds no ``checkpoint.json``.

    An artifact is a checkpoint when it holds a ``checkpoint.json`` with a valid ``"step"``,
    whatever its type, name, aliases or metadata (the original example's runs have
    ``{"run_step": N}`` and ``latest`` only; ``log_model`` writes type ``model``): the file
    is the contract. runchain's own also carry the step in their metadata, which is taken
    first for type ``checkpoint``: it costs no read.

    Raises:
        CheckpointError: an artifact of type ``checkpoint`` whose step cannot be known (no
            ``checkpoint.json``), or any artifact whose ``checkpoint.json`` ``read_state``
            finds broken.

    Example:
        >>> logged_checkpoint_step("checkpoint", {"step": 39}, dict)
        39
        >>> logged_checkpoint_step("checkpoint", {"run_step": 9}, lambda: {"step": 9, "model": 1})
        9
    """
    step = metadata.get("step") if isinstance(metadata, Mapping) else None
    if type == CHECKPOINT_TYPE and is_step(step):
        return step
    state = read_state()  # validated by the reader (``contract.checkpoint_step``)
    if state is None and type != CHECKPOINT_TYPE:
        return None
    if state is None:
        raise CheckpointError(f"it has type {CHECKPOINT_TYPE!r} but holds no {CHECKPOINT_FILE}, "
                              f"and its metadata no step; the contract needs {CHECKPOINT_FILE} "
                              f"with the local step")
    return state["step"]


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
