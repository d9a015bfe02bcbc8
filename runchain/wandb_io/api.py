"""The one boundary to W&B's servers, through ``wandb.Api``: credentials, errors, entities,
and what a logged artifact says about itself.

Everything that reads from W&B (``load_checkpoint`` online, the project reader,
``runchain sync``) opens the API here, wraps its requests in ``wandb_requests`` and asks
an artifact for its checkpoint step here (``classify_artifact``).
``tests/test_wandb_contract.py`` checks every
wandb name used against the installed wandb; the stand-ins in ``tests/wandb_standin.py``
carry the same names. W&B is unreachable from CI, so none of this has run against it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import threading
from typing import Any, Callable, Iterator

import wandb

try:  # wandb-core's failures, which wandb's paginators pass on unwrapped (wandb 0.2x-0.3x)
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError
except ImportError:  # a wandb without that module raises its own errors.Error subclasses
    WandbApiFailedError = wandb.errors.Error

from ..core.classify import Classified, classify
from ..core.contract import LOCAL_STEP, checkpoint_file
from ..errors import CredentialsError, RunchainError, SourceError
from .artifact_files import read_checkpoint_json
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
                               f"these credentials; name one (entity/project/..., --to-entity) "
                               f"or set WANDB_ENTITY")
    return entity


class Memo:
    """Each key's value computed once, also when several threads ask at the same time."""

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._locks: dict[Any, threading.Lock] = collections.defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._guard:
            lock = self._locks[key]
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]


def checkpoint_state(artifact: Any, where: str, memo: Memo | None = None) -> dict[str, Any] | None:
    """The validated ``checkpoint.json`` of a logged artifact, at any depth in it, None if it
    has none: its manifest, then one small download, done once per artifact when a ``memo``
    is passed along.

    Raises:
        CheckpointError: it breaks the contract (not JSON, no valid step), or it holds
            several ``checkpoint.json`` files.
    """
    def fetch() -> dict[str, Any] | None:
        path = checkpoint_file(map(str, artifact.manifest.entries))  # wandb caches it
        if path is None:
            return None
        entry = artifact.get_entry(path)
        with tempfile.TemporaryDirectory() as tmp:
            return read_checkpoint_json(entry.download(root=tmp), where)

    if memo is None:
        return fetch()
    return memo.get((artifact.name, artifact.version), fetch)  # unique within a project


def classify_artifact(artifact: Any, where: str, memo: Memo | None = None,
                      run_axis: str = LOCAL_STEP) -> Classified:
    """``classify.classify`` of a logged artifact: its ``checkpoint.json`` is fetched only
    when its metadata holds no step, once per artifact with a ``memo``. ``where`` (the
    project) and the artifact's name are what a broken one's reason names."""
    path = f"{where}/{artifact.name}"
    return classify(artifact.type, artifact.aliases, artifact.metadata,
                    lambda: checkpoint_state(artifact, path, memo), run_axis)
