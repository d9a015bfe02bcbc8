"""Open a source of runs and ask it for the tree, chains, and stitched histories.

A source is a reader's output: every run's lineage facts (``RunInfo``), plus a way to
fetch the histories one chain needs. The graph and chain logic it hands to are pure
functions (``lineage``, ``stitch``). Two readers exist: local run files
(``local_runs``) and a W&B project through the public API (``wandb_runs``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import lineage
from .stitch import Columns, stitch

# (chain segments, metric keys or None for all) -> run id -> columns. Each run's columns hold
# "_step" and at least the rows up to its segment's cut; extra rows are cut by ``stitch``.
Fetch = Callable[[Sequence[lineage.Segment], Sequence[str] | None], Mapping[str, Columns]]


@dataclasses.dataclass
class Source:
    """Runs read from one place: lineage facts, and a fetch for chain histories."""

    where: str  # a folder, or "entity/project" on W&B
    runs: list[lineage.RunInfo]
    fetch: Fetch
    urls: Mapping[str, str] = dataclasses.field(default_factory=dict)  # run id -> W&B run page

    @functools.cached_property
    def tree(self) -> lineage.Tree:
        return lineage.build_tree(self.runs)

    def chains(self) -> list[list[lineage.Segment]]:
        """Every root-to-leaf chain."""
        return lineage.chains(self.tree)

    def chain(self, leaf: str) -> list[lineage.Segment]:
        """The segments from the root to ``leaf``; raises RunNotFoundError for an unknown id."""
        return lineage.chain(self.tree, leaf)

    def history(self, leaf: str, keys: Sequence[str] | None = None,
                samples: int | None = None) -> dict[str, np.ndarray]:
        """The chain ending at ``leaf``, stitched: ``global_step``, ``run_id``, ``step``, metrics.

        Only the chain's runs are read, and only ``keys`` when given.
        """
        segments = self.chain(leaf)
        return stitch(segments, self.fetch(segments, keys), keys=keys, samples=samples)


def open_source(dir: str | os.PathLike | None = None, *, project: str | None = None,
                api: Any = None) -> Source:
    """Open a local ``wandb/`` folder, or with ``project=`` a W&B project.

    Args:
        dir: folder of run folders; default ``$WANDB_DIR/wandb``, else ``./wandb``.
        project: ``"entity/project"`` (or ``"project"`` for the default entity) on W&B.
        api: a ``wandb.Api`` to use with ``project`` (default: a new one).

    Raises:
        RunNotFoundError: the folder or project holds no runs.
        CredentialsError: ``project`` given but no W&B credentials are configured.

    Example:
        >>> src = open_source("wandb")  # doctest: +SKIP
        >>> cols = src.history(src.tree.roots[0], keys=["loss"])
    """
    if project is not None:
        if dir is not None:
            raise ValueError("pass either dir or project, not both")
        from .wandb_runs import open_project
        return open_project(project, api=api)
    from .local_runs import default_wandb_dir
    from .local_tree import open_folder
    return open_folder(dir or default_wandb_dir())
