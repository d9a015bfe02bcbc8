"""runchain: run chains on Weights & Biases.

Runs resume or fork from each other's checkpoints; runchain records the edges
and puts every run on one global step axis. See ``docs/contract.md``.
"""

from .checkpoints import Checkpoint, checkpoint_steps, load_checkpoint, save_checkpoint
from .contract import Breadcrumbs, CheckpointRef, artifact_name, parse_ref, step_alias
from .errors import (CheckpointError, CheckpointNotFoundError, CredentialsError, CycleError, ModeError,
                     MetricError, ProjectNotFoundError, ReferenceSyntaxError, RunchainError, RunFileError,
                     RunNotFoundError, SourceError, SyncError)
from .lineage import (CheckpointInfo, RunInfo, RunNode, Segment, Tree, build_tree, chain, chains,
                      kept_last_step, leaves)
from .mode import resolve_mode
from .parallel import ParentFirstError, parent_first
from .readers import default_wandb_dir, open_source
from .source import Source
from .stitch import stitch
from .tracking import log, start
from .version import __version__  # noqa: F401 (the package version)

__all__ = [
    "Breadcrumbs", "Checkpoint", "CheckpointRef", "artifact_name", "checkpoint_steps",
    "load_checkpoint", "log", "parse_ref", "resolve_mode", "save_checkpoint", "start",
    "step_alias",
    "CheckpointInfo", "RunInfo", "RunNode", "Segment", "Source", "Tree", "build_tree", "chain",
    "chains", "default_wandb_dir", "kept_last_step", "leaves", "open_source", "stitch",
    "ParentFirstError", "parent_first",
    "CheckpointError", "CheckpointNotFoundError", "CredentialsError", "CycleError", "ModeError",
    "MetricError", "ProjectNotFoundError", "ReferenceSyntaxError", "RunchainError", "RunFileError",
    "RunNotFoundError", "SourceError", "SyncError",
]
