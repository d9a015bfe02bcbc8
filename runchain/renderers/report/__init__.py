"""``runchain report``: one self-contained HTML file to explore a tree of runs and its chains.

The page is interactive (``page``: uPlot charts with hover, shared zoom, log-y,
smoothing, a metric picker over every metric, a clickable tree map and branches), its
data embedded once per run segment (``data``). ``static=True`` writes the report of
matplotlib pictures instead (``static``, drawn by ``figures``), for printing and the
README. Both colour runs alike (``palette``). Either way the file loads nothing from the
network and every run's string is escaped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ...atomic import atomic_open
from ...core import lineage
from ...core.source import Source
from ...errors import MissingExtraError

DEFAULT_SHOWN = 4  # metrics the static report draws, the first by name
STATIC_MISSING = ("runchain report --static needs matplotlib and pillow (the static extra): pip "
                  "install 'wandb-runchain[static]', or from a clone pip install -e '.[static]'")


def default_metrics(source: Source, leaf: str, n: int = DEFAULT_SHOWN) -> list[str]:
    """The first ``n`` metrics, by name, that the chain ending at ``leaf`` logged."""
    return source.metrics(leaf)[:n]


def deepest_first(tree: lineage.Tree) -> list[str]:
    """Every leaf, the deepest first (the longest chain is the one to look at first); ties
    go to the newest run (``RunInfo.started``, where the reader knows it), then tree order."""
    leaves = lineage.leaves(tree)
    newest = sorted(leaves, key=lambda r: -(tree.nodes[r].info.started or float("-inf")))
    return sorted(newest, key=lambda r: -tree.nodes[r].depth)


def build_report(source: Source, metrics: Sequence[str] | None = None,
                 leaves: Sequence[str] | None = None, static: bool = False,
                 reload: float | None = None) -> str:
    """The report as an HTML string.

    Args:
        source: from ``open_source``.
        metrics: metrics to chart first (the page's picker offers every metric); default
            every metric, in sections by group (the static report: the first four by name
            that the first chain logged).
        leaves: chains to offer first, by their last run (any run); default every leaf,
            the deepest first (``deepest_first``).
        static: pictures instead of the interactive page.
        reload: seconds after which the open page reloads itself from its file, keeping its
            view (``runchain report --watch``); None: never. No network request: a reload
            of a ``file://`` page reads the file again.

    Raises:
        RunNotFoundError: a run in ``leaves`` is not in the source.
        MissingExtraError: ``static`` without matplotlib and pillow (the ``static`` extra).
    """
    tree = source.tree
    leaves = list(dict.fromkeys(leaves)) if leaves else deepest_first(tree)
    for leaf in leaves:  # the one check of --leaf, for the page and the pictures
        lineage.find_run(tree, leaf)
    if metrics:
        source.check_metrics(metrics)
    if static:  # pictures: a few metrics, or each chain's page would hold every one
        try:
            from .static import build_static  # matplotlib and PIL load only for pictures
        except ImportError as e:
            if (e.name or "").partition(".")[0] == "runchain":
                raise  # a bug of ours, not a missing extra
            raise MissingExtraError(STATIC_MISSING) from e
        shown = list(dict.fromkeys(metrics)) if metrics else default_metrics(source, leaves[0])
        return build_static(source, shown, leaves)
    from .page import build_page
    every = source.metrics()  # the page charts them all by default, drawn as they come into view
    shown = list(dict.fromkeys(metrics)) if metrics else every
    return build_page(source, every + [m for m in shown if m not in every], shown, leaves, reload)


def write_report(source: Source, path: str | os.PathLike = "runchain-report.html",
                 metrics: Sequence[str] | None = None,
                 leaves: Sequence[str] | None = None, static: bool = False,
                 reload: float | None = None) -> Path:
    """Write the report to ``path`` (atomically) and return it. See ``build_report``."""
    path = Path(path)
    text = build_report(source, metrics, leaves, static=static, reload=reload)
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
