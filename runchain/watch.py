"""The live view: redraw the tree or the report each time a folder's run files change.

``runchain tree --watch`` and ``runchain report --watch`` poll the run files under the
folder (their paths, sizes and modification times: a run that logs grows its file, a run
that starts adds one) every ``interval`` seconds, and redraw when they changed. A redraw
reads through the cache, so only the files that changed are decoded again. The report
written with ``--watch`` reloads itself in the browser (``build_report(reload=...)``),
keeping its view, which lives in the page's URL.

Offline users on air-gapped clusters have no W&B UI to watch a run in: this is theirs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from .readers.run_folders import run_folders

Signature = frozenset  # of (path, size, mtime_ns), one per run file


def signature(folder: str | os.PathLike) -> Signature:
    """Every run file under ``folder`` with its size and modification time."""
    seen = set()
    for paths in run_folders(folder).values():
        for path in paths:
            try:
                stat = Path(path).stat()
            except FileNotFoundError:  # removed since it was listed: the next look sees it gone
                continue
            seen.add((str(path), stat.st_size, stat.st_mtime_ns))
    return frozenset(seen)


def watch(folder: str | os.PathLike, redraw: Callable[[], None], interval: float,
          rounds: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Call ``redraw()`` now, then after each change of the run files under ``folder``,
    looking every ``interval`` seconds, until Ctrl-C (``KeyboardInterrupt`` reaches the
    caller) or, when given, ``rounds`` looks. Returns the number of redraws.

    Example:
        >>> watch("wandb", lambda: print("changed"), interval=2.0)  # doctest: +SKIP
    """
    seen, redraws, looks = None, 0, 0
    while rounds is None or looks < rounds:
        now = signature(folder)
        if now != seen:  # taken before the redraw: a change during it is seen next time
            seen = now
            redraw()
            redraws += 1
        looks += 1
        sleep(interval)
    return redraws
