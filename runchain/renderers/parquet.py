"""Chains out to Parquet, for the tools analysts use next (DuckDB, Polars, pandas, Spark).

- ``write_chain``: one chain (``Source.arrow``) as one Parquet file, whole or not at all.
- ``write_dataset``: every chain of a source as one dataset, a Hive partition per leaf
  (``DIR/leaf=<leaf>/part-0.parquet``, the leaf percent-encoded as pyarrow writes it),
  all with one schema, so DuckDB and Polars read the folder as written:

      SELECT leaf, max(global_step) FROM read_parquet('DIR/**/*.parquet',
                                                      hive_partitioning = true) GROUP BY leaf

The schema is the union of every chain's columns; a chain that lacks one has nulls there.
Where a run of some chain logged a key named like a stitched column (``step``), runchain's
column is ``runchain/step`` in every partition, as ``stitch`` names it within one chain.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from tqdm import tqdm

from ..atomic import atomic_open
from ..core.source import Source, require_pyarrow
from ..core.stitch import OWN_PREFIX, STITCHED
from ..errors import ExportError


def write_chain(table: Any, path: str | os.PathLike) -> None:
    """``table`` (``Source.arrow``) as a Parquet file at ``path``, whole or not at all."""
    import pyarrow.parquet as pq
    with atomic_open(path, "wb") as out:
        pq.write_table(table, out)


def write_dataset(source: Source, folder: str | os.PathLike,
                  keys: Sequence[str] | None = None) -> tuple[int, int]:
    """Every chain of ``source`` (``Source.chains``) into ``folder``, a partition per leaf.
    The chains are written into a new folder beside it, renamed into place when all are
    done. Returns (chains, rows).

    Raises:
        ExportError: ``folder`` is a file or a folder that is not empty, or cannot be
            written; nothing there is changed.
        MissingExtraError: pyarrow is missing.
    """
    pa = require_pyarrow()
    import pyarrow.parquet as pq
    folder = Path(folder)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
        raise ExportError(f"{folder} is {'a file' if folder.is_file() else 'a folder that is not empty'}; "
                          f"export into a new or empty folder (nothing was written)")
    leaves = [chain[-1].run_id for chain in source.chains()]
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as e:
        raise ExportError(f"cannot write {folder}: {e.strerror}; export into a writable "
                          f"folder") from None
    source.metrics()  # every run read in one batch (a folder's decoded at once), not per chain
    try:
        files, schemas, rows = [], [], 0
        for leaf in tqdm(leaves, desc="exporting chains", unit="chain", file=sys.stderr,
                         disable=None, leave=False):
            table = source.arrow(leaf, keys)
            path = staging / f"leaf={quote(leaf, safe='')}" / "part-0.parquet"
            path.parent.mkdir()
            pq.write_table(table, path)
            files.append(path)
            schemas.append(table.schema)
            rows += table.num_rows
        schema = _one_schema(pa, schemas)
        for path, own in zip(files, schemas):
            if own != schema:
                pq.write_table(_conform(pa, pq.read_table(path), schema), path)
        os.rename(staging, folder)  # onto a missing or empty folder
    except OSError as e:
        raise ExportError(f"cannot write {folder}: {e.strerror}; export into a writable "
                          f"folder (nothing was written)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(leaves), rows


def _one_schema(pa: Any, schemas: Sequence[Any]) -> Any:
    """The union of the chains' columns, in first-seen order; a stitched column's name is
    ``runchain/<name>`` wherever one chain's is."""
    fields: dict[str, Any] = {}
    own = {name for s in schemas for name in STITCHED if OWN_PREFIX + name in s.names}
    for s in schemas:
        for field in s:
            name = field.name
            if name in own and OWN_PREFIX + name not in s.names:  # runchain's: renamed
                fields.setdefault(OWN_PREFIX + name, field.with_name(OWN_PREFIX + name))
            elif name in own:  # a run's own key of that name: a metric, float64
                fields.setdefault(name, pa.field(name, pa.float64()))
            else:
                fields.setdefault(name, field)
    return pa.schema(list(fields.values()))


def _conform(pa: Any, table: Any, schema: Any) -> Any:
    """``table`` with ``schema``'s columns in its order (``_one_schema``), a column it lacks
    all null."""
    own = {f.name.removeprefix(OWN_PREFIX) for f in schema if f.name.startswith(OWN_PREFIX)}
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        if name in own and OWN_PREFIX + name not in table.column_names:
            name = OWN_PREFIX + name  # runchain's own column, as the other chains name it
        columns[name] = column
    return pa.table([columns[f.name].cast(f.type) if f.name in columns
                     else pa.nulls(table.num_rows, f.type) for f in schema], schema=schema)
