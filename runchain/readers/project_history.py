"""A W&B run's history, read for a chain: one scan of every column per run, or one per key.

What it asks W&B for (``docs/chains.md``, "Reading from W&B"): for each run of the chain,
one ``run.scan_history`` of every column, cut at the step the next run started from, its
columns split locally (``whole_rows``). Only for a run whose rows are wide (media, tables:
a listed history key of another type than numbers, strings, booleans and nulls), or whose
keys outnumber those asked for more than ``WIDE_RATIO`` times, one keyed scan per metric,
with ``_step``: ``scan_history(keys=...)`` returns only the rows that hold *every* key.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..core.contract import LOCAL_STEP, is_step
from ..core.lineage import Segment
from ..core.source import Fetch
from ..core.stitch import Columns, as_number, rows_to_columns
from ..parallel import threads
from ..wandb_io.api import wandb_requests
from .cache_entry import CacheWarning, DamagedEntry, cache_dir
from .cache_folder import prune
from .project_cache import entry_file, listed_history_keys, load, run_key, save

PAGE_SIZE = 10_000  # history steps per scan_history request
# one scan of every column of a run, rather than one keyed scan per metric, while the run
# logged at most this many keys per key asked for: a request costs 100-300 ms on W&B, a
# narrow column of 10,000 steps ~100 kB, so a few unwanted columns cost less than a scan
WIDE_RATIO = 8
NARROW = frozenset({"number", "string", "boolean", "nil"})  # history value types of no size


def listed_keys(run: Any) -> dict[str, set[str]] | None:
    """Each history key ``run`` logged -> the value types W&B counted for it, from the
    listed ``historyKeys`` (``{"keys": {key: {"typeCounts": [{"type": ...}]}}}``); None
    where the listing has none."""
    keys = (listed_history_keys(run) or {}).get("keys")
    if not isinstance(keys, dict):
        return None
    return {k: {str(c.get("type")) for c in (v or {}).get("typeCounts") or () if isinstance(c, dict)}
            for k, v in keys.items() if isinstance(k, str)}


def narrow(run: Any, kinds: Mapping[str, set[str]] | None = None) -> bool:
    """Whether every history key ``run`` logged holds only ``NARROW`` values, as listed
    (``kinds``: its ``listed_keys``, when the caller has them)."""
    kinds = listed_keys(run) if kinds is None else kinds
    return kinds is not None and all(t <= NARROW for t in kinds.values())


def whole_rows(run: Any, wanted: Sequence[str] | None) -> bool:
    """Whether one scan of every column of ``run`` reads ``wanted`` (None: every key) more
    cheaply than a keyed scan per key: its rows are narrow (``NARROW`` types only, as
    listed) and it logged at most ``WIDE_RATIO`` keys per key wanted."""
    if wanted is None:
        return True
    if len(wanted) < 2:
        return False  # one keyed scan, no more
    kinds = listed_keys(run)
    return kinds is not None and narrow(run, kinds) and len(kinds) <= WIDE_RATIO * len(wanted)


def _last_step(run: Any) -> int | None:
    """The run's last ``_step`` as its listed ``historyKeys`` says, or None."""
    last = (listed_history_keys(run) or {}).get("lastStep")
    return last if is_step(last) else None


def _scan(run: Any, keys: list[str] | None, max_step: int | None) -> list[dict[str, Any]]:
    """History rows of ``run`` with local ``_step < max_step`` (exclusive; None: all).

    ``run.scan_history`` first asks W&B for the run's last step (``RunHistoryKeys``), which
    the listing already gave: where it did, the scan is wandb's own ``HistoryScan``, made
    as ``scan_history`` makes it, bounded by that step, so a run costs 2 requests, not 3.
    """
    last, service_api = _last_step(run), getattr(run, "_service_api", None)
    if last is not None and service_api is not None:
        stop = last + 1 if max_step is None else min(max_step, last + 1)
        try:
            from wandb.apis.public import HistoryScan
            scan = HistoryScan(run=run, service_api=service_api, min_step=0, max_step=stop,
                               keys=keys, page_size=PAGE_SIZE)
        except (ImportError, TypeError):  # another wandb's HistoryScan: scan_history's route
            scan = None
        if scan is not None:
            return list(scan)
    bound = {} if max_step is None else {"max_step": max_step}
    return list(run.scan_history(keys=keys, min_step=0, page_size=PAGE_SIZE, **bound))


