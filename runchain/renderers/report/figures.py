"""The report's pictures, drawn with matplotlib (Agg, no pyplot state) and returned as PNG bytes.

matplotlib and pillow come with the ``static`` extra, not the core: only ``static`` imports
this module, and ``build_report`` imports that only for ``static=True``.

Every figure colours a run the same way (``run_colors``). User strings are drawn with
math parsing off, so a run named ``$x$`` is shown as typed.
"""

from __future__ import annotations

import io
import math
from typing import Iterable, Mapping, Sequence

import matplotlib
import numpy as np
from PIL import Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

from ...core.lineage import Segment, Tree, first_local_step

matplotlib.rcParams["text.parse_math"] = False  # run names and metrics are text, never TeX
DPI = 80


def _png(drawn: Figure | FigureCanvasAgg) -> bytes:
    """A figure, or what a canvas holds, as a 256-colour PNG: the plots have few flat colours,
    so it looks the same, is 2.5x smaller and twice as fast to write."""
    canvas = drawn
    if isinstance(drawn, Figure):
        canvas = _agg(drawn)
        canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    quantized = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    # the octree truncates the colours it averages: its white is 254, a grey box on a white
    # page, so the background's colour (a corner's) is put back exactly
    palette = quantized.getpalette()
    corner = quantized.getpixel((0, 0))
    palette[3 * corner:3 * corner + 3] = image.getpixel((0, 0))
    quantized.putpalette(palette)
    buf = io.BytesIO()
    quantized.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _agg(fig: Figure) -> FigureCanvasAgg:
    """The figure's Agg canvas, made once: its renderer caches the text it has measured."""
    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def _width(artist, fig: Figure) -> float:
    """How wide ``artist`` is drawn, in pixels."""
    return artist.get_window_extent(_agg(fig).get_renderer()).width


def tree_map(tree: Tree, order: Sequence[str], colors: Mapping[str, str]) -> bytes:
    """Each run a bar on the global step axis in its own lane, with connectors and ticks."""
    n = len(order)
    lane = {run_id: i for i, run_id in enumerate(order)}
    height = 1.0 + 0.16 * n
    fig = Figure(figsize=(12, height), dpi=DPI)
    fig.subplots_adjust(left=0.015, right=0.985, top=1 - 0.15 / height, bottom=0.6 / height)
    ax = fig.add_subplot()
    font = 8 if n <= 40 else 6
    every = max(1, math.ceil(n / 160))  # thin labels so 200 runs stay legible
    nodes = [tree.nodes[run_id] for run_id in order]
    firsts = [first_local_step(node) for node in nodes]  # a fork's, a framework's: not 0
    starts = np.array([node.global_offset + first for node, first in zip(nodes, firsts)], float)
    widths = np.array([0 if node.info.last_step is None else node.info.last_step + 1 - first
                       for node, first in zip(nodes, firsts)], float)
    ends, low, high = starts + np.maximum(widths, 0.5), np.arange(n) - 0.31, np.arange(n) + 0.31
    corners = [(starts, low), (ends, low), (ends, high), (starts, high)]
    ax.add_collection(PolyCollection(  # one artist for every bar: a patch per bar is slow
        np.stack([np.column_stack(corner) for corner in corners], axis=1),
        facecolors=[colors[r] for r in order], linewidths=0))
    for abandoned, color in ((False, "black"), (True, "grey")):  # grey: saved in rows a
        ticks = [(node.global_offset + c.step, i) for i, node in enumerate(nodes)  # later
                 for c in node.info.checkpoints if (c.timeline is not None) == abandoned]
        if ticks:  # resume in place or rewind replaced
            ax.scatter(*zip(*ticks), marker="|", color=color, s=25 if n <= 40 else 9,
                       linewidths=0.9, zorder=3)
    links = [(node, i) for i, node in enumerate(nodes) if node.parent_run in lane]
    ax.add_collection(LineCollection(
        [[(cut := tree.nodes[node.parent_run].global_offset + node.parent_step,
           lane[node.parent_run]), (cut, i), (starts[i], i)] for node, i in links],
        colors=[colors[node.info.id] for node, _ in links], linewidths=0.8, alpha=0.8))
    right = float((starts + widths).max()) if n else 1.0
    limit, room = right * 1.02 + 1, _width(ax, fig)
    for i, node in enumerate(nodes):
        if i % every == 0 or not node.children:
            name = f" {node.info.name}" if node.info.name else ""
            label = ax.text(starts[i] + widths[i], i, f" {node.info.id}{name}", va="center",
                            fontsize=font, clip_on=False)
            # the x limit that keeps the label inside the axes, unless it takes most of them
            wide = _width(label, fig)
            if wide < 0.6 * room:
                limit = max(limit, (starts[i] + widths[i]) * room / (room - wide))
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlim(0, limit)
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


