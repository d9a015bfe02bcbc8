"""Named exceptions. Library code raises these; only ``cli.py`` turns them into exit codes.

Each subclasses a builtin as well, so callers may catch ``LookupError`` or
``ValueError`` without importing runchain.
"""


class RunchainError(Exception):
    """Base class of every error runchain raises on purpose."""


class ReferenceSyntaxError(RunchainError, ValueError):
    """A checkpoint reference does not match any of the accepted forms."""


class RunNotFoundError(RunchainError, LookupError):
    """No run with this id exists where runchain looked."""


class CheckpointNotFoundError(RunchainError, LookupError):
    """The run exists, but has no checkpoint matching the reference."""


class CheckpointError(RunchainError, ValueError):
    """A checkpoint exists but breaks the contract (type, checkpoint.json, step)."""


class RunFileError(RunchainError, ValueError):
    """A ``.wandb`` run file cannot be read at all (not a run file, bad header)."""


class ModeError(RunchainError, ValueError):
    """An unknown or unusable ``--mode`` / ``WANDB_MODE``."""


class CredentialsError(RunchainError, PermissionError):
    """Online work was asked for, but no W&B credentials are configured."""


class CycleError(RunchainError, ValueError):
    """The parent links between runs form a cycle; the message names the runs."""


class ProjectNotFoundError(RunNotFoundError):
    """A W&B project does not exist, is not visible with these credentials, or has no runs."""


class SourceError(RunchainError, ConnectionError):
    """A source of runs cannot be read: W&B is unreachable, or a request to it failed."""


class SyncError(RunchainError, RuntimeError):
    """``runchain sync`` cannot go on: ``wandb sync`` failed for a run, a run to upload has no
    project, or the sync state file is unreadable."""


class MetricError(RunchainError, ValueError):
    """A metric asked for was logged by no run of the chain (or source), or has the name of a
    stitched column (global_step, run_id, step)."""


class MissingExtraError(RunchainError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ResumeError(RunchainError, ValueError):
    """A resume in place would lose rows: W&B holds rows past the checkpoint's step. The
    message says how to fork (a new run) or rewind instead."""


class CacheError(RunchainError, OSError):
    """The cache path (``RUNCHAIN_CACHE_DIR``) cannot be used: it is a file, not a folder."""


class SyncLockedError(SyncError):
    """Another ``runchain sync`` is syncing the same folder; the message names its process."""


class ExportError(RunchainError, OSError):
    """An export cannot be written where it was asked for (a folder that is not empty, a
    path that cannot be written); nothing there was changed."""

