"""runchain: run chains on Weights & Biases.

Runs resume or fork from each other's checkpoints; runchain records the edges
and puts every run on one global step axis. See ``docs/contract.md``.

A training script pays for what it calls: ``start``, ``log`` and ``save_checkpoint`` load
no reader, cache or renderer. ``load_checkpoint``, ``checkpoint_steps``, ``open_source``
and ``default_wandb_dir`` read run files, so their modules load when first named.
"""

import importlib
from typing import Any

from .core.breadcrumbs import Breadcrumbs
from .core.contract import (CONFIG_KEY, CheckpointRef, artifact_name, is_step, parse_ref,
                            step_alias)
from .core.lineage import (CheckpointInfo, RunInfo, RunNode, Segment, Tree, build_tree, chain,
                           chains, kept_last_step, leaves)
from .core.source import Source
from .core.stitch import stitch
from .errors import (CheckpointError, CheckpointNotFoundError, CredentialsError, CycleError,
                     ExportError, ModeError, MetricError, MissingExtraError, ProjectNotFoundError,
                     ReferenceSyntaxError, RunchainError, RunFileError, ResumeError,
                     RunNotFoundError, SourceError, SyncError, SyncLockedError)
from .parallel import ParentFirstError, parent_first
from .training.checkpoints import Checkpoint, save_checkpoint
from .training.in_place import in_place_init, resume_args
from .training.state_check import check_state
from .training.tracking import last_logged_step, log, start
from .version import __version__  # noqa: F401 (the package version)
from .wandb_io.mode import resolve_mode

# name -> the module that defines it, imported on first use (PEP 562)
_READERS = {"load_checkpoint": ".readers.resolve", "checkpoint_steps": ".readers.resolve",
            "open_source": ".readers", "default_wandb_dir": ".readers"}

__all__ = [
    "Breadcrumbs", "CONFIG_KEY", "Checkpoint", "CheckpointRef", "artifact_name",
    "checkpoint_steps", "is_step", "last_logged_step", "load_checkpoint", "log", "parse_ref",
    "resolve_mode", "save_checkpoint", "start", "step_alias", "check_state", "in_place_init",
    "resume_args",
    "CheckpointInfo", "RunInfo", "RunNode", "Segment", "Source", "Tree", "build_tree", "chain",
    "chains", "default_wandb_dir", "kept_last_step", "leaves", "open_source", "stitch",
    "ParentFirstError", "parent_first",
    "CheckpointError", "CheckpointNotFoundError", "CredentialsError", "CycleError", "ExportError",
    "ModeError",
    "MetricError", "MissingExtraError", "ProjectNotFoundError", "ReferenceSyntaxError", "RunchainError", "RunFileError",
    "ResumeError", "RunNotFoundError", "SourceError", "SyncError", "SyncLockedError",
]


def __getattr__(name: str) -> Any:
    if name in _READERS:
        value = getattr(importlib.import_module(_READERS[name], __name__), name)
        globals()[name] = value  # once: later lookups find it here
        return value
    raise AttributeError(f"module 'runchain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_READERS})
