"""``runchain report``: one self-contained HTML file to explore a tree of runs and its chains.

The page is interactive (``report_page``: uPlot charts with hover, shared zoom, log-y,
smoothing, a metric picker over every metric, a clickable tree map and branches), its
data embedded once per run segment (``report_data``). ``static=True`` writes the report
of matplotlib pictures instead (``report_static``), for printing and the README.
Either way the file loads nothing from the network and every run's string is escaped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from . import lineage
from .source import Source
from .stitch import metric_keys

DEFAULT_SHOWN = 4  # charts the page opens with, the first metrics by name


def source_metrics(source: Source) -> list[str]:
    """Every metric any run of ``source`` logged, sorted by name.

    Example:
        >>> source_metrics(open_source("wandb"))  # doctest: +SKIP
        ['loss/00', 'loss/01']
    """
    tree = source.tree
    segments = [lineage.Segment(run_id, None, node.global_offset)
                for run_id, node in tree.nodes.items()]
    histories = source.fetch(segments, None)
    return sorted(metric_keys(histories[s.run_id] for s in segments))


def _first_logged(source: Source, leaf: str, metrics: list[str]) -> list[str]:
    """The first ``DEFAULT_SHOWN`` of ``metrics`` (by name) that the chain to ``leaf`` logged."""
    if not metrics:
        return []
    columns = source.history(leaf, keys=metrics)
    logged = [m for m in metrics if np.isfinite(columns[m]).any()]
    return (logged or metrics)[:DEFAULT_SHOWN]


def build_report(source: Source, metrics: Sequence[str] | None = None,
                 leaves: Sequence[str] | None = None, static: bool = False) -> str:
    """The report as an HTML string.

    Args:
        source: from ``open_source``.
        metrics: metrics to chart first (the page's picker offers every metric); default
            the first four by name that the first chain logged.
        leaves: chains to offer first, by their last run (any run); default every leaf.
        static: pictures instead of the interactive page.

    Raises:
        RunNotFoundError: a run in ``leaves`` is not in the source.
    """
    tree = source.tree
    leaves = list(dict.fromkeys(leaves)) if leaves else lineage.leaves(tree)
    for leaf in leaves:
        lineage.find_run(tree, leaf)
    every = source_metrics(source)
    shown = list(dict.fromkeys(metrics)) if metrics else _first_logged(source, leaves[0], every)
    if static:
        from .report_static import build_static  # matplotlib loads only for pictures
        return build_static(source, shown, leaves)
    from .report_page import build_page
    return build_page(source, every + [m for m in shown if m not in every], shown, leaves)


def write_report(source: Source, path: str | os.PathLike = "runchain-report.html",
                 metrics: Sequence[str] | None = None,
                 leaves: Sequence[str] | None = None, static: bool = False) -> Path:
    """Write the report to ``path`` (atomically) and return it. See ``build_report``."""
    path = Path(path)
    text = build_report(source, metrics, leaves, static=static)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
