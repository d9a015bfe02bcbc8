"""The ``runchain`` command line. It parses arguments, prints results, and turns
runchain's named errors into messages and non-zero exit codes."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from . import __version__
from .errors import RunchainError
from .lineage import RunNode, Tree
from .source import Source, open_source


def _warn(message, category, filename, lineno, file=None, line=None):
    click.echo(f"warning: {message}", err=True)


def _open(dir: str | None, project: str | None) -> Source:
    warnings.showwarning = _warn  # one line per warning, never a traceback
    if dir is not None and project is not None:
        raise click.UsageError("pass either --dir or --project, not both")
    try:
        source = open_source(dir, project=project)
        for note in source.tree.notes:
            click.echo(f"note: {note}", err=True)
        return source
    except RunchainError as e:
        raise click.ClickException(str(e)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="runchain")
def main() -> None:
    """Run chains on Weights & Biases: checkpoint lineage across resumed and forked runs.

    \b
    Example:
        python do_many.py                 # a demo tree under ./wandb
        runchain tree                     # show it
        runchain chain <leaf_id> --csv chain.csv
    """


def source_options(command):
    """``--dir`` or ``--project``: where the runs are read from."""
    command = click.option("--project", default=None, metavar="ENTITY/PROJECT",
                           help="read the runs of this W&B project instead (needs credentials)")(command)
    return click.option("--dir", "dir", type=click.Path(file_okay=False), default=None,
                        help="wandb/ folder to read [default: $WANDB_DIR/wandb, else ./wandb]")(command)


def _range(first: int, last: int | None) -> str:
    return "no rows" if last is None else f"{first}-{last}"


def _run_json(tree: Tree, node: RunNode) -> dict:
    info = node.info
    return {"id": info.id, "project": info.project, "name": info.name, "state": info.state,
            "parent_run": node.parent_run, "parent_step": node.parent_step,
            "global_offset": node.global_offset, "last_step": info.last_step,
            "depth": node.depth, "children": list(node.children),
            "checkpoints": [{"step": c.step, "alias": c.alias, "version": c.version}
                            for c in info.checkpoints]}


def _depth_first(tree: Tree) -> list[RunNode]:
    order, stack = [], list(reversed(tree.roots))
    while stack:
        node = tree.nodes[stack.pop()]
        order.append(node)
        stack.extend(reversed(node.children))
    return order


@main.command()
@source_options
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of runs")
def tree(dir: str | None, project: str | None, as_json: bool) -> None:
    """Show the tree of runs and checkpoints.

    \b
    Example:
        runchain tree --dir wandb
        runchain tree --project my-team/my-project
        runchain tree --json | jq '.[] | select(.depth == 0)'
    """
    source = _open(dir, project)
    nodes = _depth_first(source.tree)
    if as_json:
        click.echo(json.dumps([_run_json(source.tree, n) for n in nodes], indent=2))
        return
    for node in nodes:
        info = node.info
        last = info.last_step
        origin = f"from {node.parent_run}@{node.parent_step}" if node.parent_run else "root"
        ckpts = ",".join(str(c.step) for c in info.checkpoints) or "-"
        glob = _range(node.global_offset, None if last is None else node.global_offset + last)
        name = f" {info.name!r}" if info.name else ""
        click.echo(f"{'  ' * node.depth}{info.id}{name}  {info.state}  {origin}  "
                   f"steps {_range(0, last)}  global {glob}  checkpoints {ckpts}")


@main.command()
@click.argument("run_id")
@source_options
@click.option("--metric", "metrics", multiple=True, help="metric to include (repeatable) [default: all]")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="write the stitched history to this CSV file ('-' for stdout)")
@click.option("--json", "as_json", is_flag=True, help="print the segments as JSON")
def chain(run_id: str, dir: str | None, project: str | None, metrics: tuple[str, ...],
          csv_path: str | None, as_json: bool) -> None:
    """Show the chain from the root to RUN_ID, cut at each checkpoint step.

    \b
    Example:
        runchain chain 1a2b3c4d
        runchain chain 1a2b3c4d --metric loss/00 --csv chain.csv
    """
    source = _open(dir, project)
    try:
        segments = source.chain(run_id)
        columns = source.history(run_id, keys=metrics or None) if csv_path else None
    except RunchainError as e:
        raise click.ClickException(str(e)) from None
    rows = []
    for seg in segments:
        last = seg.last_step if seg.last_step is not None else source.tree.nodes[seg.run_id].info.last_step
        rows.append({"run_id": seg.run_id, "first_step": 0, "last_step": last,
                     "global_first": seg.global_offset,
                     "global_last": None if last is None else seg.global_offset + last})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif csv_path != "-":
        click.echo(f"chain {segments[0].run_id} -> {run_id}: {len(segments)} runs")
        for row in rows:
            click.echo(f"  {row['run_id']}  keeps steps {_range(0, row['last_step'])}  "
                       f"global {_range(row['global_first'], row['global_last'])}")
    if columns is not None:
        _write_csv(columns, csv_path)


def _write_csv(columns: dict[str, np.ndarray], path: str) -> None:
    keys = ["global_step", "run_id", "step"] + [k for k in columns if k not in
                                                ("global_step", "run_id", "step")]
    out = sys.stdout if path == "-" else open(path, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(out)
        writer.writerow(keys)
        values = [columns[k].tolist() for k in keys]
        writer.writerows(zip(*[[("" if isinstance(v, float) and v != v else v) for v in col]
                               for col in values]))
    finally:
        if out is not sys.stdout:
            out.close()
            click.echo(f"wrote {len(columns['global_step'])} rows to {Path(path)}", err=True)
