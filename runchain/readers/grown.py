"""A run file that grew since it was cached is decoded from where the cached part ended.

A live run's file grows as it logs, and ``runchain report --watch`` or a second look at a
run still training reads it again. The ``CacheEntry`` of a decoded file records where its
last whole record ended (``entry.run.record_end``) and the crc32 of the file's bytes up to
there (``entry.run.prefix_crc``, taken by the read itself). When the file changed (another
cache key), ``resume``
checks it is still the same file, grown: same inode and device, at least that long, and
the same bytes up to ``record_end`` (their crc32, read again). Then only the records from
there on are read: applied to the cached run (config, artifacts, exit, ...), their rows
decoded and appended to the cached columns, and the entry is written anew.

Anything else (a file truncated, rewritten with other bytes, or replaced by another) is
decoded from scratch, as is an entry without a decoded history. A torn tail (a record
still being written) is not part of ``record_end``: it is read again next time, whole.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import RunFileError
from .cache_entry import CacheEntry, DamagedEntry, open_grid, store
from .history_columns import STEP, concat_columns
from .record_log import UNDECODABLE, RunFile, read_records

PIECE = 1 << 20  # bytes crc'd at a time


def prefix_crc(path: str | os.PathLike, end: int) -> int:
    """crc32 of the first ``end`` bytes of ``path``."""
    crc = 0
    with open(path, "rb") as f:
        left = end
        while left > 0:
            piece = f.read(min(PIECE, left))
            if not piece:
                raise OSError(f"{path} is shorter than {end} bytes")
            crc, left = zlib.crc32(piece, crc), left - len(piece)
    return crc


def read_more(run: RunFile) -> RunFile:
    """``run``, as an earlier read of its file left it, with the records the file gained
    since applied (read from ``run.record_end``). Its ``history`` holds the new rows alone;
    ``first_step`` and ``last_step`` cover all of them.

    Raises:
        RunFileError: the file cannot be read.
    """
    first = run.first_step
    try:
        with open(run.path, "rb") as f:
            run = read_records(f, run.path, True, False, dataclasses.replace(run, torn=None))
    except OSError as e:
        raise RunFileError(f"cannot read run file {run.path}: {e.strerror}") from e
    steps = run.history[STEP]
    if steps.size:
        run.first_step = first if first is not None else int(steps[0])
        run.last_step = int(steps[-1])
    return run


def resume(folder: Path, path: Path, key: list[int], entry: CacheEntry) -> CacheEntry | None:
    """The new cache entry of ``path``, decoded from where ``entry`` (an older version's)
    ended; None when the file is not that entry's file grown (then decode it whole).

    ``key`` is the file's new cache key (``cache_entry.file_key``), taken before reading.
    """
    end, crc = entry.run.record_end or 0, entry.run.prefix_crc
    if (entry.grid is None or crc is None or end <= 0 or entry.run.torn == UNDECODABLE
            or entry.key[4:] != key[4:] or key[1] < end):
        return None  # no decoded rows to go on from, another file, or a shorter one
    try:
        if prefix_crc(path, end) != crc:
            return None  # rewritten in place
        old = open_grid(folder, path, entry, heal=_damaged)
        columns = {name: old[name] for name in old}
        # on a copy: reading applies records to the run in place, and entry stays as it was
        run = read_more(copy.deepcopy(entry.run))  # its crc32 goes on from the checked prefix's
    except (OSError, RunFileError, DamagedEntry):
        return None  # the slow way reads it, and says what is wrong
    history = concat_columns([columns, run.history]) if run.history[STEP].size else columns
    history[STEP] = np.asarray(history[STEP], np.int64)
    return store(folder, path, key, run, history)


def _damaged(reason: str) -> Mapping[str, np.ndarray]:
    raise DamagedEntry(reason)
