"""Breadcrumbs: what a run records under ``config["runchain"]`` about its place in the tree
(its parent, the checkpoint it started from, its global offset, root and depth), reading
and checking them, and the one rule for a child's global offset (``child_offset``), which
the run side applies when it writes breadcrumbs and ``lineage`` when it reads a tree.

Pure: no wandb calls, no file access. See ``docs/contract.md``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .contract import CONFIG_KEY, continues_axis, is_step, step_metric_of


def child_offset(parent_offset: int, parent_step: int, continues: bool) -> int:
    """The one rule for a child's global offset (the global step of its local step 0): one
    past the checkpoint's step on its parent's axis, or the parent's own offset when the
    child's step counter continues the parent's (a W&B fork, a resume in place).

    Example:
        >>> child_offset(0, 39, False), child_offset(40, 9, False), child_offset(40, 9, True)
        (40, 50, 40)
    """
    return parent_offset + (0 if continues else parent_step + 1)


@dataclasses.dataclass(frozen=True)
class Breadcrumbs:
    """What a run records under ``config["runchain"]`` about its place in the tree."""

    parent_run: str | None
    parent_checkpoint: str | None
    parent_step: int | None  # the parent's checkpoint step, on the parent's axis, inclusive
    global_offset: int  # global step of this run's local step 0
    root_run: str
    depth: int
    # the run's step axis when it is not _step: the step metric its rows and checkpoints
    # count in (a framework's train/global_step); written only when set
    step_metric: str | None = None

    def to_config(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        if self.step_metric is None:
            del config["step_metric"]  # runs on _step keep the breadcrumbs they always had
        return config

    @classmethod
    def from_config(cls, value: Any) -> Breadcrumbs | None:
        """Breadcrumbs from a run config's ``runchain`` value, or None if absent or malformed
        (``breadcrumbs_problem`` says what is wrong)."""
        if breadcrumbs_problem(value) is not None or not isinstance(value, dict):
            return None
        return cls(**{f.name: value[f.name] for f in dataclasses.fields(cls) if f.name in value})


BREADCRUMBS = f"breadcrumbs (config[{CONFIG_KEY!r}])"  # how problems with them begin
_BREADCRUMB_TYPES = {  # field -> (accepts the value, what it should be)
    "parent_run": (lambda v: v is None or (isinstance(v, str) and v != ""), "a run id or null"),
    "parent_checkpoint": (lambda v: v is None or isinstance(v, str), "a reference or null"),
    "parent_step": (lambda v: v is None or is_step(v), "a step or null"),
    "global_offset": (is_step, "a step"),
    "root_run": (lambda v: isinstance(v, str) and v != "", "a run id"),
    "depth": (is_step, "a non-negative integer"),
}


def breadcrumbs_problem(value: Any) -> str | None:
    """What is wrong with a run config's ``runchain`` value, naming the field; None when it
    is absent (a plain wandb run) or well formed.

    Example:
        >>> breadcrumbs_problem({"parent_step": "5"})
        "breadcrumbs (config['runchain']) lack parent_run, parent_checkpoint, global_offset, root_run, depth"
    """
    if value is None:
        return None
    where = BREADCRUMBS
    if not isinstance(value, dict):
        return f"{where} are a JSON {type(value).__name__}, not an object"
    missing = [name for name in _BREADCRUMB_TYPES if name not in value]
    if missing:
        return f"{where} lack {', '.join(missing)}"
    for name, (accepts, expected) in _BREADCRUMB_TYPES.items():
        if not accepts(value[name]):
            return f"{where} hold {name}={value[name]!r:.60}, expected {expected}"
    metric = value.get("step_metric")  # optional: absent on _step runs
    if metric is not None and not (isinstance(metric, str) and metric):
        return f"{where} hold step_metric={metric!r:.60}, expected a metric name or null"
    return None


def read_breadcrumbs(config: Mapping[str, Any]) -> tuple[Breadcrumbs | None, tuple[str, ...]]:
    """A run config's breadcrumbs, and the problems that made runchain ignore them: the run is
    then read as a plain wandb run (its parent from the checkpoints it used)."""
    problem = breadcrumbs_problem(config.get(CONFIG_KEY))
    if problem is not None:
        return None, (f"{problem}; read as a plain wandb run",)
    return Breadcrumbs.from_config(config.get(CONFIG_KEY)), ()


def breadcrumbs_for(run_id: str, parent_run: str | None = None,
                    parent_checkpoint: str | None = None, parent_step: int | None = None,
                    parent_breadcrumbs: Breadcrumbs | None = None,
                    step_metric: str | None = None, parent_step_metric: str | None = None
                    ) -> Breadcrumbs:
    """Breadcrumbs of run ``run_id``, started fresh or from a parent's checkpoint.

    A parent without breadcrumbs (plain wandb code) counts as a root: offset 0, depth 0.
    ``step_metric`` is the run's own axis (None: ``_step``); a child whose axis continues
    its parent's (``continues_axis``) gets the parent's offset, not one past the cut.
    ``parent_step_metric`` is the parent checkpoint's axis, where its breadcrumbs do not say.

    Example:
        >>> breadcrumbs_for("child", "root", "run-root-checkpoint:step-39", 39).global_offset
        40
    """
    if parent_run is None:
        return Breadcrumbs(None, None, None, global_offset=0, root_run=run_id, depth=0,
                           step_metric=step_metric)
    parent = parent_breadcrumbs or breadcrumbs_for(parent_run)
    axis = step_metric_of(parent.step_metric or parent_step_metric)
    continues = continues_axis(axis, step_metric_of(step_metric))
    return Breadcrumbs(
        parent_run=parent_run,
        parent_checkpoint=parent_checkpoint,
        parent_step=parent_step,
        global_offset=child_offset(parent.global_offset, parent_step, continues),
        root_run=parent.root_run,
        depth=parent.depth + 1,
        step_metric=step_metric,
    )
