"""A disk cache of what runchain reads from W&B: a run that ended is read from W&B once.

An entry holds one run's whole history, every column a scan of every column returns, as
float64, with ``_step`` (``load``, ``save``); a second one, for a run without
breadcrumbs, its walk as ``from_project`` made it (``load_lineage``, ``save_lineage``).
Each is keyed by ``entity/project/run id`` and checked against what the project's
listing already says of the run (``run_key``): its state, its
``historyLineCount``, its ``heartbeatAt`` and its last step (``historyKeys``). So a warm
read asks W&B only for the listing. A run the listing calls running (or pending, or
preempting) is never served from the cache nor written to it: its rows still grow. A
resume, a rewind or a fork of a finished run moves its ``heartbeatAt``, so the entry no
longer matches and the run is read again. (wandb 0.31's run listing has no ``updatedAt``;
``heartbeatAt`` is the time it has that moves with every write.)

An entry lives beside the local cache's (``cache_entry``), in the same folder and under
the same rules: one file, ``v<FORMAT>/<shard>/<sha1 of the run path>.wbh`` (``.wbl`` for
a walk), that starts with a line ``runchain-wandb <format> <crc32> <length>`` over the
rest (a JSON line: the run's path, its key and its column names; then the columns,
float64 little-endian, one after another; a walk's is one JSON object); written to a temporary file, fsynced and renamed into place, ``0600`` in
``0700`` folders. A damaged entry (a cut, an edit, garbage, another run's) raises
``DamagedEntry``; ``project_history`` (``from_project`` for a walk) then warns once and
reads the run from W&B again.
``runchain cache info`` and ``runchain cache clear`` count and remove these entries with
the others; ``cache_folder.prune`` keeps them under the size cap, least recently used first.

Example:
    >>> key = run_key(listed_run)  # doctest: +SKIP
    >>> columns = load(cache_dir(), "entity/project/1a2b3c4d", key)  # None: not cached
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import PRIVATE_FILE, atomic_write, private_folder
from ..core.contract import LOCAL_STEP
from ..core.lineage import CheckpointInfo
from .cache_entry import FORMAT, DamagedEntry, format_folder, wandb_entry_name

ENDED = ("finished", "failed", "crashed", "killed", "preempted")  # W&B states whose rows are final
_MAGIC = b"runchain-wandb"


def entry_file(folder: Path, run_path: str, kind: str = "h") -> Path:
    """The entry file of the W&B run ``entity/project/run id`` in cache ``folder``: its
    history (``kind`` "h") or its lineage ("l")."""
    name = wandb_entry_name(run_path, kind)  # the cache's file names are made there alone
    return format_folder(folder) / name[:2] / name


def listed_history_keys(run: Any) -> dict[str, Any] | None:
    """The run's listed ``historyKeys`` (``{"keys": {...}, "lastStep": N}``), parsed where
    wandb left it a JSON string; None where the listing has none."""
    listed = getattr(run, "historyKeys", None)  # a listed field, as wandb names it
    if isinstance(listed, str):
        try:
            listed = json.loads(listed)
        except ValueError:
            return None
    return listed if isinstance(listed, dict) else None


def run_key(run: Any) -> list[Any] | None:
    """What identifies this version of a listed W&B run's history: its state,
    ``historyLineCount``, ``heartbeatAt`` and last step; None when it may still change (W&B
    lists it as running, or does not say)."""
    state = getattr(run, "state", None)
    lines = getattr(run, "historyLineCount", None)
    beat = getattr(run, "heartbeatAt", None)
    last = (listed_history_keys(run) or {}).get("lastStep")
    if state not in ENDED or not isinstance(lines, int) or not isinstance(beat, str):
        return None
    return [FORMAT, state, lines, beat, last]


def load(folder: Path | None, run_path: str, key: list[Any] | None) -> dict[str, np.ndarray] | None:
    """The cached history of ``run_path`` read at ``key``; None when caching is off, ``key``
    is None, or no entry matches it (an older version's is left to be replaced).

    Raises:
        DamagedEntry: the entry is cut, edited, garbage, or another run's.
    """
    if folder is None or key is None:
        return None
    path = entry_file(folder, run_path)
    body = _read(path)
    if body is None:
        return None
    meta_line, _, grid = body.partition(b"\n")
    try:
        meta = json.loads(meta_line)
        names, rows = list(meta["columns"]), int(meta["rows"])
    except (ValueError, KeyError, TypeError):
        raise DamagedEntry("its description is not runchain's") from None
    if meta.get("run") != run_path:
        raise DamagedEntry(f"it holds run {meta.get('run')!r}, not {run_path!r}")
    if len(grid) != 8 * rows * len(names) or LOCAL_STEP not in names:
        raise DamagedEntry("its columns are not the size it says")
    if meta.get("key") != key:
        return None  # the run changed since: read it again
    values = np.frombuffer(grid, "<f8").reshape(len(names), rows)
    columns = {name: values[i].copy() for i, name in enumerate(names)}
    columns[LOCAL_STEP] = columns[LOCAL_STEP].astype(np.int64)
    return columns


def save(folder: Path | None, run_path: str, key: list[Any] | None,
         columns: Mapping[str, np.ndarray]) -> None:
    """Write ``columns`` (a run's whole history, ``_step`` among them) as the entry of
    ``run_path`` at ``key``; nothing when caching is off or ``key`` is None.

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    if folder is None or key is None:
        return
    names = list(columns)
    rows = len(columns[LOCAL_STEP])
    meta = json.dumps({"run": run_path, "key": key, "columns": names, "rows": rows},
                      separators=(",", ":")).encode()
    grid = np.ascontiguousarray([np.asarray(columns[n], "<f8") for n in names], "<f8")
    _write(entry_file(folder, run_path), meta + b"\n" + grid.tobytes())


def load_lineage(folder: Path | None, run_path: str, key: list[Any] | None) -> Any:
    """The lineage facts (JSON) kept for ``run_path`` at ``key``; None when caching is off,
    ``key`` is None, or no entry matches.

    Raises:
        DamagedEntry: the entry is cut, edited, garbage, or another run's.
    """
    if folder is None or key is None:
        return None
    body = _read(entry_file(folder, run_path, "l"))
    if body is None:
        return None
    try:
        held = json.loads(body)
        run, found_key, facts = held["run"], held["key"], held["lineage"]
    except (ValueError, KeyError, TypeError):
        raise DamagedEntry("its description is not runchain's") from None
    if run != run_path:
        raise DamagedEntry(f"it holds run {run!r}, not {run_path!r}")
    return facts if found_key == key else None


def save_lineage(folder: Path | None, run_path: str, key: list[Any] | None, facts: Any) -> None:
    """Keep ``facts`` (JSON-able) as the lineage entry of ``run_path`` at ``key``.

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    if folder is None or key is None:
        return
    _write(entry_file(folder, run_path, "l"),
           json.dumps({"run": run_path, "key": key, "lineage": facts}, separators=(",", ":")).encode())


def _read(path: Path) -> bytes | None:
    """An entry file's bytes after its header line, checked against it, marked used now
    (for the size cap); None when there is no such file.

    Raises:
        DamagedEntry: unreadable, or its header or checksum does not match its bytes.
    """
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DamagedEntry(f"it is unreadable: {e.strerror}") from None
    head, _, body = data.partition(b"\n")
    match = re.fullmatch(rb"runchain-wandb (\d+) (\d+) (\d+)", head)
    if match is None or int(match[3]) != len(body) or zlib.crc32(body) != int(match[2]):
        raise DamagedEntry("its header or checksum does not match its bytes")
    now = time.time()
    with contextlib.suppress(OSError):
        os.utime(path, (now, now))  # used now: pruned last
    return body


def _write(path: Path, body: bytes) -> None:
    """Write ``body`` under its header line (crc32 and length), atomically, private."""
    head = b"%s %d %d %d\n" % (_MAGIC, FORMAT, zlib.crc32(body), len(body))
    private_folder(path.parent.parent)
    private_folder(path.parent)
    atomic_write(path, lambda f: (f.write(head), f.write(body)), fsync=True, perms=PRIVATE_FILE)


def walk_facts(walked: tuple[Any, Any, list[str]]) -> dict[str, Any]:
    """``from_project``'s walk of a run (its used checkpoints, its logged ones or None, its
    notes) as JSON, for ``save_lineage``."""
    used, logged, problems = walked
    return {"used": [list(u) for u in used], "problems": list(problems),
            "logged": None if logged is None else [
                [c.step, c.alias, c.version, c.timeline, axis] for c, axis in logged]}


def walk_of(facts: Any) -> tuple[Any, Any, list[str]]:
    """The walk ``walk_facts`` kept.

    Raises:
        DamagedEntry: the facts are not of that shape.
    """
    try:
        used = tuple((str(p), int(s), str(m), bool(b)) for p, s, m, b in facts["used"])
        logged = None if facts["logged"] is None else tuple(
            (CheckpointInfo(int(s), str(a), v, t), str(axis)) for s, a, v, t, axis in facts["logged"])
        return used, logged, [str(p) for p in facts["problems"]]
    except (KeyError, TypeError, ValueError):
        raise DamagedEntry("its lineage is not of the shape runchain writes") from None