Scale = tuple[tuple[float, float], tuple[tuple[float, float], ...]]  # x limits, y limits per metric


def chain_scale(chains: Iterable[Mapping[str, np.ndarray]], metrics: Sequence[str]) -> Scale:
    """Axis limits that fit every chain given: the global steps, and each metric.

    Chains from one root drawn on the same scale can be compared at a glance, like small
    multiples, and share their axes with that root's fan.
    """
    chains = list(chains)
    x = [c["global_step"] for c in chains]
    ys = [[c[m][np.isfinite(c[m])] for c in chains if m in c] for m in metrics]
    return (_padded(np.concatenate(x) if x else np.empty(0)),
            tuple(_padded(np.concatenate(y) if y else np.empty(0)) for y in ys))


def _padded(values: np.ndarray, margin: float = 0.04) -> tuple[float, float]:
    """(low, high) around ``values`` with a margin, as matplotlib's autoscale pads."""
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    # halves, so +-1e308 do not overflow to inf
    pad = (high / 2 - low / 2) * (2 * margin) or max(abs(low) * margin, 0.5)
    top = np.finfo(float).max
    return max(low - pad, -top), min(high + pad, top)


def factor(limits: tuple[float, float]) -> float:
    """What to divide values by before matplotlib draws them: 1, or a power of ten for
    limits so large (up to +-1e308) that its tick arithmetic would overflow."""
    big = max(abs(limits[0]), abs(limits[1]))
    return 1.0 if big < 1e100 else 10.0 ** math.floor(math.log10(big))


def _scaled_axis(ax, limits: tuple[float, float]) -> float:
    """Set ``ax``'s y limits, scaled by ``factor``, with ticks that show the real values."""
    f = factor(limits)
    ax.set_ylim(limits[0] / f, limits[1] / f)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * f:.3g}") if f != 1
                                 else ScalarFormatter())
    return f


class ChainCanvas:
    """One figure with an axes per metric, reused for chain after chain.

    Axes, grid, tick labels and titles are drawn once per scale and kept as a bitmap
    (matplotlib's blitting); each chain then draws only its curves, resume lines and
    title on a copy of it. Tick labels are most of what a full drawing costs.
    """

    def __init__(self, metrics: Sequence[str]):
        self.metrics = list(metrics)
        cols = 2 if len(metrics) > 1 else 1
        rows = max(1, math.ceil(len(metrics) / cols))
        height = 0.75 + 2.2 * rows
        self.fig = Figure(figsize=(11, height), dpi=DPI)
        self.fig.subplots_adjust(left=0.06, right=0.985, top=1 - 0.5 / height,
                                 bottom=0.5 / height, hspace=0.3, wspace=0.14)
        # every metric shares the chain's global step axis: labelled once, at the bottom
        self.axes = list(self.fig.subplots(rows, cols, squeeze=False, sharex=True).ravel())
        for ax in self.axes[len(metrics):]:
            ax.set_visible(False)
        self.axes = self.axes[:len(metrics)]
        self.curves, self.resumes, self.missing = [], [], []
        for i, (ax, metric) in enumerate(zip(self.axes, self.metrics)):
            ax.xaxis.set_tick_params(labelbottom=i + cols >= len(metrics))  # bottom row only
            ax.xaxis.set_major_locator(MaxNLocator(6))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.tick_params(labelsize=8, bottom=False, left=False, pad=2)
            ax.grid(alpha=0.3)
            ax.set_title(metric, fontsize=10, pad=3)
            # animated artists are left out of the background and drawn per chain
            self.curves.append(ax.add_collection(LineCollection([], linewidths=1.1, animated=True)))
            self.resumes.append(ax.add_collection(LineCollection(
                [], colors="#555555", linestyles="--", linewidths=0.8, animated=True,
                transform=ax.get_xaxis_transform())))
            self.missing.append(ax.text(0.5, 0.5, "not logged in this chain", ha="center",
                                        va="center", color="#777777", transform=ax.transAxes,
                                        animated=True))
        self.fig.text(0.5, 0.01, "global step", ha="center", va="bottom", fontsize=8)
        self.title = self.fig.suptitle("", fontsize=11, animated=True)
        self.canvas = FigureCanvasAgg(self.fig)
        self.scale: Scale | None = None
        self.background = None
        self.factors = [1.0] * len(self.metrics)

    def _background(self, scale: Scale) -> None:
        if scale != self.scale:
            for ax in self.axes[:1]:  # the axes share x
                ax.set_xlim(*scale[0])
            self.factors = [_scaled_axis(ax, limits) for ax, limits in zip(self.axes, scale[1])]
            self.canvas.draw()
            self.background, self.scale = self.canvas.copy_from_bbox(self.fig.bbox), scale
        self.canvas.restore_region(self.background)

    def draw(self, leaf: str, segments: Sequence[Segment], columns: Mapping[str, np.ndarray],
             colors: Mapping[str, str], scale: Scale) -> bytes:
        """The stitched curves of the metrics, coloured by run, dashed at each resume point."""
        self._background(scale)
        pieces = _segment_slices(columns["run_id"])
        x = columns["global_step"]
        # the first global step after each cut (a child on its parent's axis may start later)
        resumes = [[(s.global_offset + s.last_step + 1, 0), (s.global_offset + s.last_step + 1, 1)]
                   for s in segments[:-1]]
        for ax, metric, curves, resume, missing, f in zip(
                self.axes, self.metrics, self.curves, self.resumes, self.missing, self.factors):
            y = columns.get(metric)
            if y is not None and np.isfinite(y).any():
                y = y / f
                curves.set_segments([np.column_stack([x[part], y[part]]) for _, part in pieces])
                curves.set_color([colors.get(run_id, "grey") for run_id, _ in pieces])
                ax.draw_artist(curves)
            else:
                ax.draw_artist(missing)
            resume.set_segments(resumes)
            ax.draw_artist(resume)
        self.title.set_text(f"chain {segments[0].run_id} \u2192 {leaf}  ({len(segments)} runs)")
        self.fig.draw_artist(self.title)
        return _png(self.canvas)


