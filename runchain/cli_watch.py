"""``--watch`` for ``runchain tree`` and ``runchain report``: the command line's side of
``runchain.watch`` (the options, the redraws, the one line at Ctrl-C)."""

from __future__ import annotations

from typing import Callable

import click

from .source import Source
from .views import visible
from .watch import watch


def watch_options(command):
    """``--watch``: redraw each time the folder's run files change; ``--interval``: how often to look."""
    command = click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
                           help="with --watch: seconds between looks at the run files")(command)
    return click.option("--watch", "watching", is_flag=True, help="redraw each time a run logs or "
                        "starts, until Ctrl-C (a local folder only)")(command)


def watched(open_: Callable[[set[str]], Source], draw: Callable[[Source], None], interval: float,
            last: Callable[[Source], None] | None = None) -> None:
    """``draw(source)`` now and after each change of the run files (``runchain.watch``), each
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
