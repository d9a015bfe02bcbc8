"""Choose online or offline without ever prompting, and check W&B credentials.

Order: an explicit ``--mode online|offline`` wins; with ``auto`` (the default)
``WANDB_MODE`` is honoured; otherwise runchain goes online only when credentials
are configured (``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE`` or a ``.netrc``
entry for the W&B host, which ``wandb login`` writes).
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import CredentialsError, ModeError

MODES = ("auto", "online", "offline")
DEFAULT_BASE_URL = "https://api.wandb.ai"
LOGIN_HINT = "run `wandb login` or set WANDB_API_KEY"


def _netrc_path() -> Path:
    return Path(os.environ.get("NETRC") or "~/.netrc").expanduser()


def credential_source() -> str | None:
    """Where W&B credentials would come from (never the key itself), or None."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY"
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return "WANDB_IDENTITY_TOKEN_FILE"
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname
    path = _netrc_path()
    try:
        entry = netrc.netrc(path).authenticators(host) if path.is_file() else None
    except (OSError, netrc.NetrcParseError):
        entry = None
    return str(path) if entry and entry[2] else None


def resolve_mode(mode: str = "auto", announce: bool = True) -> str:
    """Turn ``auto|online|offline`` into ``"online"`` or ``"offline"``.

    Example:
        >>> resolve_mode("offline")
        'offline'

    Raises:
        ModeError: an unknown mode, or ``WANDB_MODE=disabled`` (nothing would be recorded).
        CredentialsError: ``online`` without credentials.
    """
    if mode not in MODES:
        raise ModeError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode == "auto" and env:
        if env in ("offline", "dryrun"):
            return "offline"
        if env in ("online", "run"):
            mode = "online"
        elif env == "disabled":
            raise ModeError("WANDB_MODE=disabled records no runs or checkpoints, so there is "
                            "nothing to chain; unset it or use --mode offline")
        else:
            raise ModeError(f"unknown WANDB_MODE={env!r}; use online or offline")
    source = credential_source()
    if mode == "online":
        if source is None:
            raise CredentialsError(
                f"--mode online needs W&B credentials and none are configured; {LOGIN_HINT}, "
                f"or use --mode offline and `runchain sync` later")
        return "online"
    if mode == "offline":
        return "offline"
    chosen = "online" if source else "offline"
    if announce:
        why = (f"W&B credentials found ({source})" if source else
               f"no W&B credentials found; to go online, {LOGIN_HINT}")
        print(f"runchain: mode auto -> {chosen} ({why})", file=sys.stderr)
    return chosen
