"""What the renderers show of a tree and its chains, computed once: a run's global span, the
tree's lines, the JSON rows of runs and chains, and the stitched history as CSV rows.

``cli.py`` parses options and prints these; the report and ``publish`` take their spans
from here too.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from typing import IO, Any, Iterator, Mapping, Sequence

import numpy as np

from .contract import LOCAL_STEP
from .lineage import RunNode, Segment, Tree, config_diff, first_local_step, kept_last_step, leaves
from .stitch import metric_columns, stitched_names

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
        ckpts = ",".join(str(c.step) for c in info.checkpoints if c.timeline is None) or "-"
        abandoned = [str(c.step) for c in info.checkpoints if c.timeline is not None]
        if abandoned:  # saved in a timeline a rewind or resume in place replaced
            ckpts += f"  abandoned {','.join(abandoned)}"
        name = f" {info.name!r}" if info.name else ""
        if len(projects) > 1:  # a folder of several projects: say whose each run is
            name += f"  project {info.project}"
        leaf = "  leaf" if not node.children else ""
        differs = "".join(f"  {k}={_short(v)}" for k, v in config_diff(tree, info.id).items())
        axis = "" if info.step_metric == LOCAL_STEP else f" ({info.step_metric})"
        yield (f"{'  ' * node.depth}{info.id}{name}  {info.state}  {origin}  "
               f"steps{axis} {step_range(span.first, span.last)}  "
               f"global {step_range(span.global_first, span.global_last)}  "
               f"checkpoints {ckpts}{leaf}{differs}")


def run_json(tree: Tree, node: RunNode) -> dict[str, Any]:
    """A run of the tree as ``runchain tree --json`` lists it."""
    info = node.info
    return {"id": info.id, "project": info.project, "name": info.name, "state": info.state,
            "parent_run": node.parent_run, "parent_step": node.parent_step, "fork": node.fork,
            "global_offset": node.global_offset, "first_step": info.first_step,
            "last_step": info.last_step, "step_metric": info.step_metric,
            "depth": node.depth, "children": list(node.children), "leaf": not node.children,
            "config": dict(info.config), "config_differs": config_diff(tree, info.id),
            "checkpoints": [{"step": c.step, "alias": c.alias, "version": c.version,
                             "abandoned": c.timeline is not None}
                            for c in info.checkpoints]}


def leaf_lines(tree: Tree) -> Iterator[str]:
    """Every leaf with its depth and global range: the chains there are to show."""
    for leaf in leaves(tree):
        node = tree.nodes[leaf]
        span = global_span(tree, leaf)
        yield (f"{leaf}  depth {node.depth}  global "
               f"{step_range(span.global_first, span.global_last)}"
               + (f"  {node.info.name!r}" if node.info.name else ""))


def chain_rows(tree: Tree, segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """One row per segment of a chain, as ``runchain chain --json`` prints them."""
    rows = []
    for seg in segments:
        span = global_span(tree, seg.run_id, seg)
        rows.append({"run_id": seg.run_id, "step_metric": seg.step_metric,
                     "first_step": span.first, "last_step": span.last,
                     "global_first": span.global_first, "global_last": span.global_last})
    return rows


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
