"""``runchain export --parquet DIR`` and ``runchain chain LEAF --parquet FILE``: chains out to
Parquet (``renderers.parquet``), with a one-line error for each way it can fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import RunchainError
from .opening import echo, open_runs, source_options


def write_parquet(table: Any, path: str) -> None:
    """One chain's ``Source.arrow`` table to ``path``, whole or not at all, and one line."""
    from ..renderers.parquet import write_chain
    try:
        write_chain(table, path)
    except OSError as e:
        raise click.ClickException(f"cannot write the Parquet file {path}: {e.strerror}; pass "
                                   f"--parquet a path in an existing, writable folder")
    echo(f"wrote {table.num_rows} rows to {Path(path)}", err=True)


@click.command()
@source_options
@click.option("--parquet", "folder", type=click.Path(file_okay=False), required=True,
              help="write every chain into this new (or empty) folder, a partition per leaf")
@click.option("--metric", "metrics", multiple=True,
              help="metric to include, a name or a glob such as 'loss/*' (repeatable) "
                   "[default: all]")
def export(dir: str | None, project: str | None, only_project: str | None, folder: str,
           metrics: tuple[str, ...]) -> None:
    """Write every chain of the tree as one Parquet dataset, partitioned by leaf: the
    columns global_step, run_id, step, each metric (float64, null where not logged) and
    config/<key> for the config keys that differ between runs. DuckDB, Polars, pandas and
    Spark read the folder as written (the parquet extra).

    \b
    Example:
        runchain export --parquet chains/
        duckdb -c "SELECT leaf, max(global_step) FROM read_parquet('chains/**/*.parquet',
                   hive_partitioning = true) GROUP BY leaf"
    """
    from ..renderers.parquet import write_dataset
    source = open_runs(dir, project, only_project)
    try:
        keys = list(source.match_metrics(metrics)) if metrics else None
        chains, rows = write_dataset(source, folder, keys)
    except RunchainError as e:
        raise click.ClickException(str(e)) from None
    echo(f"wrote {chains} chains, {rows} rows, to {Path(folder)}", err=True)
