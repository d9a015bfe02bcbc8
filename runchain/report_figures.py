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
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})  # 3x faster, ~1.3x bigger
    return buf.getvalue()


def tree_map(tree: Tree, order: Sequence[str], colors: Mapping[str, str]) -> bytes:
    """Each run a bar on the global step axis in its own lane, with connectors and ticks."""
    n = len(order)
    lane = {run_id: i for i, run_id in enumerate(order)}
    fig = Figure(figsize=(12, 1.2 + 0.16 * n), layout="constrained")
    ax = fig.add_subplot()
    font = 8 if n <= 40 else 6
    every = max(1, math.ceil(n / 160))  # thin labels so 200 runs stay legible
    nodes = [tree.nodes[run_id] for run_id in order]
    starts = np.array([node.global_offset for node in nodes], float)
    widths = np.array([0 if node.info.last_step is None else node.info.last_step + 1
                       for node in nodes], float)
    ax.barh(np.arange(n), np.maximum(widths, 0.5), left=starts, height=0.62,
            color=[colors[r] for r in order], linewidth=0)  # one call: one artist per bar is slow
    ticks = [(node.global_offset + c.step, i) for i, node in enumerate(nodes)
             for c in node.info.checkpoints]
    if ticks:
        ax.scatter(*zip(*ticks), marker="|", color="black", s=25 if n <= 40 else 9,
                   linewidths=0.9, zorder=3)
    links = [(node, i) for i, node in enumerate(nodes) if node.parent_run in lane]
    ax.add_collection(LineCollection(
        [[(cut := tree.nodes[node.parent_run].global_offset + node.parent_step,
           lane[node.parent_run]), (cut, i), (node.global_offset, i)] for node, i in links],
        colors=[colors[node.info.id] for node, _ in links], linewidths=0.8, alpha=0.8))
    for i, node in enumerate(nodes):
        if i % every == 0 or not node.children:
            name = f" {node.info.name}" if node.info.name else ""
            ax.text(starts[i] + widths[i], i, f" {node.info.id}{name}", va="center",
                    fontsize=font, clip_on=False)
    right = float((starts + widths).max()) if n else 1.0
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
            logged = y is not None and bool(np.isfinite(y).any())
            if logged:
                ax.add_collection(LineCollection(
                    [np.column_stack([x[part], y[part]]) for _, part in pieces],
                    colors=[colors.get(run_id, "grey") for run_id, _ in pieces], linewidths=1.1))
            # limits from the data itself: the figure is reused, and before matplotlib 3.11
            # relim() ignores collections
            ax.set_xlim(*_padded(x))
            ax.set_ylim(*(_padded(y[np.isfinite(y)]) if logged else (0.0, 1.0)))
            if len(segments) > 1:  # one collection for every resume point: many artists are slow
                ax.vlines([s.global_offset for s in segments[1:]], 0, 1, colors="#555555",
                          linestyles="--", linewidths=0.8, transform=ax.get_xaxis_transform())
            ax.set_title(metric if logged else f"{metric} (not logged)", fontsize=10)
        self.title.set_text(f"chain {segments[0].run_id} \u2192 {leaf}  ({len(segments)} runs)")
        return _png(self.fig)


def _padded(values: np.ndarray, margin: float = 0.04) -> tuple[float, float]:
    """(low, high) around ``values`` with a margin, as matplotlib's autoscale pads."""
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * margin or max(abs(low) * margin, 0.5)
    return low - pad, high + pad


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
    drawn = [(leaf, columns) for leaf, columns in chains.items() if metric in columns]
    ax.add_collection(LineCollection(  # one artist for every chain
        [np.column_stack([columns["global_step"], columns[metric]]) for _, columns in drawn],
        colors=[colors.get(leaf, "grey") for leaf, _ in drawn], linewidths=1.0, alpha=0.85))
    ax.autoscale_view()
    if 1 < len(drawn) <= 20:
        for leaf, _ in drawn:  # legend entries only
            ax.plot([], [], color=colors.get(leaf, "grey"), label=leaf)
        ax.legend(fontsize=7, ncols=min(5, len(chains)), title="leaf", title_fontsize=7)
    ax.set_title(f"{metric}: the {len(chains)} chains from root {root}", fontsize=10)
    ax.set_xlabel("global step", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)
