"""Stitch a chain's histories onto one global step axis. Pure: arrays in, arrays out.

Each run in a chain keeps its rows with local step ``<= last_step`` (inclusive; the leaf
keeps all), and every kept row moves to ``global_step = global_offset + local step``. A
run's local step is its ``_step``, or the value of the step metric it declares
(``axis_steps``); on a declared axis, rows a restart of the counter replaced are left
out (``superseded``).

Both readers turn logged rows into columns with the rules here: ``as_number`` for a
value, ``rows_to_columns`` for a run's rows, ``is_metric`` for a key.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import MetricError
from .contract import LOCAL_STEP, STEP_LIMIT, STEP_METRIC
from .lineage import Segment

Columns = Mapping[str, np.ndarray]  # "_step" (int) plus one float array per metric


STITCHED = (STEP_METRIC, "run_id", "step")  # the columns stitch adds
OWN_PREFIX = "runchain/"  # a stitched column's name where a run logged a key of that name


def stitched_names(columns: Columns) -> dict[str, str]:
    """What each stitched column (``global_step``, ``run_id``, ``step``) is called in
    ``columns``: its own name, or ``runchain/<name>`` where a run of the chain logged a key
    of that name, which keeps it (``stitch``).

    Example:
        >>> stitched_names({"runchain/global_step": 0, "global_step": 0, "run_id": 0, "step": 0})
        {'global_step': 'runchain/global_step', 'run_id': 'run_id', 'step': 'step'}
    """
    return {name: OWN_PREFIX + name if OWN_PREFIX + name in columns else name for name in STITCHED}


def metric_columns(columns: Columns) -> list[str]:
    """The metric columns of a stitched history: all but the stitched ones."""
    stitched = set(stitched_names(columns).values())
    return [k for k in columns if k not in stitched]


INTERNAL = (LOCAL_STEP, "_runtime", "_timestamp")  # the history keys wandb adds to every row


def is_metric(key: str) -> bool:
    """Whether a history key is listed as a metric: not one wandb adds itself (``_step``,
    ``_runtime``, ``_timestamp``; a user's ``_x`` is a metric), and not a name ``stitch``
    gives its own columns (a run's own ``global_step``, ``step`` or ``run_id`` is still
    kept in its chain's history, under its name: ``stitch``)."""
    return key not in INTERNAL and key not in STITCHED


def _logged_stitched(segments: Sequence[Segment], histories: Mapping[str, Columns]) -> list[str]:
    """The stitched columns' names that a run of the chain logged itself: ``step`` and
    ``run_id`` from any run, ``global_step`` from a run that is not runchain's own (whose
    ``global_step`` is the one ``stitch`` computes, ``Segment.runchain``)."""
    return [name for name in STITCHED
            if any(name in histories[s.run_id] for s in segments
                   if not (name == STEP_METRIC and s.runchain))]


def as_number(value: Any) -> float:
    """The one rule for a logged history value: a number is itself (an integer too large for
    a float is +-inf); anything else (a string, a boolean, null, media) is NaN.

    Example:
        >>> [as_number(v) for v in (3, 0.5, "nan?", True, None, 10**400)]
        [3.0, 0.5, nan, nan, nan, inf]
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf


def rows_to_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Rows (key -> decoded value) -> one float64 column per key that holds a number in at
    least one row; every value ``as_number``, so a stray string is NaN and its neighbours stay.

    Example:
        >>> rows_to_columns([{"loss": 1.0, "note": "x"}, {"loss": "oops"}])["loss"].tolist()
        [1.0, nan]
    """
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            columns[name] = np.array([as_number(v) for v in values], np.float64)
    return columns


def metric_keys(histories: Iterable[Columns]) -> list[str]:
    """Metric names across histories, in first-seen order (see ``is_metric``)."""
    seen: dict[str, None] = {}
    for columns in histories:
        seen.update((key, None) for key in columns if is_metric(key))
    return list(seen)


def axis_steps(columns: Columns, step_metric: str = LOCAL_STEP) -> np.ndarray:
    """A run's local step, row by row (int64): its ``_step``, or on a declared axis each
    row's place on it (``axis_rows``).

    Example:
        >>> cols = {"_step": np.arange(4), "train/global_step": np.array([np.nan, 5, np.nan, 10])}
        >>> axis_steps(cols, "train/global_step").tolist(), axis_steps(cols).tolist()
        ([5, 5, 5, 10], [0, 1, 2, 3])
    """
    return axis_rows(columns, step_metric)[0]


def axis_rows(columns: Columns, step_metric: str = LOCAL_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Each row's place on a run's axis (int64), and which rows logged the axis themselves.

    On ``_step`` every row has its own. On a declared axis a row's step is the metric's
    value (``contract.as_step``'s floor, from 0 up to 2**63); a row that did not log it is
    placed by its ``_step`` between the rows that did: it shows the value before it (rows
    before the first value, the first), but it comes after that row, so a cut at that value
    leaves it out (``kept_rows``). No value at all is step 0.

    Example:
        >>> cols = {"_step": np.arange(4), "epoch": np.array([np.nan, 1, np.nan, 2])}
        >>> [a.tolist() for a in axis_rows(cols, "epoch")]
        [[1, 1, 1, 2], [False, True, False, True]]
    """
    if step_metric == LOCAL_STEP:
        steps = np.asarray(columns[LOCAL_STEP], dtype=np.int64)
        return steps, np.ones(steps.size, bool)
    n = len(columns[LOCAL_STEP])
    if step_metric not in columns:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    values = np.asarray(columns[step_metric], dtype=np.float64)
    ok = np.isfinite(values) & (values >= 0) & (values < STEP_LIMIT)  # contract.as_step's bounds
    if not ok.any():
        return np.zeros(n, np.int64), ok
    last = np.maximum.accumulate(np.where(ok, np.arange(n), -1))
    last[last < 0] = np.flatnonzero(ok)[0]
    return np.floor(values[last]).astype(np.int64), ok


def kept_rows(steps: np.ndarray, own: np.ndarray, last_step: int | None,
              step_metric: str = LOCAL_STEP) -> np.ndarray | None:
    """Which rows a segment cut at ``last_step`` (inclusive; None: the leaf, no cut) keeps, as
    a bool per row, or None for all. On a declared axis, rows a restart of the counter
    replaced are left out (``superseded``), and the cut ends at the last kept row that logged
    a step up to it: a row after it that did not log the axis was logged after that step
    (``axis_rows``), so it is left out, never kept under a stale value.

    Example:
        >>> steps, own = np.array([0, 0, 0, 1, 1, 2]), np.array([1, 0, 0, 1, 0, 1], bool)
        >>> kept_rows(steps, own, 1, "epoch").tolist()  # row 4 came after epoch 1's row
        [True, True, True, True, False, False]
    """
    if step_metric == LOCAL_STEP:
        return None if last_step is None else steps <= last_step
    keep = ~superseded(steps)
    if last_step is not None:
        within = np.flatnonzero(keep & own & (steps <= last_step))
        keep[within[-1] + 1 if within.size else 0:] = False
    return keep


def superseded(steps: np.ndarray) -> np.ndarray:
    """Which rows of a run a later restart of its counter replaced (bool per row). Where a
    declared axis goes down (a resume in place W&B continued, a second training in one
    run), the rows after it replace the earlier rows from that step on, as a rewind does.

    Example:
        >>> superseded(np.array([5, 10, 15, 10, 15, 20])).tolist()
        [False, True, True, False, False, False]
    """
    later = np.full(steps.size, np.iinfo(np.int64).max)  # at row i: a drop's step at row i + 1
    drops = np.flatnonzero(steps[1:] < steps[:-1])
    if not drops.size:
        return np.zeros(steps.size, bool)
    later[drops] = steps[drops + 1]
    return steps >= np.minimum.accumulate(later[::-1])[::-1]


def _thin(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices of ``range(n)``, evenly spread, always keeping both ends."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max(k, 2))).astype(np.int64))


def stitch(segments: Sequence[Segment], histories: Mapping[str, Columns],
           keys: Sequence[str] | None = None, samples: int | None = None) -> dict[str, np.ndarray]:
    """The stitched history of a chain, as columns sorted by ``global_step``.

    Args:
        segments: root -> leaf, from ``lineage.chain``.
        histories: run id -> columns; each needs ``_step`` (ascending), and its segment's
            ``step_metric`` where the run declares one.
        keys: metrics to include; default every metric any segment logged.
        samples: thin to about this many rows for plotting, keeping each segment's
            first and last kept row.

    Returns:
        ``global_step`` (int64), ``run_id`` (str), ``step`` (int64, local, on the run's
        axis) and one float64 array per metric, NaN where a run did not log it. A column
        runchain adds never replaces one a run logged: where a run logged ``step`` or
        ``run_id``, or a plain run its own ``global_step``, those values keep their name and
        runchain's column is ``runchain/<name>`` (``stitched_names``).

    Example:
        >>> cols = stitch(chain(tree, "leaf"), histories, keys=["loss/00"])  # doctest: +SKIP
    """
    return _stitch(segments, histories, keys, samples).out


def stitch_chains(chains: Iterable[Sequence[Segment]], histories: Mapping[str, Columns],
                  keys: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Each chain stitched, in order, as ``stitch(chain, histories, keys)`` gives it; the
    leading segments a chain shares with the chain before it (chains in ``lineage.leaves``'
    depth-first order share their longest prefixes) are copied from that chain's columns
    in one piece each, not stitched again run by run.

    Each chain is stitched before the one before it is yielded, so what a caller does to
    the arrays it is given never reaches a later chain; two chains are held at a time.

    Example:
        >>> for cols in stitch_chains([chain(tree, leaf) for leaf in leaves(tree)], histories):
        ...     print(cols["global_step"][-1])  # doctest: +SKIP
    """
    ahead: _Stitched | None = None
    for segments in chains:
        done = _stitch(segments, histories, keys, None, ahead)
        if ahead is not None:
            yield ahead.out
        ahead = done
    if ahead is not None:
        yield ahead.out


@dataclasses.dataclass
class _Stitched:
    """A chain's stitched columns, with what the next chain needs to copy a shared prefix."""

    segments: Sequence[Segment]
    ends: list[int]  # the row each segment's rows end at (exclusive)
    out: dict[str, np.ndarray]
    names: dict[str, str]  # each stitched column's name in ``out`` (``stitched_names``)
    keys: set[str]  # the metrics in ``out``
    in_order: bool  # rows are in segment order (no sort was needed), so a prefix is a prefix


def _shared_prefix(segments: Sequence[Segment], before: _Stitched | None) -> int:
    """How many leading segments ``before``'s chain has exactly as ``segments`` does."""
    if before is None or not before.in_order:
        return 0
    shared = 0
    for mine, theirs in zip(segments, before.segments):
        if mine != theirs:
            break
        shared += 1
    return shared


def _stitch(segments: Sequence[Segment], histories: Mapping[str, Columns],
            keys: Sequence[str] | None, samples: int | None,
            before: _Stitched | None = None) -> _Stitched:
    """``stitch``; with ``before`` (the chain stitched last, unthinned), the segments both
    chains start with are copied from its columns rather than stitched again."""
    logged = _logged_stitched(segments, histories)
    taken = [k for k in keys or () if k in STITCHED and k not in logged]
    if taken:
        raise MetricError(f"metric {taken[0]!r} has the name of a column the stitched history "
                          f"always has ({', '.join(STITCHED)}), and no run of the chain logged "
                          f"it; ask for the other metrics")
    keys = list(keys) if keys is not None else (
        logged + metric_keys(histories[s.run_id] for s in segments))
    names = {name: OWN_PREFIX + name if name in keys else name for name in STITCHED}
    shared = 0 if samples is not None else _shared_prefix(segments, before)
    fresh = [k for k in keys if before is not None and k not in before.keys]
    if any(k in histories[s.run_id] for s in segments[:shared] for k in fresh):
        shared = 0  # a shared run logged a key ``before`` left out (a stitched column's name)
    kept: list[np.ndarray] = []  # per segment after the shared ones: the indices of its rows kept
    for seg in segments[shared:]:  # pass 1: the axis alone (a lazy mapping loads one column)
        steps, own = axis_rows(histories[seg.run_id], seg.step_metric)
        keep = kept_rows(steps, own, seg.last_step, seg.step_metric)
        rows = np.arange(steps.size) if keep is None else np.flatnonzero(keep)
        kept.append(rows)
    if samples is not None:
        total = sum(rows.size for rows in kept) or 1
        kept = [rows[_thin(rows.size, max(2, samples * rows.size // total))] for rows in kept]
    start = before.ends[shared - 1] if shared else 0  # the rows copied from ``before``
    ends = before.ends[:shared] if shared else []
    for rows in kept:
        ends.append((ends[-1] if ends else 0) + rows.size)
    n = ends[-1] if ends else 0
    width = max((len(s.run_id) for s in segments), default=1)
    out = {names[STEP_METRIC]: np.empty(n, np.int64), names["step"]: np.empty(n, np.int64),
           names["run_id"]: np.empty(n, dtype=f"<U{width}")}
    out.update({k: np.empty(n) for k in keys})
    if shared:  # the prefix both chains share, one copy per column
        for name in STITCHED:
            out[names[name]][:start] = before.out[before.names[name]][:start]
        for k in keys:
            out[k][:start] = before.out[k][:start] if k in before.keys else np.nan
    for seg, rows in zip(segments[shared:], kept):  # pass 2: one run's columns at a time
        columns = histories[seg.run_id]
        end = start + rows.size
        # a run's kept rows are most often a run of rows (all, or up to its cut): a slice
        # copies each column once, where an index array copies it twice
        pick = (slice(int(rows[0]), int(rows[-1]) + 1)
                if rows.size and rows[-1] - rows[0] + 1 == rows.size else rows)
        steps = axis_steps(columns, seg.step_metric)[pick]
        out[names["step"]][start:end] = steps
        out[names[STEP_METRIC]][start:end] = seg.global_offset + steps
        out[names["run_id"]][start:end] = seg.run_id
        for k in keys:
            if k in columns:
                out[k][start:end] = np.asarray(columns[k], dtype=np.float64)[pick]
            else:
                out[k][start:end] = np.nan
        start = end
    global_steps = out[names[STEP_METRIC]]
    in_order = not (n > 1 and (global_steps[1:] < global_steps[:-1]).any())
    if not in_order:  # sorted unless a run's axis was not
        order = np.argsort(global_steps, kind="stable")
        out = {k: v[order] for k, v in out.items()}
    return _Stitched(list(segments), ends, out, names, set(keys), in_order and samples is None)