_canvases: dict[tuple[str, ...], ChainCanvas] = {}  # one per process and metric list


def chain_view(leaf: str, segments: Sequence[Segment], columns: Mapping[str, np.ndarray],
               metrics: Sequence[str], colors: Mapping[str, str], scale: Scale) -> bytes:
    """The chain to ``leaf`` as a PNG; see ``ChainCanvas.draw``."""
    canvas = _canvases.get(tuple(metrics))
    if canvas is None:
        canvas = _canvases[tuple(metrics)] = ChainCanvas(metrics)
    return canvas.draw(leaf, segments, columns, colors, scale)


def fan(root: str, chains: Mapping[str, Mapping[str, np.ndarray]], metric: str,
        colors: Mapping[str, str], timelines: Mapping[str, Mapping[str, int | None]]) -> bytes:
    """Every chain from ``root`` overlaid for one metric: where the curves part, a fork diverged.

    Chains share their first runs, so each run is drawn once, in its own colour, as far as
    any chain goes into it, rather than once per chain. ``timelines``: per leaf, the timeline
    of each run its chain keeps (``Segment.timeline``); a run two chains keep in different
    timelines (a rewind or resume in place abandoned the rows one branched from) is drawn
    both ways.
    """
    drawn = {leaf: columns for leaf, columns in chains.items() if metric in columns}
    pieces: dict[tuple[str, int | None], np.ndarray] = {}  # its longest stretch in any chain
    for leaf, columns in drawn.items():
        for run_id, part in _segment_slices(columns["run_id"]):
            x = columns["global_step"][part]
            track = (run_id, timelines[leaf].get(run_id))
            if track not in pieces or x[-1] > pieces[track][-1, 0]:
                pieces[track] = np.column_stack([x, columns[metric][part].astype(float)])
    fig = Figure(figsize=(11, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.06, right=0.985, top=0.92, bottom=0.13)
    ax = fig.add_subplot()
    (low, high), (limits,) = chain_scale(drawn.values(), [metric])
    ax.set_xlim(low, high)  # the scale of the charts of this root's chains
    f = _scaled_axis(ax, limits)
    ax.add_collection(LineCollection([p / [1, f] for p in pieces.values()], linewidths=1.0,
                                     alpha=0.85,
                                     colors=[colors.get(run_id, "grey") for run_id, _ in pieces]))
    shown = list(dict.fromkeys(run_id for run_id, _ in pieces))  # a run once, in any timeline
    if 0 < len(shown) <= 20:  # which colour is which run; the tree map above shows them all
        legend = ax.legend(handles=[Line2D([], [], color=colors.get(run_id, "grey"),
                                           label=run_id) for run_id in shown],
                           fontsize=7, title="run", title_fontsize=7, loc="upper left",
                           bbox_to_anchor=(1.005, 1.0), frameon=False)
        fig.subplots_adjust(right=max(0.6, 0.98 - _width(legend, fig) / fig.bbox.width))
    chains_from = "the chain" if len(chains) == 1 else f"the {len(chains)} chains"
    ax.set_title(f"{metric}: {chains_from} from root {root}, each run in its colour",
                 fontsize=10)
    ax.set_xlabel("global step", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)
