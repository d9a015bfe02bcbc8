"""An artifact's files on this machine: a staged local path or a ``file://`` reference.

Offline, wandb stages each file of a logged artifact under ``$WANDB_DATA_DIR`` and the
run file records that path (or, for a reference, its URI). Reading ``checkpoint.json``
from there is how an offline run resolves its parent's checkpoint.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

from ..core.contract import CHECKPOINT_FILE, checkpoint_step
from ..errors import CheckpointError

MAX_BYTES = 16 << 20  # a checkpoint.json is loop state, not weights: those go in files=
INT_DIGITS = 4300  # Python's limit for int(str); a longer integer is read as a float (inf)


def _parse_int(text: str) -> int | float:
    """A JSON integer, or past ``INT_DIGITS`` digits a float (``inf``), which the checks
    then name with its key, where ``int()`` would raise a ValueError naming none."""
    return int(text) if len(text) <= INT_DIGITS else float(text)


def local_path(location: str, what: str) -> Path:
    """Where a file of an artifact is on this machine: a staged path, or a ``file://``
    reference's path (``what`` names the file in errors).

    Raises:
        CheckpointError: a reference this machine cannot open (``s3://``, ``gs://``, ...).
    """
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or os.path.isabs(location):
        return Path(location)
    raise CheckpointError(
        f"{what} is stored by reference at {location}, which runchain cannot open on this "
        f"machine; fetch it with your {parts.scheme}:// tools, or resolve the checkpoint online "
        f"and use checkpoint.artifact.download()")


def leaves_folder(name: str) -> bool:
    """Whether an artifact's file ``name`` would land outside the folder it is put in: an
    absolute path (``/x``, ``\\x``, ``C:x``), a ``..`` part (``/`` or ``\\`` between parts),
    a NUL, or no name at all. A checkpoint's names are someone else's data.

    Example:
        >>> [leaves_folder(n) for n in ("ckpt.pt", "opt/adam.npy", "../x", "a/../../x", "/x")]
        [False, False, True, True, True]
    """
    parts = name.replace("\\", "/").split("/") if isinstance(name, str) else [".."]
    return (not name or "\0" in name or parts[0] == "" or bool(re.match(r"[A-Za-z]:", name))
            or any(part == ".." for part in parts))


def check_entry_names(names: Iterable[str], where: str) -> None:
    """Refuse, before anything is written, a checkpoint whose file names leave its folder.

    Raises:
        CheckpointError: naming the first such entry.
    """
    for name in names:
        if leaves_folder(name):
            raise CheckpointError(
                f"{where} has a file named {name!r}, which leaves the folder it is put in "
                f"(an absolute path, a '..' part or a NUL); runchain refuses to write it; wandb "
                f"itself never logs such a name, so check where this checkpoint came from")


def read_checkpoint_json(location: str, where: str) -> dict[str, Any]:
    """The validated ``checkpoint.json`` at a local path or ``file://`` URI; ``where`` names
    the checkpoint in errors.

    Raises:
        CheckpointError: a remote reference, a missing file, not JSON, or no valid step.
    """
    path = str(local_path(location, f"{CHECKPOINT_FILE} of {where}"))
    if os.path.exists(path) and not os.path.isfile(path):
        raise CheckpointError(f"{CHECKPOINT_FILE} of {where} at {path} is not a file; the "
                              f"contract needs a JSON file there")
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise CheckpointError(
                f"{CHECKPOINT_FILE} of {where} at {path} is {size:,} bytes, over runchain's cap "
                f"of {MAX_BYTES:,}; keep it to loop state and save weights as files=")
        with open(path, encoding="utf-8") as f:
            obj = json.load(f, parse_int=_parse_int)
    except FileNotFoundError:
        raise CheckpointError(
            f"{CHECKPOINT_FILE} of {where} should be at {path}, which no longer exists; wandb "
            f"keeps offline artifact files in WANDB_DATA_DIR until `wandb sync` uploads them "
            f"(the run file records the absolute path it staged them at), so run where that "
            f"path exists, or keep weights out of staging with references=") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{CHECKPOINT_FILE} of {where} is not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(f"{CHECKPOINT_FILE} of {where} nests too deeply to read; keep it "
                              f"to a few levels of loop state") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {CHECKPOINT_FILE} of {where} at {path}: "
                              f"{e.strerror}") from None
    checkpoint_step(obj, where)
    return obj