def _columns(rows: Mapping[int, Mapping[str, Any]],
             keys: Iterable[str] | None) -> dict[str, np.ndarray]:
    """Rows by ``_step`` -> ``_step`` (int64, ascending) and one float64 column per key in
    ``keys``, or per key that logged a number when ``keys`` is None (``rows_to_columns``)."""
    steps = sorted(rows)
    ordered = [rows[s] for s in steps]
    if keys is None:
        columns = rows_to_columns(ordered)
    else:
        columns = {key: np.array([as_number(row.get(key)) for row in ordered], np.float64)
                   for key in keys}
    columns.pop(LOCAL_STEP, None)
    return {LOCAL_STEP: np.array(steps, np.int64), **columns}


def _pick(columns: Mapping[str, np.ndarray], keys: Sequence[str] | None) -> dict[str, np.ndarray]:
    """A run's whole columns narrowed to ``_step`` and ``keys`` (None: all); a key the run
    never logged as a number is NaN, as a keyed scan gives it."""
    if keys is None:
        return dict(columns)
    steps = columns[LOCAL_STEP]
    return {LOCAL_STEP: steps, **{k: columns[k] if k in columns else np.full(len(steps), np.nan)
                                  for k in keys}}


def run_path(run: Any) -> str:
    """A W&B run's ``entity/project/run id``."""
    return f"{run.entity}/{run.project}/{run.id}"


def fetcher(runs: Mapping[str, Any], where: str, workers: int) -> Fetch:
    def fetch(segments: Sequence[Segment], keys: Sequence[str] | None) -> dict[str, Columns]:
        """Each segment's rows up to its cut: a run that ended, from the disk cache or one
        scan of all its rows (then cached); else one scan of every column up to the cut, or
        one per key in ``keys`` (``whole_rows``)."""
        wanted = None if keys is None else [k for k in dict.fromkeys(keys) if k != LOCAL_STEP]
        folder = cache_dir()
        calls, cached, kept = [], {}, {}
        for seg in segments:
            run = runs[seg.run_id]
            on_step = seg.step_metric == LOCAL_STEP
            axis = [] if on_step or wanted is None or seg.step_metric in wanted else [seg.step_metric]
            asked = None if wanted is None else list(dict.fromkeys([*wanted, *axis]))
            key = run_key(run) if folder is not None and narrow(run) else None
            if key is not None:  # ended: its rows are final, so all of them are read and kept
                try:
                    found = load(folder, run_path(run), key)
                except DamagedEntry as e:
                    warnings.warn(f"the cached W&B history of {run_path(run)} is damaged ({e}); "
                                  f"ignoring it: the run is read from W&B again and the entry "
                                  f"rewritten", CacheWarning, stacklevel=3)
                    found = None
                if found is not None:
                    cached[seg.run_id] = _pick(found, asked)
                    continue
                kept[seg.run_id] = (key, asked)
                calls.append(((seg.run_id, 0), _scan, (run, None, None)))
                continue
            # max_step is exclusive, the cut inclusive: keep _step <= last_step. A cut on a
            # declared axis is made by ``stitch``, on that metric's column, scanned too.
            max_step = None if seg.last_step is None or not on_step else seg.last_step + 1
            scans = ([None] if whole_rows(run, asked) else
                     [[LOCAL_STEP, k] for k in asked] or [[LOCAL_STEP]])
            calls += [((seg.run_id, j), _scan, (run, scan_keys, max_step))
                      for j, scan_keys in enumerate(scans)]
        rows: dict[str, dict[int, dict[str, Any]]] = {
            seg.run_id: {} for seg in segments if seg.run_id not in cached}
        with wandb_requests(where):
            for (run_id, _), scanned in threads(calls, workers, "reading history"):
                merged = rows[run_id]
                for row in scanned:
                    step = row.get(LOCAL_STEP)
                    if is_step(step):
                        merged.setdefault(step, {}).update(row)
        axes = {seg.run_id: [] if seg.step_metric == LOCAL_STEP else [seg.step_metric]
                for seg in segments}
        out, saved = dict(cached), set()
        for run_id, merged in rows.items():
            if run_id in kept:
                key, asked = kept[run_id]
                whole = _columns(merged, None)
                with contextlib.suppress(OSError):  # caching only saves requests
                    save(folder, run_path(runs[run_id]), key, whole)
                    saved.add(entry_file(folder, run_path(runs[run_id])))
                out[run_id] = _pick(whole, asked)
            else:
                out[run_id] = _columns(merged, None if wanted is None else
                                       list(dict.fromkeys([*wanted, *axes[run_id]])))
        if saved:
            with contextlib.suppress(OSError):  # pruning only saves space
                prune(folder, keep=saved)
        return out

    return fetch
