"""The colours of runs, one rule for every picture and page of the report: no two runs of
one chain share a colour up to ``len(PALETTE)`` runs (past that, the chain charts draw the
later runs dashed), and a run's colour differs from the lane above it in the tree map."""

from __future__ import annotations

from typing import Mapping, Sequence

# tab20's strong colours then its light ones, so neighbouring runs differ
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]


def run_colors(order: Sequence[str], parents: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """One colour per run, in tree order (parents before their children): the next colour
    after the lane above's that none of its last ``len(PALETTE) - 1`` ancestors has.

    Example:
        >>> chain = [f"r{i}" for i in range(20)]
        >>> colors = run_colors(chain, {r: p for p, r in zip([None] + chain, chain)})
        >>> len(set(colors.values()))
        20
    """
    parents = parents or {}
    index: dict[str, int] = {}
    before = -1  # the lane above's colour
    for run_id in order:
        banned, parent = set(), parents.get(run_id)
        for _ in range(len(PALETTE) - 1):  # its nearest ancestors, up the chain
            if parent not in index:
                break
            banned.add(index[parent])
            parent = parents.get(parent)
        free = [(before + 1 + j) % len(PALETTE) for j in range(len(PALETTE))]
        index[run_id] = before = next(k for k in free if k not in banned)
    return {run_id: PALETTE[k] for run_id, k in index.items()}
