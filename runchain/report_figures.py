"""The report's pictures, drawn with matplotlib (Agg, no pyplot state) and returned as PNG bytes.

Every figure colours a run the same way (``run_colors``). User strings are drawn with
math parsing off, so a run named ``$x$`` is shown as typed.
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .lineage import Segment, Tree

matplotlib.rcParams["text.parse_math"] = False  # run names and metrics are text, never TeX
PALETTE = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab20"].colors[::2]
           + matplotlib.colormaps["tab20"].colors[1::2]]
DPI = 80


def run_colors(order: Sequence[str]) -> dict[str, str]:
    """One colour per run, in tree order, so neighbouring lanes differ."""
    return {run_id: PALETTE[i % len(PALETTE)] for i, run_id in enumerate(order)}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def tree_map(tree: Tree, order: Sequence[str], colors: Mapping[str, str]) -> bytes:
    """Each run a bar on the global step axis in its own lane, with connectors and ticks."""
    n = len(order)
    lane = {run_id: i for i, run_id in enumerate(order)}
    fig = Figure(figsize=(12, 1.2 + 0.16 * n), layout="constrained")
    ax = fig.add_subplot()
    font = 8 if n <= 40 else 6
    every = max(1, math.ceil(n / 160))  # thin labels so 200 runs stay legible
    right = 0
    for i, run_id in enumerate(order):
        node = tree.nodes[run_id]
        start, last = node.global_offset, node.info.last_step
        width = 0 if last is None else last + 1
        right = max(right, start + width)
        ax.barh(i, max(width, 0.5), left=start, height=0.62, color=colors[run_id], linewidth=0)
        ticks = [start + c.step for c in node.info.checkpoints]
        ax.plot(ticks, [i] * len(ticks), "|", color="black", markersize=5 if n <= 40 else 3,
                markeredgewidth=0.9)
        if node.parent_run in lane:
            cut = tree.nodes[node.parent_run].global_offset + node.parent_step
            ax.plot([cut, cut, start], [lane[node.parent_run], i, i], color=colors[run_id],
                    linewidth=0.8, alpha=0.8)
        if i % every == 0 or not node.children:
            name = f" {node.info.name}" if node.info.name else ""
            ax.text(start + width, i, f" {run_id}{name}", va="center", fontsize=font,
                    clip_on=False)
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlim(0, right * 1.12 + 1)
    ax.set_yticks([])
    ax.set_xlabel("global step")
    ax.spines[["left", "right", "top"]].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _segment_slices(run_ids: np.ndarray) -> list[tuple[str, slice]]:
    """Consecutive stretches of the same run in a stitched ``run_id`` column."""
    if run_ids.size == 0:
        return []
    edges = np.flatnonzero(run_ids[1:] != run_ids[:-1]) + 1
    bounds = [0, *edges.tolist(), run_ids.size]
    return [(str(run_ids[a]), slice(a, b)) for a, b in zip(bounds, bounds[1:])]


class ChainCanvas:
    """One figure with an axes per metric, reused for chain after chain.

    Setting a figure up costs more than drawing a chain into it, so only the lines,
    resume markers and titles change between chains.
    """

    def __init__(self, metrics: Sequence[str]):
        self.metrics = list(metrics)
        cols = 2 if len(metrics) > 1 else 1
        rows = max(1, math.ceil(len(metrics) / cols))
        self.fig = Figure(figsize=(11, 1.0 + 2.4 * rows))
        self.fig.subplots_adjust(left=0.06, right=0.985, top=1 - 0.55 / (1.0 + 2.4 * rows),
                                 bottom=0.45 / (1.0 + 2.4 * rows), hspace=0.5, wspace=0.14)
        self.axes = list(self.fig.subplots(rows, cols, squeeze=False).ravel())
        for ax in self.axes[len(metrics):]:
            ax.set_visible(False)
        for ax in self.axes[:len(metrics)]:  # few ticks: their labels are most of the drawing
            ax.xaxis.set_major_locator(MaxNLocator(6))
            ax.yaxis.set_major_locator(MaxNLocator(4))
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            ax.set_xlabel("global step", fontsize=8, labelpad=1)
        self.title = self.fig.suptitle("", fontsize=11)

    def draw(self, leaf: str, segments: Sequence[Segment], columns: Mapping[str, np.ndarray],
             colors: Mapping[str, str]) -> bytes:
        """The stitched curves of the metrics, coloured by run, dashed at each resume point."""
        pieces = _segment_slices(columns["run_id"])
        x = columns["global_step"]
        for ax, metric in zip(self.axes, self.metrics):
            for artist in [*ax.lines, *ax.collections]:
                artist.remove()
            y = columns.get(metric)
            if y is not None and pieces:
                ax.add_collection(LineCollection(
                    [np.column_stack([x[part], y[part]]) for _, part in pieces],
                    colors=[colors.get(run_id, "grey") for run_id, _ in pieces], linewidths=1.1))
            for seg in segments[1:]:
                ax.axvline(seg.global_offset, color="#555555", linestyle="--", linewidth=0.8)
            ax.relim()
            ax.autoscale_view()
            ax.set_title(metric if y is not None else f"{metric} (not logged)", fontsize=10)
        self.title.set_text(f"chain {segments[0].run_id} \u2192 {leaf}  ({len(segments)} runs)")
        return _png(self.fig)


_canvases: dict[tuple[str, ...], ChainCanvas] = {}  # one per process and metric list


def chain_view(leaf: str, segments: Sequence[Segment], columns: Mapping[str, np.ndarray],
               metrics: Sequence[str], colors: Mapping[str, str]) -> bytes:
    """The chain to ``leaf`` as a PNG; see ``ChainCanvas.draw``."""
    canvas = _canvases.get(tuple(metrics))
    if canvas is None:
        canvas = _canvases[tuple(metrics)] = ChainCanvas(metrics)
    return canvas.draw(leaf, segments, columns, colors)


def fan(root: str, chains: Mapping[str, Mapping[str, np.ndarray]], metric: str,
        colors: Mapping[str, str]) -> bytes:
    """Every chain from ``root`` overlaid for one metric, coloured by leaf."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for leaf, columns in chains.items():
        if metric in columns:
            ax.plot(columns["global_step"], columns[metric], color=colors.get(leaf, "grey"),
                    linewidth=1.0, alpha=0.85, label=leaf)
    if 1 < len(chains) <= 20:
        ax.legend(fontsize=7, ncols=min(5, len(chains)), title="leaf", title_fontsize=7)
    ax.set_title(f"{metric}: the {len(chains)} chains from root {root}", fontsize=10)
    ax.set_xlabel("global step", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)
