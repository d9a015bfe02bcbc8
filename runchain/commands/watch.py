"""``--watch`` on ``runchain tree`` and ``runchain report``: redraw each time a folder's run
files change, until Ctrl-C.

``runchain tree --watch`` and ``runchain report --watch`` poll the run files under the
folder (their paths, sizes and modification times: a run that logs grows its file, a run
that starts adds one) every ``interval`` seconds, and redraw when they changed. A redraw
reads through the cache, so only the files that changed are decoded again. The report
written with ``--watch`` reloads itself in the browser (``build_report(reload=...)``),
keeping its view, which lives in the page's URL.

Offline users on air-gapped clusters have no W&B UI to watch a run in: this is theirs.

``watch`` polls and redraws; ``watch_options`` and ``watched`` are the command line's side
(the options, an error as one line, the one line at Ctrl-C).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import click

from ..core.source import Source
from ..readers.local_runs import run_folders
from ..renderers.formats import visible

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


def watch_options(command):
    """``--watch``: redraw each time the folder's run files change; ``--interval``: how often to look."""
    command = click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                           help="with --watch: seconds between looks at the run files")(command)
    return click.option("--watch", "watching", is_flag=True, help="redraw each time a run logs or "
                        "starts, until Ctrl-C (a local folder only)")(command)


def watched(open_: Callable[[set[str]], Source], draw: Callable[[Source], None], interval: float,
            last: Callable[[Source], None] | None = None) -> None:
    """``draw(source)`` now and after each change of the run files (``watch``), each
    source from ``open_(notes already shown)``; an error is one line and the watch goes on.
    Ctrl-C (or SIGTERM, which ``cli._Main`` makes a ``SystemExit``) ends it with one line,
    then, once anything was drawn, ``last(source)`` with the runs as they are then."""
    shown: set[str] = set()  # each note once, not at every redraw
    seen = {"next": open_(shown), "drawn": False}
    where = seen["next"].where

    def redraw():
        try:
            source = seen.pop("next", None) or open_(shown)
            draw(source)
            seen["drawn"] = True
        except click.ClickException as e:
            click.echo(visible(f"error: {e.message}; still watching"), err=True)

    try:
        watch(where, redraw, interval)
    except (KeyboardInterrupt, SystemExit) as stop:
        click.echo("stopped watching", err=True)
        if last is not None and seen["drawn"]:
            last(open_(shown))  # an error here is one line, and a non-zero exit
        if isinstance(stop, SystemExit):
            raise
