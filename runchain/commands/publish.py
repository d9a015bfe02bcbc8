"""``runchain publish``: a chain as one W&B run, so the W&B UI shows it truncated and stitched.

The run (``job_type="chain-view"``, named ``chain-<leaf>``, tagged with its root and
leaf) logs the stitched history at ``step=global_step``, each row with ``global_step``,
``run_id``, the run's local ``step`` and every metric, and a ``wandb.Table`` of the
segments. It works on any W&B server, self-managed ones included, where W&B's own run
forking may be missing; offline it writes an offline run like any other.

Its config holds ``runchain_chain`` (leaf, root, runs, cuts), so the readers leave it out
of the tree: it is a view of runs, not one.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Sequence

import wandb
from tqdm import tqdm

from ..core.contract import CHAIN_VIEW_KEY, STEP_METRIC
from ..core.source import Source
from ..core.stitch import metric_columns, stitched_names
from ..errors import RunchainError
from ..renderers.formats import global_span
from ..wandb_io.mode import resolve_mode

JOB_TYPE = "chain-view"
SEGMENT_COLUMNS = ["run_id", "name", "state", "kept_first_step", "kept_last_step",
                   "global_first", "global_last"]


def segment_rows(source: Source, leaf: str) -> list[list[Any]]:
    """One row per segment of the chain ending at ``leaf``, as in ``SEGMENT_COLUMNS``."""
    rows = []
    for seg in source.chain(leaf):
        info = source.tree.nodes[seg.run_id].info
        span = global_span(source.tree, seg.run_id, seg)
        rows.append([seg.run_id, info.name or "", info.state, span.first, span.last,
                     span.global_first, span.global_last])
    return rows


def publish(source: Source, leaf: str, mode: str = "auto", project: str | None = None,
            entity: str | None = None, keys: Sequence[str] | None = None,
            verbose: bool = False) -> Any:
    """Log the chain ending at ``leaf`` as a new W&B run; returns the finished run.

    Args:
        source: from ``open_source``.
        leaf: the chain's last run.
        mode: "auto", "online" or "offline", as for training runs (``resolve_mode``).
        project: W&B project of the new run; default the leaf's project.
        entity: W&B entity of the new run; default wandb's default.
        keys: metrics to log; default all.
        verbose: let wandb print its banner and summary; else only a progress bar.

    Raises:
        RunNotFoundError: ``leaf`` is not in the source.
        CredentialsError, ModeError: see ``resolve_mode``.
    """
    leaf = source.resolve(leaf)  # an id, or a display name only it has
    segments = source.chain(leaf)
    columns = source.history(leaf, keys=keys)
    mode = resolve_mode(mode)
    root = segments[0].run_id
    names = stitched_names(columns)  # runchain/<name> where a run logged one of them
    metrics = metric_columns(columns)
    config = {CHAIN_VIEW_KEY: {"leaf": leaf, "root": root, "source": source.where,
                                 "runs": [s.run_id for s in segments],
                                 "cuts": [s.last_step for s in segments]}}
    try:
        run = wandb.init(project=project or source.tree.nodes[leaf].info.project, entity=entity,
                         job_type=JOB_TYPE, name=f"chain-{leaf}", tags=[f"root:{root}", f"leaf:{leaf}"],
                         config=config, mode=mode,
                         settings=wandb.Settings(silent=not verbose, console="off"))
    except wandb.errors.Error as e:
        raise RunchainError(f"cannot start the chain-view run for {leaf}: {e}") from e
    try:
        run.define_metric(names[STEP_METRIC])
        run.define_metric("*", step_metric=names[STEP_METRIC])
        global_steps = columns[names["global_step"]].tolist()
        values = {k: columns[k].tolist() for k in metrics}
        run_ids, steps = columns[names["run_id"]].tolist(), columns[names["step"]].tolist()
        table = wandb.Table(columns=SEGMENT_COLUMNS, data=segment_rows(source, leaf))
        for i, global_step in enumerate(tqdm(global_steps, desc=f"publishing chain-{leaf}",
                                             unit="row", file=sys.stderr, disable=None,
                                             leave=False)):
            row = {k: v[i] for k, v in values.items() if not math.isnan(v[i])}
            row.update({names[STEP_METRIC]: global_step, names["run_id"]: run_ids[i],
                        names["step"]: steps[i]})
            if i == len(global_steps) - 1:
                row["segments"] = table  # on the last row, so no row lacks global_step
            run.log(row, step=global_step)
        if not global_steps:
            run.log({"segments": table})
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return run
