"""A source of runs: the tree, its chains, and their stitched histories.

A source is what a reader hands over (``runchain.readers``: a local ``wandb/`` folder or a
W&B project): every run's lineage facts (``RunInfo``), a way to fetch the histories one
chain needs, and the metric names the reader already has. The graph and chain logic it
hands them to are pure functions (``lineage``, ``stitch``). This module imports no reader.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import json
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import MetricError, MissingExtraError
from . import lineage
from .stitch import (INTERNAL, STITCHED, Columns, is_metric, metric_columns, stitch,
                     stitch_chains, stitched_names)

# (chain segments, metric keys or None for all) -> run id -> columns. Each run's columns hold
# "_step" and at least the rows up to its segment's cut; extra rows are cut by ``stitch``.
Fetch = Callable[[Sequence[lineage.Segment], Sequence[str] | None], Mapping[str, Columns]]
# run ids -> the metric names those runs logged, from what the reader has without a scan (a
# folder's reader decodes those runs' files to know them, all at once: ``histories`` uses it)
MetricNames = Callable[[Sequence[str]], list[str]]
LastValues = Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]]


@dataclasses.dataclass
class Source:
    """Runs read from one place: lineage facts, a fetch for chain histories, metric names."""

    where: str  # a folder, or "entity/project" on W&B
    runs: list[lineage.RunInfo]
    fetch: Fetch
    metric_names: MetricNames
    urls: Mapping[str, str] = dataclasses.field(default_factory=dict)  # run id -> W&B run page
    files: Mapping[str, Sequence[Path]] = dataclasses.field(default_factory=dict)  # run id ->
    # its run files, oldest first (a local folder)
    # `runchain publish` chain views of a local folder, left out of the tree: run id -> the
    # leaf of the chain it shows, its project, and its run files
    chain_views: Mapping[str, tuple[str, str | None, Sequence[Path]]] = dataclasses.field(
        default_factory=dict)
    # run ids -> each run's last value of each metric, where the reader has them without
    # reading histories (a W&B project's run summaries); else ``summaries`` reads them
    last_values: LastValues | None = None
    # runs the reader found but left out (a folder that holds no run, or vanished while it
    # was read), each as a note: the tree's notes say so first
    left_out: tuple[str, ...] = ()
    # what the reader says once of many runs (a folder's runs logged online, whose
    # checkpoints only W&B holds): the tree's notes say so after ``left_out``
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Source({self.where!r}, {len(self.runs)} runs)"

    @functools.cached_property
    def tree(self) -> lineage.Tree:
        tree = lineage.build_tree(self.runs)
        said = (*self.left_out, *self.notes)
        return dataclasses.replace(tree, notes=(*said, *tree.notes)) if said else tree

    def resolve(self, name: str) -> str:
        """The run id ``name`` names: an id, or a display name no other run has (what a
        user types on the command line); raises RunNotFoundError with close matches, or
        with the ids a shared name could mean."""
        return lineage.find_run(self.tree, name).info.id

    def summaries(self, run_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each run's last logged value of each of its metrics (of every run by default),
        as a W&B run summary shows them.

        Example:
            >>> source.summaries()["1a2b3c4d"]["loss/00"]  # doctest: +SKIP
            0.2154
        """
        run_ids = list(self.tree.nodes) if run_ids is None else list(run_ids)
        if self.last_values is not None:
            found = self.last_values(run_ids)
            return {r: dict(found.get(r, {})) for r in run_ids}
        whole = [lineage.Segment(r, None, 0, step_metric=self.tree.nodes[r].info.step_metric)
                 for r in run_ids]
        histories = self.fetch(whole, None)
        return {r: _last_values(histories[r]) for r in run_ids}

    def chains(self) -> list[list[lineage.Segment]]:
        """Every root-to-leaf chain."""
        return lineage.chains(self.tree)

    def chain(self, leaf: str, last_step: int | None = None) -> list[lineage.Segment]:
        """The segments from the root to ``leaf`` (cut at its ``last_step``, inclusive, when
        given); raises RunNotFoundError for an unknown id."""
        return lineage.chain(self.tree, leaf, last_step)

    def metrics(self, leaf: str | None = None) -> list[str]:
        """Metric names, sorted: those the chain to ``leaf`` logged, or every run's.

        Each reader answers from what it has without scanning every history: the folder
        reader from its decoded (cached) columns, the project reader from run summaries.
        """
        runs = [s.run_id for s in self.chain(leaf)] if leaf is not None else list(self.tree.nodes)
        return sorted(self.metric_names(runs))

    def history(self, leaf: str, keys: Sequence[str] | None = None,
                samples: int | None = None, last_step: int | None = None) -> dict[str, np.ndarray]:
        """The chain ending at ``leaf``, stitched: ``global_step``, ``run_id``, ``step``, metrics.

        Only the chain's runs are read, and only ``keys`` when given; ``last_step`` cuts the
        leaf too (inclusive), as ``runchain chain <id>@<step>`` does.
        """
        segments = self.chain(leaf, last_step)
        if keys is not None and not set(keys) <= set(self.metrics(leaf)):
            self.check_metrics(keys)  # some are not in this chain: are they anywhere?
        return stitch(segments, self.fetch(segments, keys), keys=keys, samples=samples)

    def histories(self, leaves: Sequence[str] | None = None,
                  keys: Sequence[str] | None = None) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """(leaf, its stitched history) for each chain, every leaf by default, as ``history``
        gives them. The runs of all of them are read once, in one batch (a folder's files
        decoded at once, on every core; a W&B run scanned once, not once per chain through
        it), so reading every chain costs about what reading every run does. The runs a
        chain shares with the chain before it are copied from that chain, not stitched again
        (``stitch_chains``; the default order, depth first, shares the most); two chains
        are held at a time.

        Example:
            >>> for leaf, cols in source.histories(keys=["loss"]):  # doctest: +SKIP
            ...     print(leaf, cols["loss"][-1])
        """
        leaves = lineage.leaves(self.tree) if leaves is None else list(leaves)
        chains = [self.chain(leaf) for leaf in leaves]  # an unknown leaf raises before any read
        whole: dict[str, lineage.Segment] = {}  # each run once, uncut: stitch cuts each chain
        twice = False  # a run read as two timelines (a rewind): each chain read on its own
        for seg in (s for chain in chains for s in chain):
            twice |= whole.setdefault(seg.run_id, seg).timeline != seg.timeline
        names = self.metric_names(list(whole))  # a folder decodes its files at once here
        if keys is not None and not set(keys) <= set(names):
            self.check_metrics(keys)  # in none of these chains: is it anywhere?
        if twice:
            for leaf in leaves:
                yield leaf, self.history(leaf, keys)
            return
        fetched = self.fetch([dataclasses.replace(s, last_step=None) for s in whole.values()], keys)
        yield from zip(leaves, stitch_chains(chains, fetched, keys=keys))

    def dataframe(self, leaf: str, keys: Sequence[str] | None = None,
                  samples: int | None = None) -> Any:
        """``history(leaf, keys, samples)`` as a pandas ``DataFrame`` (the ``pandas`` extra).

        Example:
            >>> src.dataframe("c", keys=["loss/00"]).plot(x="global_step")  # doctest: +SKIP
        """
        return _pandas().DataFrame(self.history(leaf, keys, samples))

    def arrow(self, leaf: str, keys: Sequence[str] | None = None,
              last_step: int | None = None) -> Any:
        """``history(leaf, keys)`` as a pyarrow ``Table`` (the ``parquet`` extra), columns
        in ``--csv``'s order: ``global_step``, ``run_id``, ``step``, the metrics as float64
        (null where a run did not log them), then ``config/<key>`` for each config key whose
        value differs between the source's runs, each row its run's value.

        Example:
            >>> import pyarrow.parquet as pq  # doctest: +SKIP
            >>> pq.write_table(src.arrow("c"), "chain.parquet")
        """
        pa = require_pyarrow()
        columns = self.history(leaf, keys, last_step=last_step)
        names = stitched_names(columns)
        order = [names["global_step"], names["run_id"], names["step"], *metric_columns(columns)]
        table = {k: pa.array(columns[k], from_pandas=True) for k in order}  # NaN -> null
        chain_runs, row_run = np.unique(columns[names["run_id"]], return_inverse=True)
        configs = [self.tree.nodes[run_id].info.config for run_id in chain_runs.tolist()]
        for key, kind in self._config_kinds.items():
            values = pa.array([_config_value(c.get(key), kind) for c in configs],
                              type=getattr(pa, kind)())
            table[f"config/{key}"] = values.take(pa.array(row_run))
        return pa.table(table)

    @functools.cached_property
    def _config_kinds(self) -> dict[str, str]:
        """``config_columns`` of the tree, found once: an export asks it of every chain."""
        return config_columns(self.tree)

    def branches_dataframe(self, root: str, keys: Sequence[str] | None = None,
                           samples: int | None = None) -> Any:
        """Every chain from ``root`` in one ``DataFrame``, a ``leaf`` column naming each
        chain: the rows of runs that several chains share appear once per chain.

        Example:
            >>> df = src.branches_dataframe(src.tree.roots[0], keys=["loss/00"])  # doctest: +SKIP
            >>> df.pivot_table(index="global_step", columns="leaf", values="loss/00")
        """
        pd = _pandas()
        leaves = [chain[-1].run_id for chain in self.chains() if chain[0].run_id == root]
        if not leaves:
            lineage.find_run(self.tree, root)  # an unknown id: RunNotFoundError, close matches
            raise ValueError(f"run {root!r} is not a root; its root is "
                             f"{self.chain(root)[0].run_id}")
        return pd.concat([pd.DataFrame(self.history(leaf, keys, samples)).assign(leaf=leaf)
                          for leaf in leaves], ignore_index=True)

    def match_metrics(self, patterns: Sequence[str], leaf: str | None = None) -> list[str]:
        """The metrics ``patterns`` name, in their order, each once: a name as it is, a glob
        (``loss/*``, ``*acc*``, ``fnmatch`` rules, case-sensitive) as the metrics it matches,
        sorted by name.

        Raises:
            MetricError: a name no run (of the chain to ``leaf``) logged, or a glob that
                matches none of their metrics.

        Example:
            >>> source.match_metrics(["loss/*", "accuracy/01"])  # doctest: +SKIP
            ['loss/00', 'loss/03', 'accuracy/01']
        """
        every, out = self.metrics(leaf), []
        for pattern in patterns:
            if not any(c in pattern for c in "*?["):
                self.check_metrics([pattern], leaf)
                out.append(pattern)
                continue
            matched = sorted(m for m in every if fnmatch.fnmatchcase(m, pattern))
            if not matched:
                where = f"the chain to {leaf}" if leaf is not None else "the source"
                raise MetricError(f"no metric of {where} matches {pattern!r}; it has "
                                  f"{len(every)} metrics, e.g. {', '.join(every[:5])}")
            out += matched
        return list(dict.fromkeys(out))

    def check_metrics(self, keys: Sequence[str], leaf: str | None = None) -> None:
        """Raise ``MetricError`` for a key no run (of the chain to ``leaf``) logged, with
        close matches. ``history`` checks against the whole source: a metric some chains
        or runs lack is fine there (NaN), a name no run logged is an error.

        Example:
            >>> source.check_metrics(["train/los"])  # doctest: +SKIP
            MetricError: no run of the source logged metric 'train/los'; close matches: train/loss
        """
        known = set(self.metrics(leaf)) | set(INTERNAL) | set(STITCHED)
        unknown = [k for k in dict.fromkeys(keys) if k not in known]
        if not unknown:
            return
        every = self.metrics()
        close = difflib.get_close_matches(unknown[0], every, n=3, cutoff=0.6)
        where = f"the chain to {leaf}" if leaf is not None else "the source"
        elsewhere = [k for k in unknown if k in every]
        raise MetricError(
            f"no run of {where} logged metric {unknown[0]!r}"
            + (f" (other chains did: {', '.join(map(repr, elsewhere))})" if elsewhere else "")
            + (f"; close matches: {', '.join(close)}" if close else
               f"; it has {len(every)} metrics, e.g. {', '.join(every[:5])}"))


