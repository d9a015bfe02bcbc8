"""Stitch a chain's histories onto one global step axis. Pure: arrays in, arrays out.

Each run in a chain keeps its rows with ``_step <= last_step`` (inclusive; the leaf
keeps all), and every kept row moves to ``global_step = global_offset + _step``.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from .contract import STEP_METRIC
from .errors import MetricError
from .lineage import Segment

Columns = Mapping[str, np.ndarray]  # "_step" (int) plus one float array per metric


STITCHED = (STEP_METRIC, "run_id", "step")  # the columns stitch adds; no metric may take them


def metric_keys(histories: Iterable[Columns]) -> list[str]:
    """Metric names across histories, in first-seen order, without ``_*`` and ``STITCHED``.

    A metric a run logged as ``step`` or ``run_id`` is left out: its name is taken.
    """
    seen: dict[str, None] = {}
    for columns in histories:
        for key in columns:
            if not key.startswith("_") and key not in STITCHED:
                seen.setdefault(key, None)
    return list(seen)


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
        histories: run id -> columns; each needs ``_step`` (ascending).
        keys: metrics to include; default every metric any segment logged.
        samples: thin to about this many rows for plotting, keeping each segment's
            first and last kept row.

    Returns:
        ``global_step`` (int64), ``run_id`` (str), ``step`` (int64, local) and one float64
        array per metric, NaN where a run did not log it.

    Example:
        >>> cols = stitch(chain(tree, "leaf"), histories, keys=["loss/00"])  # doctest: +SKIP
    """
    taken = [k for k in keys or () if k in STITCHED]
    if taken:
        raise MetricError(f"metric {taken[0]!r} has the name of a column the stitched history "
                          f"always has ({', '.join(STITCHED)}); ask for the other metrics")
    keys = list(keys) if keys is not None else metric_keys(histories[s.run_id] for s in segments)
    kept: list[np.ndarray] = []  # per segment: the indices of its rows kept
    for seg in segments:  # pass 1: only "_step", so a lazy mapping loads one column per run
        steps = np.asarray(histories[seg.run_id]["_step"], dtype=np.int64)
        rows = np.arange(steps.size) if seg.last_step is None else np.flatnonzero(steps <= seg.last_step)
        kept.append(rows)
    if samples is not None:
        total = sum(rows.size for rows in kept) or 1
        kept = [rows[_thin(rows.size, max(2, samples * rows.size // total))] for rows in kept]
    n = sum(rows.size for rows in kept)
    out = {"global_step": np.empty(n, np.int64), "step": np.empty(n, np.int64),
           "run_id": np.empty(n, dtype=f"<U{max((len(s.run_id) for s in segments), default=1)}")}
    out.update({k: np.full(n, np.nan) for k in keys})
    start = 0
    for seg, rows in zip(segments, kept):  # pass 2: one run's columns at a time
        columns = histories[seg.run_id]
        end = start + rows.size
        steps = np.asarray(columns["_step"], dtype=np.int64)[rows]
        out["step"][start:end] = steps
        out["global_step"][start:end] = seg.global_offset + steps
        out["run_id"][start:end] = seg.run_id
        for k in keys:
            if k in columns:
                out[k][start:end] = np.asarray(columns[k], dtype=np.float64)[rows]
        start = end
    order = np.argsort(out["global_step"], kind="stable")  # already sorted unless a run's _step was
    if not np.array_equal(order, np.arange(n)):
        out = {k: v[order] for k, v in out.items()}
    return out
