"""The ``runchain`` command line. It parses arguments, prints results, and turns
runchain's named errors into messages and non-zero exit codes."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import click
import numpy as np

from ..atomic import atomic_open
from ..core.contract import alias_step, parse_ref
from ..core.source import Source
from ..errors import RunchainError
from ..renderers import formats
from ..version import __version__
from .cache import cache
from .export import export, write_parquet
from .opening import chain_notes, echo, open_runs, source_options, warn_line
from .watch import watch_options, watched


class _Main(click.Group):
    """The command group. A reader that stops reading (``runchain chain X --csv - | head``)
    ends the command quietly with exit 0, as ``head`` expects (click's own handler exits 1).
    An error's message (a ``RunchainError``'s too) is printed through ``formats.visible``. SIGTERM
    unwinds the command as Ctrl-C does, so no partial output is left behind."""

    def invoke(self, ctx: click.Context):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return result
        except click.ClickException as e:
            e.message = formats.visible(e.message)
            raise
        except RunchainError as e:  # one a command leaves to this: one line, exit 1
            raise click.ClickException(formats.visible(str(e))) from None
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush at exit
            ctx.exit(0)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="runchain")
def main() -> None:
    """Run chains on Weights & Biases: checkpoint lineage across resumed and forked runs.

    \b
    Example:
        python do_many.py                 # a demo tree under ./wandb
        runchain tree                     # show it
        runchain chain <leaf_id> --csv chain.csv
    """


def _live(dir: str | None, project: str | None, only_project: str | None, interval: float,
          draw, last=None) -> None:
    """``--watch``: ``draw`` the folder's runs as they change (``watch.watched``)."""
    if project is not None:
        raise click.UsageError("--watch watches the run files of a local folder, not a W&B "
                               "project; W&B's own pages are live already")
    watched(lambda shown: open_runs(dir, None, only_project, shown), draw, interval, last)


@main.command()
@source_options
@watch_options
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of runs")
def tree(dir: str | None, project: str | None, only_project: str | None, as_json: bool,
         watching: bool, interval: float) -> None:
    """Show the tree of runs and checkpoints.

    \b
    Example:
        runchain tree --dir wandb
        runchain tree --project my-team/my-project
        runchain tree --json | jq '.[] | select(.depth == 0)'
        runchain tree --watch              # again each time a run logs or starts
    """
    if watching and as_json:
        raise click.UsageError("--watch redraws the tree as text lines; drop --json")
    if watching:
        def draw(source):
            echo(f"-- {time.strftime('%H:%M:%S')}: {len(source.tree.nodes)} runs --")
            for line in formats.tree_lines(source.tree):
                echo(line)
            sys.stdout.flush()
        return _live(dir, project, only_project, interval, draw)
    source = open_runs(dir, project, only_project)
    if as_json:
        summaries = source.summaries()  # the histories, for each metric's last value
        runs = [formats.run_json(source.tree, n, summaries[i]) for i, n in source.tree.nodes.items()]
        _echo_json(runs)
        return
    for line in formats.tree_lines(source.tree):
        echo(line)


@main.command()
@click.argument("run_id", required=False)
@source_options
@click.option("--metric", "metrics", multiple=True,
              help="metric to include, a name or a glob such as 'loss/*' (repeatable) "
              "[default: all]")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="write the stitched history to this CSV file ('-' for stdout)")
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False), default=None,
              help="write the stitched history, with the config keys that differ between "
                   "runs as columns, to this Parquet file (the parquet extra)")
@click.option("--json", "as_json", is_flag=True, help="print the chain as JSON: its segments, "
              "and with --metric each metric's first, last, min and max")
