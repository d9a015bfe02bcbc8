"""``runchain report --static``: the report as pictures, for printing and the README.

One self-contained HTML file with the tree, the chains and the runs. The pictures are PNGs embedded as ``data:`` URIs, the style sheet is inline, and there
is no script, font or other URL to load, so the file opens offline anywhere. Every
string that comes from a run (ids, names, config values, metric names) is escaped.
"""

from __future__ import annotations

import base64
import html
import sys
from typing import Mapping, Sequence

from tqdm import tqdm

from ... import parallel
from ...core import lineage
from ...core.source import Source
from ...version import __version__
from ..formats import checkpoint_steps, global_span, step_range
from .data import shown_where
from .figures import chain_scale, chain_view, fan, tree_map
from .palette import run_colors

SAMPLES = 1000  # rows per drawn chain (about 2 per pixel of a plot); each segment keeps its ends
MIN_PARALLEL = 8  # pictures worth a process pool
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.meta { color: #666; } img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; }
th { background: #f6f6f6; } code { font-size: 12px; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; border-radius: 2px; }
nav a { margin-right: 1em; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{_e(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _order(tree: lineage.Tree) -> list[str]:
    return list(tree.nodes)  # build_tree keeps nodes in depth-first order from the roots


def _runs_table(source: Source, order: Sequence[str], colors: Mapping[str, str]) -> str:
    tree = source.tree
    head = ["run", "name", "parent", "cut step", "local steps", "global steps", "state",
            "checkpoints"] + (["W&B"] if source.urls else [])
    rows = []
    for run_id in order:
        node = tree.nodes[run_id]
        span = global_span(tree, run_id)
        cells = [f'<span class="swatch" style="background:{colors[run_id]}"></span>'
                 f"<code>{_e(run_id)}</code>",
                 _e(node.info.name or ""), f"<code>{_e(node.parent_run or '')}</code>",
                 _e("" if node.parent_step is None else node.parent_step),
                 _e(step_range(span.first, span.last, "\u2013")),
                 _e(step_range(span.global_first, span.global_last, "\u2013")), _e(node.info.state),
                 _e(checkpoint_steps(node.info, ", "))]
        if source.urls:
            url = source.urls.get(run_id)
            cells.append(f'<a href="{_e(url)}">open</a>' if url else "")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def build_static(source: Source, metrics: Sequence[str], leaves: Sequence[str]) -> str:
    """The report as an HTML string of pictures.

    Args:
        source: from ``open_source``.
        metrics: metrics to draw (``report.build_report`` picks the default).
        leaves: chains to draw, by their last run, as ``report.build_report`` checked them.
    """
    tree = source.tree
    order = _order(tree)
    colors = run_colors(order, {r: tree.nodes[r].parent_run for r in order})
    every_leaf = lineage.leaves(tree)
    leaves = list(leaves)
    metrics = list(metrics)
    chain_of = {leaf: lineage.chain(tree, leaf)  # a --leaf may name an inner run
                for leaf in dict.fromkeys(leaves + every_leaf)}
    root_of = {leaf: segments[0].run_id for leaf, segments in chain_of.items()}
    fans: dict[str, list[str]] = {root: [] for root in tree.roots}
    for leaf in every_leaf:
        fans[root_of[leaf]].append(leaf)
    wanted = list(dict.fromkeys(leaves + [leaf for group in fans.values() for leaf in group]))
    jobs: list[tuple] = [("tree", tree, order, colors)]
    if metrics:  # else nothing logged to draw
        # read before the pool starts: reading decodes cold run files in a pool of its own
        chains = {leaf: source.history(leaf, keys=metrics, samples=SAMPLES)
                  for leaf in tqdm(wanted, desc="reading chains", unit="chain",
                                   file=sys.stderr, disable=None, leave=False)}
        drawn: dict[str, list[str]] = {}  # chains drawn from one root share their axes
        for leaf in leaves:
            drawn.setdefault(root_of[leaf], []).append(leaf)
        scales = {root: chain_scale([chains[leaf] for leaf in group], metrics)
                  for root, group in drawn.items()}
        jobs += [("chain", leaf, chain_of[leaf], chains[leaf], metrics, colors,
                  scales[root_of[leaf]]) for leaf in leaves]
        timelines = {leaf: {s.run_id: s.timeline for s in segments}
                     for leaf, segments in chain_of.items()}
        jobs += [("fan", root, {leaf: chains[leaf] for leaf in group}, metrics[0], colors,
                  {leaf: timelines[leaf] for leaf in group}) for root, group in fans.items()]
    pictures = iter(parallel.each(_draw, jobs, "drawing", parallel=len(jobs) >= MIN_PARALLEL))
    parts = ["<h2 id=tree>Tree of runs on the global step axis</h2>"
             "<p>Each bar is a run, from its first to its last global step; ticks are its "
             "checkpoints; a thin line joins the step a run started from to its start.</p>",
             _img(next(pictures), "tree map"),
             f"<h2 id=chains>Chains</h2><p>Each chain from its root to a leaf, every run cut at "
             f"the checkpoint the next one started from; dashed lines are resume points. "
             f"Chains from the same root share their axes, so they compare at a glance; name "
             f"one with <code>--leaf</code> to draw it on its own scale. "
             f"Metrics: {_e(', '.join(metrics)) or 'none logged'}.</p>"]
    for leaf in leaves:
        path = " \u2192 ".join(f"{s.run_id}@{s.last_step}" if s.last_step is not None
                               else s.run_id for s in chain_of[leaf])
        parts.append(f"<h3>chain to <code>{_e(leaf)}</code></h3><p class=meta>{_e(path)}</p>"
                     + (_img(next(pictures), f"chain to {leaf}") if metrics else ""))
    parts.append(f"<h2 id=branches>Branches</h2><p>For "
                 f"{_e(metrics[0]) if metrics else 'the first metric'}, every chain from the "
                 f"same root, overlaid: where the curves part is where a fork diverged.</p>")
    parts += [_img(png, f"chains from {root}") for root, png in zip(fans, pictures)]
    parts.append("<h2 id=runs>Runs</h2>" + _runs_table(source, order, colors))
    notes = "".join(f"<li>{_e(note)}</li>" for note in tree.notes)
    header = (f"<h1>runchain report</h1><p class=meta>{len(tree.nodes)} runs, {len(tree.roots)} "
              f"root(s), {len(every_leaf)} chain(s), read from <code>"
              f"{_e(shown_where(source.where))}</code>; runchain {_e(__version__)}</p>"
              + (f"<ul class=meta>{notes}</ul>" if notes else "")
              + "<nav><a href=#tree>tree</a><a href=#chains>chains</a>"
                "<a href=#branches>branches</a><a href=#runs>runs</a></nav>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>runchain report: {_e(shown_where(source.where))}</title><style>{STYLE}</style></head>"
            f"<body>{header}{''.join(parts)}</body></html>")


def _draw(kind: str, *args: object) -> bytes:
    """One picture of the report (a module-level function, so a process pool can run it)."""
    return {"tree": tree_map, "chain": chain_view, "fan": fan}[kind](*args)
