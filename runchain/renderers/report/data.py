"""The interactive report's data: every run's history once, cut into segments and thinned.

A run's rows are cut at the checkpoint steps its children started from, into *pieces*:
``[0, c1]``, ``[c1 + 1, c2]``, ... ``[ck + 1, last]`` (local steps, inclusive). A chain
through the run keeps the pieces up to its cut, so every chain is put together in the
page from pieces embedded once, never repeated per chain.

Each piece is thinned per metric to its share of ``run_points`` (pieces share a run's
points by their rows, at least ``MIN_PIECE_POINTS`` each): when a piece has more finite
rows than its share, its rows are split into equal buckets and each bucket keeps its
minimum and maximum (``thin``), so a one-step spike survives; the piece's first and last
rows are always kept. A piece at or under its share is kept whole, exactly.

In the page, steps are little-endian int32 and values little-endian float64, base64: a
value reaches the page bit for bit, in ~11 characters rather than up to 24 of JSON.

Example:
    >>> steps, values = thin(np.arange(10), np.r_[0.0, 0, 0, 9, 0, 0, 0, 0, 0, 1], 4)
    >>> steps.tolist(), values.tolist()
    ([0, 1, 3, 9], [0.0, 0.0, 9.0, 1.0])
"""

from __future__ import annotations

import base64
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ...core import lineage
from ...core.source import Source
from ...core.stitch import stitch, stitched_names
from .palette import PALETTE, run_colors

