"""Open a source of runs and ask it for the tree, chains, and stitched histories.

A source is read once; the graph and chain logic it hands to are pure functions
(``lineage``, ``stitch``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Mapping, Sequence

import numpy as np

from . import lineage
from .local_runs import default_wandb_dir, read_local_tree
from .stitch import Columns, stitch


@dataclasses.dataclass
class Source:
    """Runs read from one place: lineage facts plus each run's history columns."""

    where: str
    runs: list[lineage.RunInfo]
    histories: Mapping[str, Columns]

    @functools.cached_property
    def tree(self) -> lineage.Tree:
        return lineage.build_tree(self.runs)

    def chains(self) -> list[list[lineage.Segment]]:
        """Every root-to-leaf chain."""
        return lineage.chains(self.tree)

    def chain(self, leaf: str) -> list[lineage.Segment]:
        """The segments from the root to ``leaf``; raises RunNotFoundError for an unknown id."""
        lineage.find_run(self.tree, leaf)
        return lineage.chain(self.tree, leaf)

    def history(self, leaf: str, keys: Sequence[str] | None = None,
                samples: int | None = None) -> dict[str, np.ndarray]:
        """The chain ending at ``leaf``, stitched: ``global_step``, ``run_id``, ``step``, metrics."""
        return stitch(self.chain(leaf), self.histories, keys=keys, samples=samples)


def open_source(dir: str | os.PathLike | None = None) -> Source:
    """Read every run under a local ``wandb/`` folder (default ``$WANDB_DIR/wandb`` or ``./wandb``).

    Example:
        >>> src = open_source("wandb")  # doctest: +SKIP
        >>> cols = src.history(src.tree.roots[0])
    """
    root = dir or default_wandb_dir()
    runs, histories = read_local_tree(root)
    return Source(str(root), runs, histories)
