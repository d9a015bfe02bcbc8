"""Run-side helpers: record a run's place in the tree and log rows on the global step axis.

The wandb run stays in the caller's hands; these functions only take it as an argument.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from ..core.breadcrumbs import Breadcrumbs, breadcrumbs_for
from ..core.contract import CHECKPOINT_TYPE, CONFIG_KEY, STEP_METRIC
from ..errors import RunchainError

if TYPE_CHECKING:
    from .checkpoints import Checkpoint

# id(run) -> the local step of the last row runchain.log logged to that run in this process.
# Kept per run object (a run resumed in place is a new object, with a new count); an entry
# goes when its run is collected (weakref.finalize), so an id is never reused stale. A plain
# dict of ints: log() pays one lookup per row.
_last_logged: dict[int, int] = {}


def last_logged_step(run: Any) -> int | None:
    """The local step of the last row ``runchain.log`` logged to ``run`` in this process,
    None before its first. ``save_checkpoint`` checks its step against it.

    Example:
        >>> runchain.log(run, {"loss": 0.5}, step=39)  # doctest: +SKIP
        >>> runchain.last_logged_step(run)  # doctest: +SKIP
        39
    """
    return _last_logged.get(id(run))


def _edge_ref(run: Any, checkpoint: Checkpoint) -> str:
    """The parent checkpoint's reference, short when it lives in this run's project."""
    ref = checkpoint.ref
    same_project = ref.project in (None, run.project) and ref.entity in (None, run.entity)
    return ref.short if same_project else str(ref)


def start(run: Any, checkpoint: Checkpoint | None = None, step_metric: str | None = None) -> Breadcrumbs:
    """Record where ``run`` sits in its tree; call once, right after ``wandb.init``.

    With a checkpoint, online, this is the input edge: ``run.use_artifact(<ref>,
    type="checkpoint")``. Offline wandb refuses ``use_artifact``, so the edge lives in
    the breadcrumbs until ``runchain sync`` attaches it. Either way the breadcrumbs go to
    ``run.config["runchain"]`` and ``global_step`` becomes the step metric of every key.

    ``step_metric`` declares the run's step axis, for code whose steps are not its
    ``_step`` (a framework's ``train/global_step``, as the framework callbacks pass): its
    checkpoints' steps are that metric's values, it becomes every key's step metric, and
    a child on the same metric as its parent goes on from the parent's steps, so it is
    not offset past the cut (``contract.continues_axis``).

    If the edge cannot be recorded, the run is finished with exit code 1 (so it shows
    as failed) and the error is raised again.

    Example:
        >>> run = wandb.init(project="demo")  # doctest: +SKIP
        >>> runchain.start(run, checkpoint).global_offset
        40
    """
    try:
        if checkpoint is None:
            crumbs = breadcrumbs_for(run.id, step_metric=step_metric)
        elif checkpoint.run_id == run.id:
            # Resumed in place: same run, same axis; not an edge.
            crumbs = (Breadcrumbs.from_config(run.config.get(CONFIG_KEY))
                      or breadcrumbs_for(run.id, step_metric=step_metric))
        else:
            ref = _edge_ref(run, checkpoint)
            if checkpoint.online:
                pinned = dataclasses.replace(checkpoint.ref, alias=checkpoint.version or
                                             checkpoint.ref.alias)
                run.use_artifact(str(pinned), type=CHECKPOINT_TYPE)
            crumbs = breadcrumbs_for(run.id, checkpoint.run_id, ref, checkpoint.step,
                                     checkpoint.run_breadcrumbs, step_metric,
                                     checkpoint.state.get("step_metric"))
        run.config.update({CONFIG_KEY: crumbs.to_config()}, allow_val_change=True)
        if step_metric is None:
            run.define_metric(STEP_METRIC)
            run.define_metric("*", step_metric=STEP_METRIC)
        else:  # the declared axis; step sync gives a row without it the last value logged
            run.define_metric(step_metric)
            run.define_metric("*", step_metric=step_metric, step_sync=True)
    except BaseException as e:  # KeyboardInterrupt too: the run still shows as failed
        run.finish(exit_code=1)
        if isinstance(e, Exception) and not isinstance(e, RunchainError):  # e.g. CommError
            raise RunchainError(f"run {run.id}: recording its place in the tree failed ({e}); "
                                f"the run was finished as failed") from e
        raise
    return crumbs


def log(run: Any, metrics: dict[str, Any], *, step: int) -> None:
    """``run.log`` at local ``step`` with ``global_step = global_offset + step`` added.

    A child run's local steps start at 0. Its first ``log`` at another step warns once: the
    usual mistake is to go on with the parent's counter (``start = checkpoint.step + 1``),
    which leaves a gap of that many steps on the chain's global axis.

    Example:
        >>> runchain.log(run, {"train/loss": 0.7}, step=12)  # doctest: +SKIP
    """
    try:
        crumbs = run.config[CONFIG_KEY]
        offset = crumbs["global_offset"]
    except KeyError:
        raise RunchainError(f"run {run.id} has no runchain breadcrumbs; call "
                            f"runchain.start(run, checkpoint) right after wandb.init") from None
    run_id, key = run.id, id(run)
    if key not in _last_logged:  # this run's first row
        try:
            weakref.finalize(run, _last_logged.pop, key, None)
        except TypeError:  # a run object that takes no weak reference: its entry stays
            pass
        parent = crumbs.get("parent_run")
        if step != 0 and parent not in (None, run_id):
            warnings.warn(
                f"run {run_id} logs its first row at local step {step}, not 0: a child's local "
                f"steps start at 0 (its global offset {offset} already places it after "
                f"{parent}@{crumbs.get('parent_step')}), so its chain gets a gap of {step} steps; "
                f"count from 0, e.g. step - (checkpoint.step + 1)", stacklevel=2)
    run.log({**metrics, STEP_METRIC: offset + step}, step=step)
    _last_logged[key] = step  # save_checkpoint's guard against a training counter