def chain(run_id: str | None, dir: str | None, project: str | None, only_project: str | None,
          metrics: tuple[str, ...], csv_path: str | None, parquet_path: str | None,
          as_json: bool) -> None:
    """Show the chain from the root to RUN_ID (or RUN_ID@STEP, cut there too), cut at each
    checkpoint step; with --metric, each metric's first, last, min and max value per run and
    for the chain. RUN_ID may be a run's display name where no other run has it. Without
    RUN_ID, list the leaves, each the end of a chain.

    \b
    Example:
        runchain chain                      # the leaves to choose from
        runchain chain 1a2b3c4d
        runchain chain 1a2b3c4d@599         # the chain ending at that run's step 599
        runchain chain 1a2b3c4d --metric 'loss/*'
        runchain chain 1a2b3c4d --metric loss/00 --csv chain.csv
        runchain chain 1a2b3c4d --parquet chain.parquet
    """
    source = open_runs(dir, project, only_project, notes=run_id is None)
    if run_id is None:
        _list_leaves(source)
        return
    try:
        at = None
        if "@" in run_id:  # <id>@<step>, the form checkpoint references use
            run_id, at = run_id.partition("@")[0], alias_step(parse_ref(run_id).alias)
        run_id = source.resolve(run_id)
        segments = source.chain(run_id, at)
        chain_notes(source, [s.run_id for s in segments])
        metrics = tuple(source.match_metrics(metrics))  # globs: loss/*
        columns = (source.history(run_id, keys=metrics or None, last_step=at)
                   if csv_path or metrics else None)
        if parquet_path is not None:
            write_parquet(source.arrow(run_id, metrics or None, last_step=at), parquet_path)
    except RunchainError as e:
        raise click.ClickException(str(e)) from None
    shown = formats.chain_json(source.tree, segments, columns if metrics else None)
    if as_json:
        _echo_json(shown)
    elif csv_path != "-":
        for line in formats.chain_lines(segments, shown["segments"]):
            echo(line)
        for line in formats.figure_lines(shown):
            echo(line)
    if csv_path is not None:
        if metrics:  # say where a metric asked for is missing
            for key, lacking in formats.empty_metrics(columns, segments).items():
                echo(f"note: metric {key!r} is empty in run(s) {', '.join(lacking)}, "
                      f"which did not log it", err=True)
        _write_csv(columns, csv_path)


def _echo_json(value) -> None:
    """``value`` as strict JSON: NaN and infinities as strings (``formats.strict_json``); JSON
    escapes control characters itself."""
    click.echo(json.dumps(formats.strict_json(value), indent=2, default=str, allow_nan=False))


def _list_leaves(source: Source) -> None:
    """Every leaf with its depth and global range: the chains there are to show."""
    for line in formats.leaf_lines(source.tree):
        echo(line)
    echo("show one with: runchain chain <leaf>  (or <run>@<step> for a chain ending "
          "at a checkpoint)", err=True)


@main.command()
@source_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="runchain-report.html",
              show_default=True, help="HTML file to write")
@click.option("--metric", "metrics", multiple=True,
              help="metric to chart first, a name or a glob such as 'loss/*' (repeatable; "
              "the page's picker offers every metric) [default: every metric, in sections by "
              "group; --static: the first four by name]")
@click.option("--leaf", "leaves", multiple=True, help="draw the chain to this run (repeatable) "
              "[default: every leaf]")
@click.option("--static", is_flag=True, help="pictures (PNG) instead of interactive charts, "
              "for printing")
@watch_options
def report(dir: str | None, project: str | None, only_project: str | None, output: str,
           metrics: tuple[str, ...], leaves: tuple[str, ...], static: bool, watching: bool,
           interval: float) -> None:
    """Write a self-contained HTML report: tree map, chains, branches, runs.

    \b
    Example:
        runchain report -o report.html
        runchain report --leaf 1a2b3c4d --metric 'loss/*'
        runchain report --static -o report-print.html
        runchain report --watch            # rewritten as runs log; the open page reloads itself
    """
    from ..renderers.report import write_report  # matplotlib loads only for --static

    def draw(source, live=watching):
        try:
            found = tuple(source.match_metrics(metrics))  # globs: loss/*
            ends = tuple(source.resolve(leaf) for leaf in leaves)  # ids or unique names
            path = write_report(source, output, found or None, ends or None, static=static,
                                reload=max(1.0, interval) if live and not static else None)
        except RunchainError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(f"cannot write the report to {output}: {e.strerror}; pass "
                                       f"-o a path in an existing, writable folder") from None
        echo(f"report: {path.resolve()}" + (f" (written {time.strftime('%H:%M:%S')})" if live else ""))

    if watching:
        # stopped, it is written once more as a plain page, which no longer reloads itself
        return _live(dir, project, only_project, interval, draw,
                     None if static else lambda s: draw(s, live=False))
    draw(open_runs(dir, project, only_project))


@main.command()
@click.argument("leaf")
@source_options
@click.option("--mode", type=click.Choice(["auto", "online", "offline"]), default="auto",
              show_default=True, help="where the chain-view run goes, as for training runs")
@click.option("--to-project", default=None, metavar="PROJECT",
              help="W&B project of the chain-view run [default: the leaf's project]")
@click.option("--metric", "metrics", multiple=True,
              help="metric to log, a name or a glob such as 'loss/*' (repeatable) [default: all]")
