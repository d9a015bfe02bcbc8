"""What the renderers show of a tree and its chains, computed once: a run's global span, the
tree's lines, the JSON of runs and chains, a chain's figures per metric, the stitched
history as CSV rows, and the lines of a sync plan.

``cli.py`` parses options and prints these; the report and ``publish`` take their spans
from here too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from typing import IO, Any, Iterator, Mapping, Sequence

import numpy as np

from ..core.contract import LOCAL_STEP
from ..core.lineage import (RunInfo, RunNode, Segment, Tree, config_diff, first_local_step,
                            kept_last_step, leaves)
from ..core.stitch import metric_columns, stitched_names

CSV_BATCH = 8192  # rows turned into Python objects at a time


@dataclasses.dataclass(frozen=True)
class Span:
    """The local steps a run (or a chain's segment of it) keeps, both bounds inclusive, and
    where they sit on the global step axis. ``last`` is None when it has no rows."""

    first: int
    last: int | None
    global_first: int
    global_last: int | None


def global_span(tree: Tree, run_id: str, segment: Segment | None = None) -> Span:
    """The one rule for a run's span: from its first local step (``first_local_step``) to its
    last (of a chain's ``segment``: the step it is cut at), placed at its ``global_offset``.

    Example (``tree`` as in ``lineage``'s docstring):
        >>> global_span(tree, "b")  # doctest: +SKIP
        Span(first=0, last=50, global_first=40, global_last=90)
    """
    node = tree.nodes[run_id]
    first = first_local_step(node)
    last = node.info.last_step if segment is None else kept_last_step(tree, segment)
    offset = node.global_offset
    return Span(first, last, offset + first, None if last is None else offset + last)


def step_range(first: int, last: int | None, dash: str = "-") -> str:
    """``first-last`` (inclusive), or ``no rows``."""
    return "no rows" if last is None else f"{first}{dash}{last}"


def visible(text: str) -> str:
    """``text`` with every control character shown as its escape, as ``repr`` shows it:
    ``\\n``, ``\\x1b``, ``\\u202e``. Run data (names, config keys and values, projects, ids
    from folder names, metric names) reaches the terminal only through this, so it cannot
    move the cursor, clear the screen, set the window title, forge a line or reorder text.

    Example:
        >>> print(visible("lr\\x1b[2J\\r\\nroot"))
        lr\\x1b[2J\\r\\nroot
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


CONFIG_KEYS_SHOWN = 6  # differing config keys on a tree line; the rest as "+N more"
INDENT_CAP = 20  # a deeper run is indented this deep and marked with its depth


def indent(depth: int) -> str:
    """A tree line's indent: two spaces per level up to ``INDENT_CAP``, then a depth marker,
    so a 10,000-deep chain prints lines of about the same width, not depth squared bytes.

    Example:
        >>> indent(2), indent(25).count(" "), indent(25).endswith("\u2026(depth 25) ")
        ('    ', 42, True)
    """
    if depth <= INDENT_CAP:
        return "  " * depth
    return "  " * INDENT_CAP + f"\u2026(depth {depth}) "


def _short(value: object) -> str:
    """A config value for one line of the tree."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 24 else text[:23] + "\u2026"


def tree_lines(tree: Tree) -> Iterator[str]:
    """One line per run, depth-first from the roots, indented by depth."""
    nodes = list(tree.nodes.values())
    projects = {node.info.project for node in nodes}
    for node in nodes:
        info = node.info
        span = global_span(tree, info.id)
        origin = (f"{'forked ' if node.fork else ''}from {node.parent_run}@{node.parent_step}"
                  if node.parent_run else "root")
        ckpts = checkpoint_steps(info)
        name = f" {info.name!r}" if info.name else ""
        if len(projects) > 1:  # a folder of several projects: say whose each run is
            name += f"  project {info.project}"
        leaf = "  leaf" if not node.children else ""
        diff = list(config_diff(tree, info.id).items())
        differs = "".join(f"  {k}={_short(v)}" for k, v in diff[:CONFIG_KEYS_SHOWN])
        if len(diff) > CONFIG_KEYS_SHOWN:
            differs += f"  +{len(diff) - CONFIG_KEYS_SHOWN} more"
        axis = "" if info.step_metric == LOCAL_STEP else f" ({info.step_metric})"
        yield (f"{indent(node.depth)}{info.id}{name}  {info.state}  {origin}  "
               f"steps{axis} {step_range(span.first, span.last)}  "
               f"global {step_range(span.global_first, span.global_last)}  "
               f"checkpoints {ckpts}{leaf}{differs}")


def checkpoint_steps(info: RunInfo, sep: str = ",") -> str:
    """A run's checkpoint steps, then those saved in rows a later rewind or resume in place
    replaced: ``9,49  abandoned 19,29``."""
    ckpts = sep.join(str(c.step) for c in info.checkpoints if c.timeline is None) or "-"
    abandoned = [str(c.step) for c in info.checkpoints if c.timeline is not None]
    return ckpts + (f"  abandoned {sep.join(abandoned)}" if abandoned else "")


def run_json(tree: Tree, node: RunNode, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run of the tree as ``runchain tree --json`` lists it; ``summary``: the last value of
    each metric it logged (``Source.summaries``)."""
    info = node.info
    return {"id": info.id, "project": info.project, "name": info.name, "state": info.state,
            "parent_run": node.parent_run, "parent_step": node.parent_step, "fork": node.fork,
            "global_offset": node.global_offset, "first_step": info.first_step,
            "last_step": info.last_step, "step_metric": info.step_metric,
            "depth": node.depth, "children": list(node.children), "leaf": not node.children,
            "config": dict(info.config), "config_differs": config_diff(tree, info.id),
            "checkpoints": [{"step": c.step, "alias": c.alias, "version": c.version,
                             "abandoned": c.timeline is not None}
                            for c in info.checkpoints],
            "summary": dict(summary or {})}


def leaf_lines(tree: Tree) -> Iterator[str]:
    """Every leaf with its depth and global range: the chains there are to show."""
    for leaf in leaves(tree):
        node = tree.nodes[leaf]
        span = global_span(tree, leaf)
        yield (f"{leaf}  depth {node.depth}  global "
               f"{step_range(span.global_first, span.global_last)}"
               + (f"  {node.info.name!r}" if node.info.name else ""))


def chain_rows(tree: Tree, segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """One row per segment of a chain: its run, axis, and kept local and global steps."""
    rows = []
    for seg in segments:
        span = global_span(tree, seg.run_id, seg)
        rows.append({"run_id": seg.run_id, "step_metric": seg.step_metric,
                     "first_step": span.first, "last_step": span.last,
                     "global_first": span.global_first, "global_last": span.global_last})
    return rows


FIGURES = ("first", "last", "min", "max")


def figures(values: np.ndarray) -> dict[str, float | None]:
    """The first, last, min and max of the values a run logged (NaN: a row without it),
    exactly as logged; all None where it logged none."""
    logged = values[~np.isnan(values)]
    if not logged.size:
        return dict.fromkeys(FIGURES)
    return {"first": logged[0].item(), "last": logged[-1].item(),
            "min": logged.min().item(), "max": logged.max().item()}


def chain_figures(columns: Mapping[str, np.ndarray], segments: Sequence[Segment]
                  ) -> tuple[dict[str, dict[str, dict]], dict[str, dict]]:
    """Each metric's ``figures`` of a stitched history: per segment (run id -> metric ->
    figures) and for the whole chain (metric -> figures)."""
    run_ids = columns[stitched_names(columns)["run_id"]]
    keys = metric_columns(columns)
    values = {k: np.asarray(columns[k], np.float64) for k in keys}
    per_run = {}
    for seg in segments:
        rows = run_ids == seg.run_id
        per_run[seg.run_id] = {k: figures(values[k][rows]) for k in keys}
    return per_run, {k: figures(values[k]) for k in keys}


def chain_json(tree: Tree, segments: Sequence[Segment],
               columns: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """A chain as ``runchain chain --json`` prints it: its leaf, runs and segments, and, with
    the stitched ``columns`` of the metrics asked for, their figures per segment and whole."""
    rows = chain_rows(tree, segments)
    per_run, whole = chain_figures(columns, segments) if columns is not None else ({}, {})
    for row in rows:
        row["metrics"] = per_run.get(row["run_id"], {})
    return {"leaf": segments[-1].run_id, "runs": [s.run_id for s in segments],
            "segments": rows, "metrics": whole}


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def figure_lines(chain: Mapping[str, Any]) -> Iterator[str]:
    """A table per metric of ``chain_json``: the first, last, min and max value of each
    segment's run, then of the whole chain."""
    names = [row["run_id"] for row in chain["segments"]] + ["chain"]
    width = max(map(len, names))
    for key, whole in chain["metrics"].items():
        yield ""
        yield f"{key}".ljust(width + 2) + "".join(f"  {f:>12}" for f in FIGURES)
        for name, got in [(row["run_id"], row["metrics"][key]) for row in chain["segments"]] + [
                ("chain", whole)]:
            yield f"  {name:<{width}}" + "".join(f"  {_figure(got[f]):>12}" for f in FIGURES)


def strict_json(value: Any) -> Any:
    """``value`` with every float that JSON has no number for (NaN, ±infinity) written as
    JavaScript writes it, a string ("NaN", "Infinity", "-Infinity"): what ``--json`` prints
    parses everywhere (``json.dumps`` would write bare ``NaN``, which ``JSON.parse`` rejects)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, Mapping):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def chain_lines(segments: Sequence[Segment], rows: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """A chain for people: its runs, then each one's kept steps."""
    yield (f"chain {' -> '.join(s.run_id for s in segments)}: {len(segments)} "
           f"run{'s' if len(segments) > 1 else ''}")
    for row in rows:
        yield (f"  {row['run_id']}  keeps steps {step_range(row['first_step'], row['last_step'])}  "
               f"global {step_range(row['global_first'], row['global_last'])}")


def empty_metrics(columns: Mapping[str, np.ndarray], segments: Sequence[Segment]) -> dict[str, list[str]]:
    """Metric -> the runs of the chain that did not log it (where any did not)."""
    lacking = {}
    run_ids = columns[stitched_names(columns)["run_id"]]
    for key in metric_columns(columns):
        runs = [s.run_id for s in segments if np.isnan(columns[key][run_ids == s.run_id]).all()]
        if runs:
            lacking[key] = runs
    return lacking


def write_csv(columns: Mapping[str, np.ndarray], out: IO[str]) -> int:
    """The stitched columns as CSV to ``out``; returns the rows written.

    Rows become Python objects ``CSV_BATCH`` at a time (numbers as Python gives them: ints as
    ints, floats by repr; NaN as an empty field), so a long chain streams instead of living
    in memory as lists.
    """
    names = stitched_names(columns)
    keys = list(names.values()) + metric_columns(columns)
    n = len(columns[names["global_step"]])

    def rows() -> Iterator[tuple]:
        for start in range(0, n, CSV_BATCH):
            values = []
            for k in keys:
                part = columns[k][start:start + CSV_BATCH]
                cells = part.tolist()
                if part.dtype.kind == "f":
                    for i in np.flatnonzero(np.isnan(part)).tolist():
                        cells[i] = ""
                values.append(cells)
            yield from zip(*values)

    writer = csv.writer(out)
    writer.writerow(keys)
    writer.writerows(rows())
    return n


def sync_line(item: Any) -> str:
    """One run of ``runchain sync``'s plan (a ``sync_plan.PlannedRun``): what happens to
    it, where it goes, and its input edge (or the chain a chain view shows)."""
    if item.problem:
        return f"skip {item.run_id} (left alone: {item.problem})"
    if item.pending:
        action = f"upload {item.run_id}" + (f" ({len(item.pending)} folders)"
                                            if len(item.pending) > 1 else "")
    else:
        action = f"skip {item.run_id} ({', '.join(item.skipped)})"
    where = f"{item.entity}/{item.project}" if item.entity else item.project
    edge = item.edge
    if item.view_of is not None:
        origin = f"chain view of {item.view_of}"
    elif edge is None:
        origin = "root"
    else:
        origin = f"parent {edge.parent_run}@{edge.parent_step}"
        if edge.problem:
            origin += f" (unlinkable: {edge.problem})"
        elif not edge.local:
            origin += " (not local: linked if on W&B)"
    return f"{action}  project {where}  {origin}"