def config_columns(tree: lineage.Tree) -> dict[str, str]:
    """The config keys whose value differs between the tree's runs (a run without the key
    differs too), each with the Arrow type its values share: ``bool_``, ``int64``,
    ``float64`` or ``string`` (JSON text where they are of several kinds, or not scalars).

    Example:
        >>> config_columns(tree)  # doctest: +SKIP
        {'lr': 'float64', 'seed': 'int64'}
    """
    configs = [node.info.config for node in tree.nodes.values()]
    keys = dict.fromkeys(k for config in configs for k in config)
    missing = object()
    out = {}
    for key in keys:
        values = [config.get(key, missing) for config in configs]
        if all(_same(v, values[0]) for v in values):
            continue
        present = [v for v in values if v is not missing and v is not None]
        kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else
                 float if isinstance(v, float) else str if isinstance(v, str) else object
                 for v in present}
        out[key] = ("bool_" if kinds == {bool} else
                    "int64" if kinds == {int} and all(-2**63 <= v < 2**63 for v in present) else
                    "float64" if kinds and kinds <= {int, float} else "string")
    return out


def _same(a: Any, b: Any) -> bool:
    """Whether two config values are the same: of one type and equal (1 is not 1.0, nor
    True; a missing key is only itself)."""
    return a is b or (type(a) is type(b) and a == b)


def _config_value(value: Any, kind: str) -> Any:
    """One run's value of a config column of ``kind`` (``config_columns``): itself, or as
    JSON text in a ``string`` column of values of several kinds."""
    if value is None or kind != "string" or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def require_pyarrow() -> Any:
    """The pyarrow module, or ``MissingExtraError`` naming the ``parquet`` extra."""
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError("Parquet and Source.arrow need pyarrow (the parquet extra): "
                                "pip install 'wandb-runchain[parquet]', or from a clone "
                                "pip install -e '.[parquet]'") from None
    return pyarrow


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise MissingExtraError("Source.dataframe needs pandas: pip install pandas, or "
                                "install runchain with its pandas extra ('.[pandas]')") from None
    return pandas


def _last_values(columns: Columns) -> dict[str, Any]:
    """A run's history -> the last value it logged of each metric (NaN: a row without it)."""
    last = {}
    for key, values in columns.items():
        if not is_metric(key):
            continue
        values = np.asarray(values)
        logged = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if logged.size:
            last[key] = logged[-1].item()
    return last
