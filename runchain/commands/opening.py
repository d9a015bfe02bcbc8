"""How a command opens its runs: the ``--dir`` / ``--project`` / ``--only-project``
options, the tree's notes (all of them, or one chain's), a warning as one line, and a
``RunchainError`` as a one-line message. Shared by ``cli.py`` and ``export.py``."""

from __future__ import annotations

import warnings

import click

from ..core.source import Source
from ..errors import RunchainError
from ..readers import open_source
from ..renderers import formats


def echo(line: str, err: bool = False) -> None:
    """Print one line; its control characters (a newline too) as escapes (``formats.visible``)."""
    click.echo(formats.visible(line), err=err)


def warn_line(message, category, filename, lineno, file=None, line=None):
    echo(f"warning: {message}", err=True)


def open_runs(dir: str | None, project: str | None, only_project: str | None = None,
              shown: set[str] | None = None, notes: bool = True) -> Source:
    """The source, its tree's notes printed (those not ``shown`` yet) unless ``notes`` is
    False: a command about one chain prints its runs' alone (``chain_notes``)."""
    warnings.showwarning = warn_line  # one line per warning, never a traceback
    if dir is not None and project is not None:
        raise click.UsageError("pass either --dir or --project, not both")
    if project is not None and only_project is not None:
        raise click.UsageError("--only-project limits a local folder; a --project is one already")
    try:
        source = open_source(dir, project=project, only_project=only_project)
        for note in source.tree.notes if notes else ():
            if shown is None or note not in shown:
                echo(f"note: {note}", err=True)
        (shown if shown is not None else set()).update(source.tree.notes)
        return source
    except RunchainError as e:
        raise click.ClickException(str(e)) from None


def chain_notes(source: Source, run_ids: list[str]) -> None:
    """The notes on the runs of one chain, and how many the tree has on other runs."""
    tree = source.tree
    mine = [note for run_id in run_ids for note in tree.run_notes.get(run_id, ())]
    for note in mine:
        echo(f"note: {note}", err=True)
    others = len(tree.notes) - len(mine)
    if others:
        echo(f"note: {others} more note(s) on runs outside this chain, or on the folder: "
             f"`runchain tree` shows them", err=True)


def source_options(command):
    """``--dir`` or ``--project``: where the runs are read from; ``--only-project``: which."""
    command = click.option("--only-project", default=None, metavar="PROJECT",
                           help="of a folder holding several W&B projects, only this one's runs "
                                "[default: all, each run's project shown]")(command)
    command = click.option("--project", default=None, metavar="ENTITY/PROJECT",
                           help="read the runs of this W&B project instead (needs credentials)")(command)
    return click.option("--dir", "dir", type=click.Path(file_okay=False), default=None,
                        help="wandb/ folder to read [default: $WANDB_DIR/wandb, else ./wandb]")(command)