@click.option("-v", "--verbose", is_flag=True, help="show wandb's own banner and run summary")
def publish(leaf: str, dir: str | None, project: str | None, only_project: str | None,
            mode: str, to_project: str | None, metrics: tuple[str, ...], verbose: bool) -> None:
    """Log the chain to LEAF as one W&B run (job_type chain-view, named chain-LEAF).

    \b
    Example:
        runchain publish 1a2b3c4d              # online when credentials exist
        runchain publish 1a2b3c4d --mode offline
    """
    from .publish import publish as publish_chain
    source = open_runs(dir, project, only_project)
    try:
        metrics = tuple(source.match_metrics(metrics))  # globs: loss/*
        leaf = source.resolve(leaf)  # an id, or a display name only it has
        run = publish_chain(source, leaf, mode=mode, project=to_project, keys=metrics or None,
                            verbose=verbose)
    except RunchainError as e:
        raise click.ClickException(str(e)) from None
    where = f"offline run in {Path(run.dir).parent}" if run.offline else run.url  # url warns offline
    echo(f"published chain-{leaf} as run {run.id}: {where}")


def _write_csv(columns: dict[str, np.ndarray], path: str) -> None:
    """The stitched columns as CSV (``formats.write_csv``), to stdout or, whole or not at all,
    to ``path``."""
    if path == "-":
        formats.write_csv(columns, sys.stdout)
        return
    try:
        with atomic_open(path, "w", newline="", encoding="utf-8") as out:
            rows = formats.write_csv(columns, out)
    except OSError as e:
        raise click.ClickException(f"cannot write the CSV to {path}: {e.strerror}; pass --csv "
                                   f"a path in an existing, writable folder (or - for stdout)")
    echo(f"wrote {rows} rows to {Path(path)}", err=True)


main.add_command(cache)
main.add_command(export)


@main.command("sync")
@click.option("--dir", "dir", type=click.Path(file_okay=False), default=None,
              help="wandb/ folder to upload [default: $WANDB_DIR/wandb, else ./wandb]")
@click.option("--to-entity", "entity", default=None, metavar="ENTITY",
              help="W&B entity to upload to [default: the run's own, else your default entity]; "
                   "not for runs with checkpoints, which wandb sync leaves where they were logged")
@click.option("--to-project", "project", default=None, metavar="PROJECT",
              help="W&B project to upload to [default: each run's own]; not for runs with "
                   "checkpoints, which wandb sync leaves where they were logged")
@click.option("--dry-run", is_flag=True,
              help="print the plan, parents before children, and change nothing (no credentials needed)")
@click.option("--jobs", type=click.IntRange(min=1), default=4, show_default=True,
              help="uploads at once; a child always waits for its parent's upload")
@click.option("--only-project", default=None, metavar="PROJECT",
              help="of a folder holding several W&B projects, only this one's runs")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="seconds one `wandb sync` may take before it is stopped (it retries an "
                   "unreachable server for a long time)")
def sync_command(dir: str | None, entity: str | None, project: str | None, dry_run: bool,
                 jobs: int, only_project: str | None, timeout: float) -> None:
    """Upload offline runs with `wandb sync`, parents first, then attach their input edges.

    Runs that wandb marked synced, or that were logged online, are not uploaded again, but
    their edges are checked. Rerunning continues an interrupted sync and adds no edge twice.

    \b
    Example:
        runchain sync --dry-run                      # the plan; needs no credentials
        runchain sync --jobs 8                       # each run where it was logged
    """
    from . import sync as syncing
    warnings.showwarning = warn_line  # one line per warning, never a traceback
    try:
        if dry_run:
            runs = syncing.plan(dir, entity=entity, project=project, only_project=only_project)
            for item in runs:
                echo(formats.sync_line(item))
            edges = sum(item.edge is not None for item in runs)
            echo(f"dry run: {sum(bool(item.pending) for item in runs)} of {len(runs)} runs "
                  f"to upload, {edges} edges to check; nothing was changed", err=True)
            _left_alone([item for item in runs if item.problem])
            return
        result = syncing.sync(dir, entity=entity, project=project, jobs=jobs,
                              only_project=only_project, timeout=timeout)
    except RunchainError as e:
        raise click.ClickException(str(e)) from None
    uploaded = set(result.uploaded)
    for item in result.runs:
        if item.run_id in uploaded:
            echo(f"uploaded {item.run_id}  to {item.entity}/{item.project}")
        elif item.problem:
            echo(formats.sync_line(item))
    for link in result.links:
        echo(f"{link.status} {link.run_id} <- {link.ref}" + (f": {link.reason}" if link.reason else ""))
    echo(f"{len(uploaded)} runs uploaded, {len(result.links)} edges checked, "
          f"{len(result.unlinkable)} unlinkable", err=True)
    if result.unlinkable:
        raise click.ClickException(
            f"{len(result.unlinkable)} edge(s) could not be linked (listed above); the runs "
            f"themselves were uploaded. Fix the cause and run `runchain sync` again")
    _left_alone(result.problems)


def _left_alone(runs) -> None:
    """Exit 1 after the rest was done, when some runs had to be left alone."""
    if runs:
        raise click.ClickException(
            f"{len(runs)} run(s) left alone (listed above with why); the others went on. Fix "
            f"the cause and run `runchain sync` again")
