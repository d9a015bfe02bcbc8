"""The one boundary to W&B's servers, through ``wandb.Api``: credentials, errors, entities,
and what a logged artifact says about itself.

Everything that reads from W&B (``load_checkpoint`` online, the project reader,
``runchain sync``) opens the API here, wraps its requests in ``wandb_requests`` and asks
an artifact for its checkpoint step here. ``tests/test_wandb_contract.py`` checks every
wandb name used against the installed wandb; the stand-ins in ``tests/wandb_standin.py``
carry the same names. W&B is unreachable from CI, so none of this has run against it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator

import wandb

try:  # wandb-core's failures, which wandb's paginators pass on unwrapped (wandb 0.2x-0.3x)
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError
except ImportError:  # a wandb without that module raises its own errors.Error subclasses
    WandbApiFailedError = wandb.errors.Error

from .artifact_files import read_checkpoint_json
from .contract import CHECKPOINT_FILE, CHECKPOINT_TYPE, is_step
from .errors import CheckpointError, CredentialsError, RunchainError, SourceError
from .mode import DEFAULT_BASE_URL, LOGIN_HINT, credential_source

# What a failed request to W&B raises: wandb's own errors (CommError, AuthenticationError),
# wandb-core's failures that wandb's paginators pass on unwrapped, and network OSErrors
# (requests.ConnectionError, socket errors).
REQUEST_ERRORS = (wandb.errors.Error, WandbApiFailedError, OSError)


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


@contextlib.contextmanager
def wandb_requests(where: str) -> Iterator[None]:
    """Turn a failed request to W&B into ``SourceError`` naming ``where`` and the server."""
    try:
        yield
    except RunchainError:
        raise
    except REQUEST_ERRORS as e:
        raise SourceError(
            f"cannot read {where} from W&B at {base_url()}: {type(e).__name__}: {e}; check the "
            f"network connection and WANDB_BASE_URL, and that your credentials are valid "
            f"({LOGIN_HINT})") from e


def open_api(purpose: str, hint: str = "") -> Any:
    """A ``wandb.Api``, after checking that credentials exist (before any request).

    Args:
        purpose: what needs W&B, for the error, e.g. ``"reading W&B project acme/llm"``.
        hint: said after how to log in, e.g. what works without credentials.

    Raises:
        CredentialsError: no credentials are configured; the message says how to log in.
        SourceError: W&B refused or could not be reached while checking them.
    """
    if credential_source() is None:
        raise CredentialsError(f"{purpose} needs W&B credentials, and none are configured; "
                               f"{LOGIN_HINT}{hint}")
    with wandb_requests("your account"):  # wandb.Api() checks the credentials
        return wandb.Api()


def entity_of(api: Any, entity: str | None, what: object) -> str:
    """``entity``, else the API key's default entity.

    Raises:
        CredentialsError: neither exists; the message says how to name one.
    """
    if entity:
        return entity
    with wandb_requests("your default entity"):
        entity = api.default_entity
    if not entity:
        raise CredentialsError(f"no W&B entity for {what}: W&B names no default entity for "
                               f"these credentials; name one (entity/project/..., --entity) "
                               f"or set WANDB_ENTITY")
    return entity


def checkpoint_state(artifact: Any, where: str) -> dict[str, Any]:
    """Download ``checkpoint.json`` of a logged artifact (that one small file) and validate it.

    Raises:
        CheckpointError: the artifact has no ``checkpoint.json``, or it breaks the contract.
    """
    try:
        entry = artifact.get_entry(CHECKPOINT_FILE)
    except KeyError:
        raise CheckpointError(f"checkpoint {where} has no {CHECKPOINT_FILE}; the contract "
                              f"needs one, holding the step") from None
    with tempfile.TemporaryDirectory() as tmp:
        return read_checkpoint_json(entry.download(root=tmp), where)


def checkpoint_step(artifact: Any, where: str) -> int | None:
    """The local step of a logged artifact if it is a checkpoint (type ``checkpoint``), else
    None: its metadata's ``step``, else its ``checkpoint.json``'s (one small download).

    Raises:
        CheckpointError: a checkpoint with neither a metadata step nor a valid
            ``checkpoint.json``.
    """
    if artifact.type != CHECKPOINT_TYPE:
        return None
    step = (artifact.metadata or {}).get("step")
    if is_step(step):
        return step
    try:
        return checkpoint_state(artifact, f"{where}/{artifact.name}")["step"]
    except CheckpointError as e:
        raise CheckpointError(f"{e} (and there is no step in its metadata either)") from None
