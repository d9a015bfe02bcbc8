"""The colours of runs, one rule for every picture and page of the report: each run its own
colour, in tree order, so that neighbouring lanes differ."""

from __future__ import annotations

from typing import Sequence

# tab20's strong colours then its light ones, so neighbouring runs differ
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]


def run_colors(order: Sequence[str]) -> dict[str, str]:
    """One colour per run, in tree order, so neighbouring lanes differ."""
    return {run_id: PALETTE[i % len(PALETTE)] for i, run_id in enumerate(order)}
