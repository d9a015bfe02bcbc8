"""Chains out to Parquet, read back as an analyst would: DuckDB and Polars on the files
``runchain chain --parquet`` and ``runchain export --parquet`` write, from real offline runs."""

from __future__ import annotations

import csv
import io
import math
import os

import duckdb
import polars as pl

import runchain
from helpers import cli, plain_run, runchain_process

PARQUET_MISSING = ("Error: Parquet and Source.arrow need pyarrow (the parquet extra): pip "
                   "install 'wandb-runchain[parquet]', or from a clone pip install -e '.[parquet]'")


def csv_rows(text: str) -> tuple[list[str], list[tuple]]:
    """``--csv`` output as Python values: an int as int, a float by its repr (so bit for
    bit), an empty cell as None."""
    lines = list(csv.reader(io.StringIO(text)))

    def value(cell: str):
        if cell == "":
            return None
        for kind in (int, float):
            try:
                return kind(cell)
            except ValueError:
                pass
        return cell
    return lines[0], [tuple(map(value, row)) for row in lines[1:]]


def test_a_chain_in_parquet_is_its_csv_row_for_row_and_bit_for_bit(tree, tmp_path):
    path = tmp_path / "chain.parquet"
    proc = cli("chain", tree["child"], "--dir", tree["dir"], "--parquet", path)
    assert proc.returncode == 0, proc.stderr
    header, want = csv_rows(cli("chain", tree["child"], "--dir", tree["dir"], "--csv", "-").stdout)
    columns = ", ".join(f'"{k}"' for k in header)
    got = duckdb.sql(f"SELECT {columns} FROM '{path}'")
    assert got.columns == header and got.fetchall() == want
    assert len(want) == 20 + 15  # the root cut at 19, then the child's 15 rows
    assert proc.stderr.splitlines()[-1] == f"wrote 35 rows to {path}"


def test_the_config_keys_that_differ_are_columns_each_row_its_runs_value(tree, tmp_path):
    table = runchain.open_source(tree["dir"]).arrow(tree["child"])
    assert table.column_names[:3] == ["global_step", "run_id", "step"]
    assert [n for n in table.column_names if n.startswith("config/")] == [
        "config/lr", "config/n_steps"]  # the child's differ; every other key is the same
    rows = table.select(["run_id", "config/lr"]).to_pylist()
    lr = {r["run_id"]: r["config/lr"] for r in rows}
    assert lr[tree["child"]] == 0.05 and lr[tree["root"]] != 0.05
    assert str(table.schema.field("config/lr").type) == "double"


def test_export_writes_every_chain_as_one_dataset_duckdb_and_polars_read(tree, tmp_path):
    out = tmp_path / "chains"
    proc = cli("export", "--dir", tree["dir"], "--parquet", out)
    assert proc.returncode == 0, proc.stderr
    source = runchain.open_source(tree["dir"])
    leaves = runchain.leaves(source.tree)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"leaf={leaf}" for leaf in leaves)
    glob = f"{out}/**/*.parquet"
    counts = duckdb.sql(f"SELECT leaf, count(*), max(global_step) FROM read_parquet('{glob}', "
                        f"hive_partitioning = true) GROUP BY leaf ORDER BY leaf").fetchall()
    want = {leaf: source.history(leaf) for leaf in leaves}
    assert counts == sorted((leaf, len(h["global_step"]), int(h["global_step"].max()))
                            for leaf, h in want.items())
    frame = pl.scan_parquet(glob, hive_partitioning=True).collect()
    for leaf, history in want.items():
        part = frame.filter(pl.col("leaf") == leaf)
        for key, column in history.items():
            got = part[key].to_list()
            assert got == [None if isinstance(v, float) and math.isnan(v) else v
                           for v in column.tolist()], (leaf, key)
    assert proc.stderr.splitlines()[-1] == (f"wrote {len(leaves)} chains, {frame.height} rows, "
                                            f"to {out}")


def test_export_gives_every_partition_one_schema_even_where_a_run_logged_step(tmp_path):
    """A run that logged its own ``step`` keeps it; runchain's column is then ``runchain/step``
    in every partition, and the chain that lacks the run's key has nulls there."""
    wdir = tmp_path / "wandb"
    wdir.mkdir()
    own = plain_run(wdir, [{"loss": 1.0 + i, "step": 100 + i} for i in range(3)], "own")
    plain_run(wdir, [{"loss": 5.0 + i, "acc": 0.5} for i in range(2)], "plain")
    out = tmp_path / "chains"
    assert cli("export", "--dir", wdir, "--parquet", out).returncode == 0
    schemas = {str(duckdb.sql(f"DESCRIBE SELECT * FROM '{p}'").fetchall()) for p in out.glob("*/*")}
    assert len(schemas) == 1
    frame = duckdb.sql(f"SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning = true) "
                       f"ORDER BY leaf, global_step")
    names = frame.columns
    assert names[:3] == ["global_step", "run_id", "runchain/step"]
    assert sorted(names[3:]) == ["acc", "leaf", "loss", "step"]
    run_id = own.stem.removeprefix("run-")
    rows: dict[str, list[dict]] = {}
    for r in frame.fetchall():
        rows.setdefault(r[-1], []).append(dict(zip(names, r)))
    assert rows.pop(run_id) == [
        {"global_step": i, "run_id": run_id, "runchain/step": i, "acc": None, "loss": 1.0 + i,
         "step": 100.0 + i, "leaf": run_id} for i in range(3)]
    [(other, got)] = rows.items()
    assert got == [{"global_step": i, "run_id": other, "runchain/step": i, "acc": 0.5,
                    "loss": 5.0 + i, "step": None, "leaf": other} for i in range(2)]


def test_export_into_a_folder_that_is_not_empty_changes_nothing(tree, tmp_path):
    out = tmp_path / "chains"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    proc = cli("export", "--dir", tree["dir"], "--parquet", out, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"Error: {out} is a folder that is not empty; export "
                                        f"into a new or empty folder (nothing was written)"]
    assert [p.name for p in tmp_path.iterdir()] == ["chains"]  # no staging folder left
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_without_pyarrow_parquet_fails_in_one_line_naming_the_extra(tree, tmp_path, monkeypatch):
    blocker = tmp_path / "blocked"
    (blocker / "pyarrow").mkdir(parents=True)
    (blocker / "pyarrow" / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(blocker), os.environ.get("PYTHONPATH")])))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for args in (("chain", tree["child"], "--parquet", "c.parquet"),
                 ("export", "--parquet", "chains")):
        proc = runchain_process(*args, "--dir", tree["dir"], check=False)
        assert (proc.returncode, proc.stderr.splitlines()) == (1, [PARQUET_MISSING]), args
        assert list(work.iterdir()) == []
