"""Readers turn where runs live into a ``Source``: a local ``wandb/`` folder (``from_folder``: run
files, decoded in bulk and cached) or a W&B project (``from_project``: wandb's public API).

Readers import the core (``contract``, ``lineage``, ``stitch``, ``source``); the core never
imports a reader.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..core.source import Source
from ..errors import RunNotFoundError
from .from_folder import open_folder
from .from_project import open_project
from .local_runs import default_wandb_dir, run_folders

__all__ = ["default_wandb_dir", "open_folder", "open_project", "open_source"]


def open_source(dir: str | os.PathLike | None = None, *, project: str | None = None,
                api: Any = None, only_project: str | None = None) -> Source:
    """Open a local ``wandb/`` folder, or with ``project=`` a W&B project.

    Args:
        dir: folder of run folders; default ``$WANDB_DIR/wandb``, else ``./wandb``.
        project: ``"entity/project"`` (or ``"project"`` for the default entity) on W&B.
        api: a ``wandb.Api`` to use with ``project`` (default: a new one).
        only_project: of a folder, keep only the runs of this W&B project.

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
        return open_project(project, api=api)
    return open_folder(_folder_with_runs(dir), only_project=only_project)


def _folder_with_runs(dir: str | os.PathLike | None) -> Path:
    """The folder to read: ``dir`` (default ``$WANDB_DIR/wandb``, else ``./wandb``), or,
    when it holds no runs, the ``wandb/`` folder where they are, with a warning saying so.

    Raises:
        RunNotFoundError: ``dir`` does not exist.
    """
    root = Path(dir) if dir is not None else default_wandb_dir()
    if dir is not None and not root.exists():
        raise RunNotFoundError(f"--dir {dir}: no such folder; pass the wandb/ folder your runs "
                               f"wrote (./wandb, or $WANDB_DIR/wandb)")
    if run_folders(root):
        return root
    candidates = [(root / "wandb", f"{root} holds no runs, but its wandb/ folder does")]
    if dir is None:  # the default folder: runs may be where a framework put them
        candidates.append((Path("wandb"), f"{root} holds no runs, but ./wandb does (Lightning's "
                                          f"WandbLogger writes there, whatever WANDB_DIR says)"))
    for other, why in candidates:
        if other.resolve() != root.resolve() and run_folders(other):
            warnings.warn(f"{why}; reading {other}", stacklevel=3)
            return other
    return root