POINT_BUDGET = 240_000  # points in the whole file, every run and metric (about 4 MB)
MIN_RUN_POINTS = 64  # per run and metric however many runs there are: 31 buckets' min and max
MIN_PIECE_POINTS = 4  # a piece's first and last rows, and one bucket's min and max
def shown_where(where: str) -> str:
    """The folder or project a report names: never an absolute path.

    A folder under the current directory is named relative to it, any other by its
    basename; ``entity/project`` and relative paths are kept as given.

    Example:
        >>> shown_where("/somewhere/else/wandb")
        'wandb'
    """
    path = Path(where)
    if not path.is_absolute():
        return where
    try:
        return str(path.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return path.name or where


def thin(steps: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``k`` of the finite (step, value) rows: the ends, and each bucket's min and max.

    The rows between the ends are split into buckets of equal size (the last maybe shorter),
    at most ``(k - 2) // 2`` of them; each keeps its first minimum and first maximum. One
    pass over the rows (a reshape and an argmin/argmax per bucket), not a sort. NaN (not
    logged) and +-inf rows are dropped: they cannot be drawn.
    """
    finite = np.isfinite(values)
    if not finite.all():
        steps, values = steps[finite], values[finite]
    n = values.size
    if n <= max(k, 2):
        return steps, values
    inner = values[1:-1]
    size = -(-inner.size // max(1, (k - 2) // 2))  # rows per bucket, rounded up
    buckets = -(-inner.size // size)
    grid = np.empty(buckets * size)  # the last bucket's missing rows: never an extreme
    grid[:inner.size] = inner
    grid[inner.size:] = np.inf
    low = grid.reshape(buckets, size).argmin(axis=1)
    grid[inner.size:] = -np.inf
    high = grid.reshape(buckets, size).argmax(axis=1)
    first = np.arange(buckets) * size + 1  # each bucket's first row in ``values``
    kept = np.zeros(n, bool)  # the rows kept, in order, without a sort
    kept[[0, n - 1]] = True
    kept[first + low] = True
    kept[first + high] = True
    keep = np.flatnonzero(kept)
    return steps[keep], values[keep]


def thin_finite(steps: np.ndarray, values: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``thin`` of each row of ``values`` (metrics x rows, every value finite) against the
    same ``steps``, in one pass over all of them: what ``thin`` gives each, row by row."""
    m, n = values.shape
    if n <= max(k, 2):
        return [(steps, row) for row in values]
    inner = values[:, 1:-1]
    size = -(-inner.shape[1] // max(1, (k - 2) // 2))
    buckets = -(-inner.shape[1] // size)
    grid = np.empty((m, buckets * size))
    grid[:, :inner.shape[1]] = inner
    grid[:, inner.shape[1]:] = np.inf
    low = grid.reshape(m, buckets, size).argmin(axis=2)
    grid[:, inner.shape[1]:] = -np.inf
    high = grid.reshape(m, buckets, size).argmax(axis=2)
    first = np.arange(buckets) * size + 1
    kept = np.zeros((m, n), bool)
    kept[:, [0, n - 1]] = True
    rows = np.arange(m)[:, None]
    kept[rows, first + low] = True
    kept[rows, first + high] = True
    out = []
    for row, mask in zip(values, kept):
        keep = np.flatnonzero(mask)
        out.append((steps[keep], row[keep]))
    return out


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def shared_below(node: lineage.RunNode, timeline: int) -> float:
    """The local step below which ``timeline`` of a run holds the same rows as the run as it
    stands: where the first later file took over (``RunInfo.timelines``); 0 where the
    reader does not say (nothing is taken as shared)."""
    later = [start for _, start in node.info.timelines[timeline + 1:]]
    below = min(later, default=0)
    return below if math.isfinite(below) else 0


def pieces_of(node: lineage.RunNode, tree: lineage.Tree,
              timeline: int | None = None) -> list[tuple[int, int]]:
    """(first, last) local steps, inclusive, of each piece of a run: cut where a child started.

    ``timeline``: the run's rows as they stand (None), or timeline k that a rewind or resume
    in place abandoned (``RunNode.parent_timeline``), which only its children's chains keep.
    Below ``shared_below`` timeline k holds the rows as they stand, so its pieces start
    there and end at the last cut of its children; its children's chains take the rows
    below from the run's own pieces, which are also cut at ``shared_below - 1``.
    """
    cuts, first = set(), lineage.first_local_step(node)
    for child in (tree.nodes[c] for c in node.children):
        k = child.parent_timeline
        if child.parent_step is None or (k != timeline and timeline is not None):
            continue
        if k == timeline:
            cuts.add(child.parent_step)
        else:  # a child of abandoned timeline k keeps the rows as they stand up to here
            cuts.add(min(child.parent_step, int(shared_below(node, k)) - 1))
    if timeline is None:
        last = node.info.last_step
    else:
        first = max(first, int(shared_below(node, timeline)))
        last = max(cuts, default=None)
    if last is None or last < first:
        return []
    bounds = []
    for cut in sorted(cuts):
        if first <= cut < last:
            bounds.append((first, cut))
            first = cut + 1
    bounds.append((first, last))
    return bounds


Track = tuple[str, Optional[int]]  # a run's rows as they stand (None), or an abandoned timeline


def timelines_of(tree: lineage.Tree) -> dict[Track, list[tuple[int, int]]]:
    """The pieces of every run's rows as they stand, and of each abandoned timeline of a run
    that a child branched from."""
    tracks = {(run_id, None): pieces_of(node, tree) for run_id, node in tree.nodes.items()}
    for node in tree.nodes.values():
        if node.parent_timeline is not None:
            parent = tree.nodes[node.parent_run]
            tracks[parent.info.id, node.parent_timeline] = pieces_of(parent, tree,
                                                                     node.parent_timeline)
    return tracks


def _tracks_to(tree: lineage.Tree, end: str) -> list[Track]:
    """The tracks only the chain to ``end`` may fill: its own rows, and the abandoned
    timeline of its parent it branched from."""
    node = tree.nodes[end]
    return [(end, None)] + ([(node.parent_run, node.parent_timeline)]
                            if node.parent_timeline is not None else [])


TIME = "_timestamp"  # wall time of each row, seconds: the page's time x axes


class _Pieces:
    """Thinned pieces per track, filled in as chains are read; each piece is thinned once.

    Besides each metric's series, a piece keeps its rows' wall time (``TIME``, thinned the
    same way: for the page's time axes, read at any step by interpolation) and the indices
    of the metrics it logged on every row (those the page offers as an x axis).
    """

    def __init__(self, tree: lineage.Tree, metrics: Sequence[str]):
        self.metrics = list(metrics)
        self.bounds = timelines_of(tree)
        self.done: dict[Track, list[Any]] = {t: [None] * len(b) for t, b in self.bounds.items()}
        self.times: dict[Track, list[Any]] = {t: [0] * len(b) for t, b in self.bounds.items()}
        self.complete: dict[Track, list[list[int]]] = {t: [[] for _ in b]
                                                       for t, b in self.bounds.items()}
        per_run = POINT_BUDGET // max(1, len(self.bounds) * len(self.metrics))  # per track
        self.run_points = max(MIN_RUN_POINTS, per_run)

    def missing(self, track: Track) -> bool:
        return any(p is None for p in self.done[track])

    def take(self, track: Track, cut: int | None, steps: np.ndarray,
             columns: Mapping[str, np.ndarray]) -> None:
        """Thin each piece of ``track`` that rows cut at ``cut`` (inclusive; None: all) hold
        whole; ``columns``: each metric's, and ``TIME`` where the reader has it."""
        bounds, done = self.bounds[track], self.done[track]
        total = max(1, bounds[-1][1] - bounds[0][0] + 1) if bounds else 1  # not from 0: a fork
        for i, (first, last) in enumerate(bounds):
            if done[i] is not None or (cut is not None and last > cut):
                continue  # already thinned, or cut away in this chain
            rows = (steps >= first) & (steps <= last)
            share = max(MIN_PIECE_POINTS, self.run_points * (last - first + 1) // total)
            at = steps[rows]
            values = [columns[metric][rows] for metric in self.metrics]
            whole = [k for k, v in enumerate(values) if v.size and np.isfinite(v).all()]
            self.complete[track][i] = whole  # logged on every row: an x axis of the page
            kept = dict(zip(whole, thin_finite(at, np.array([values[k] for k in whole]), share)
                            if whole else []))  # thinned together: the same steps
            series = []
            for k, v in enumerate(values):
                found = kept[k] if k in kept else thin(at, v, share)
                series.append([_b64(found[0], "<i4"), _b64(found[1], "<f8")] if found[0].size else 0)
            done[i] = series
            if TIME in columns and rows.any():
                kept = thin(steps[rows], columns[TIME][rows], share)
                self.times[track][i] = ([_b64(kept[0], "<i4"), _b64(kept[1], "<f8")]
                                        if kept[0].size else 0)


def read_pieces(source: Source, metrics: Sequence[str]) -> dict[Track, dict[str, list[Any]]]:
    """(run id, timeline) -> ``{"series": per piece, per metric: [steps, values] in base64,
    or 0 when not logged; "times": per piece, its rows' [steps, wall times] (or 0);
    "complete": per piece, the indices of the metrics logged on every row}``. Timeline None
    is the run's rows as they stand; k, a timeline a rewind or resume in place abandoned,
    which only the chains of the children it kept reach.

    Reads each leaf's chain, then the chain to any run with rows past its last child (the
    part no chain to a leaf keeps). Of each chain, only the runs with pieces still to thin
    are fetched and stitched, so each run's rows are decoded and cut about once per report,
    whatever the depth (reading every chain whole costs the depth squared).
    """
    tree = source.tree
    pieces = _Pieces(tree, metrics)
    if metrics:
        ends = lineage.leaves(tree) + [r for r, node in tree.nodes.items() if node.children]
        for end in tqdm(ends, desc="reading runs", unit="chain", file=sys.stderr, disable=None,
                        leave=False):
            if not any(pieces.missing(t) for t in _tracks_to(tree, end)):
                continue  # an inner run whose pieces the chains through it already gave
            needed = [s for s in source.chain(end) if pieces.missing((s.run_id, s.timeline))]
            keys = [*metrics, TIME]  # stitch keeps a key no run logged as NaN
            columns = stitch(needed, source.fetch(needed, keys), keys=keys)
            names = stitched_names(columns)
            run_ids, steps = columns[names["run_id"]], columns[names["step"]]
            edges = np.flatnonzero(run_ids[1:] != run_ids[:-1]) + 1
            starts, stops = [0, *edges.tolist()], [*edges.tolist(), run_ids.size]
            rows = {str(run_ids[a]): slice(a, b) for a, b in zip(starts, stops) if b > a}
            for segment in needed:
                part = rows.get(segment.run_id)
                track = (segment.run_id, segment.timeline)
                if part is not None and pieces.missing(track):
                    pieces.take(track, segment.last_step, steps[part],
                                {m: columns[m][part] for m in keys})
    return {track: {"series": [p if p is not None else [0] * len(metrics) for p in done],
                    "times": pieces.times[track], "complete": pieces.complete[track]}
            for track, done in pieces.done.items()}


def payload(source: Source, metrics: Sequence[str], shown: Sequence[str],
            leaves: Sequence[str], version: str, reload: float | None = None) -> dict[str, Any]:
    """Everything the page draws, as one JSON-able dict (see ``page.js``); ``reload``: the
    seconds after which the page reloads itself (``--watch``), with the time it was written."""
    tree = source.tree
    order = list(tree.nodes)
    colors = run_colors(order, {r: tree.nodes[r].parent_run for r in order})
    data = read_pieces(source, metrics)
    abandoned: dict[str, dict[str, Any]] = {}  # run -> its timelines a child branched from
    for (run_id, k), read in data.items():
        if k is not None:
            abandoned.setdefault(run_id, {})[str(k)] = {
                "pieces": pieces_of(tree.nodes[run_id], tree, k), **read,
                "sharedBelow": shared_below(tree.nodes[run_id], k)}
    described = []  # not "runs": the W&B contract test reads that name as wandb's
    for run_id in order:
        node = tree.nodes[run_id]
        info = node.info
        kept = max((tree.nodes[c].parent_step for c in node.children), default=info.last_step)
        url = source.urls.get(run_id)
        described.append({
            "id": run_id, "name": info.name or "", "state": info.state, "started": info.started,
            "parent": node.parent_run, "parentStep": node.parent_step,
            "offset": node.global_offset, "firstStep": lineage.first_local_step(node),
            "lastStep": info.last_step, "kept": kept,
            "keptReplaced": any(tree.nodes[c].parent_step == kept and  # in rows a resume in
                                tree.nodes[c].parent_timeline is not None  # place replaced
                                for c in node.children),
            "checkpoints": [c.step for c in info.checkpoints if c.timeline is None],
            "abandoned": [c.step for c in info.checkpoints if c.timeline is not None],  # saved
            # in a timeline a rewind or resume in place replaced
            "color": colors[run_id],
            "url": url if url and url.startswith(("https://", "http://")) else None,
            "config": _config(info),
            "differs": {str(k): json.dumps(v, default=str)[:40]  # what tells it from its
                        for k, v in lineage.config_diff(tree, run_id).items()},  # parent, siblings
            "parentTimeline": node.parent_timeline,  # the parent's track its chains keep
            "pieces": pieces_of(node, tree), **data[run_id, None],  # series, times, complete
            "timelines": abandoned.get(run_id, {}),
        })
    return {"version": version, "where": shown_where(source.where), "notes": list(tree.notes),
            "metrics": list(metrics), "shown": list(shown), "leaves": list(leaves),
            "allLeaves": lineage.leaves(tree), "roots": list(tree.roots), "runs": described,
            "reload": reload, "written": time.strftime("%H:%M:%S") if reload else None,
            "palette": len(PALETTE),  # a chain's runs past this many repeat colours: dashed
            "runPoints": MIN_RUN_POINTS if not metrics else
            max(MIN_RUN_POINTS, POINT_BUDGET // max(1, len(order) * len(metrics)))}


def _config(info: lineage.RunInfo) -> dict[str, str]:
    """The run's config as text, when the reader provides it (``RunInfo`` may grow ``config``)."""
    config = getattr(info, "config", None)
    if not isinstance(config, Mapping):
        return {}
    return {str(k): json.dumps(v, default=str)[:200] for k, v in config.items()
            if not str(k).startswith("_") and k != "runchain"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``..., so no ``</script>`` or ``<!--`` can end or
    change the element; U+2028/2029 are escaped for older JavaScript parsers.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text
