"""Read a W&B project through the public API: every run's place in the tree, and chain histories.

What runchain asks W&B for (``docs/chains.md``, "Reading from W&B"):

- One paged listing, ``api.runs(path, per_page=PER_PAGE, lazy=False)``. Each page carries
  every run's config (the breadcrumbs) and summary (the last local ``_step`` and the
  checkpoint steps ``save_checkpoint`` lists), so a project of runchain runs costs one
  request per page, however many runs it holds. (``lazy=True``, wandb's default, would
  fetch config and summary with one more request per run.)
- Only for a run without breadcrumbs (plain wandb code keeping to the contract): the
  checkpoints it used, ``run.used_artifacts()``, and ``artifact.logged_by()`` for each.
- Only for a run whose summary has no checkpoint list: ``run.logged_artifacts()``.
- For one chain's history: ``run.scan_history`` for each run of the chain, cut at the
  step the next run started from. ``scan_history(keys=...)`` returns only the rows that
  hold *every* key asked for, so runchain scans each metric separately, with ``_step``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import wandb
from tqdm import tqdm

try:  # wandb-core's failures, which wandb's paginators pass on unwrapped (wandb 0.2x-0.3x)
    from wandb.sdk.lib.service.service_connection import WandbApiFailedError
except ImportError:  # a wandb without that module raises its own errors.Error subclasses
    WandbApiFailedError = wandb.errors.Error

from .checkpoints import read_checkpoint_json
from .contract import (CHAIN_VIEW_KEY, CHECKPOINT_FILE, CHECKPOINT_TYPE, CONFIG_KEY,
                       STEP_METRIC, SUMMARY_CHECKPOINTS, Breadcrumbs, artifact_name, step_alias)
from .errors import (CheckpointError, CredentialsError, ProjectNotFoundError, RunchainError,
                     SourceError)
from .lineage import CheckpointInfo, RunInfo, Segment
from .mode import DEFAULT_BASE_URL, LOGIN_HINT, credential_source
from .source import Fetch, Source
from .stitch import Columns

PER_PAGE = 500  # runs per listing request
PAGE_SIZE = 10_000  # history steps per scan_history request
STEP = "_step"
# W&B states -> RunInfo.state; anything else ended without finishing, as far as runchain knows
STATES = {"finished": "finished", "failed": "failed", "crashed": "crashed", "running": "running",
          "killed": "failed", "preempted": "crashed", "preempting": "running",
          "pending": "running"}
# What a failed request to W&B raises: wandb's own errors (CommError, AuthenticationError),
# wandb-core's failures that wandb's paginators pass on unwrapped, and network OSErrors
# (requests.ConnectionError, socket errors).
REQUEST_ERRORS = (wandb.errors.Error, WandbApiFailedError, OSError)
LIST_HINT = ("list an entity's projects with `python -c \"import wandb; "
             "print([p.name for p in wandb.Api().projects('ENTITY')])\"`")


def _base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


@contextlib.contextmanager
def wandb_requests(where: str) -> Iterator[None]:
    """Turn a failed request to W&B into ``SourceError`` naming ``where`` and the server."""
    try:
        yield
    except RunchainError:
        raise
    except REQUEST_ERRORS as e:
        raise SourceError(
            f"cannot read {where} from W&B at {_base_url()}: {type(e).__name__}: {e}; check the "
            f"network connection and WANDB_BASE_URL, and that your credentials are valid "
            f"({LOGIN_HINT})") from e


def _step(value: Any) -> int | None:
    """``value`` if it is a non-negative integer (JSON ``true`` is not), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _summary_checkpoints(summary: Mapping[str, Any]) -> list[int] | None:
    """``summary["runchain"]["checkpoints"]`` as steps, or None if absent or malformed."""
    saved = summary.get(CONFIG_KEY)
    steps = saved.get(SUMMARY_CHECKPOINTS) if isinstance(saved, dict) else None
    if not isinstance(steps, list) or any(_step(s) is None for s in steps):
        return None
    return sorted(set(steps))


def _metric_keys(summary: Mapping[str, Any]) -> list[str]:
    """The run's metrics: summary keys with a number, without ``_*`` and ``global_step``."""
    return [k for k, v in summary.items() if not k.startswith("_") and k != STEP_METRIC
            and isinstance(v, (int, float)) and not isinstance(v, bool)]


def _artifact_step(artifact: Any, where: str) -> int:
    """A checkpoint's local step: its metadata's ``step``, else its ``checkpoint.json``."""
    step = _step((artifact.metadata or {}).get("step"))
    if step is not None:
        return step
    path = f"{where}/{artifact.name}"
    try:
        entry = artifact.get_entry(CHECKPOINT_FILE)
    except KeyError:
        raise CheckpointError(f"checkpoint {path} has no step in its metadata and no "
                              f"{CHECKPOINT_FILE}; the contract needs one of them") from None
    with tempfile.TemporaryDirectory() as tmp:
        return read_checkpoint_json(entry.download(root=tmp), path)["step"]


def _used(run: Any, where: str) -> tuple[tuple[str, int], ...]:
    """(producer run id, local step) of every checkpoint ``run`` used, as W&B lists them."""
    used = []
    for artifact in run.used_artifacts():
        if artifact.type != CHECKPOINT_TYPE:
            continue
        producer = artifact.logged_by()
        if producer is not None:  # None: W&B knows no run that logged it
            used.append((producer.id, _artifact_step(artifact, where)))
    return tuple(used)


def _logged(run: Any) -> tuple[CheckpointInfo, ...]:
    """The checkpoints ``run`` logged: ``run-<id>-checkpoint`` versions with a metadata step."""
    found: dict[int, CheckpointInfo] = {}
    for artifact in run.logged_artifacts():
        step = _step((artifact.metadata or {}).get("step"))
        if (artifact.type == CHECKPOINT_TYPE and step is not None
                and artifact.name.split(":")[0] == artifact_name(run.id)):
            found[step] = CheckpointInfo(step, step_alias(step), artifact.version)
    return tuple(found[s] for s in sorted(found))


def _walk(run: Any, used: bool, logged: bool, where: str) -> tuple[tuple, tuple | None]:
    return (_used(run, where) if used else (), _logged(run) if logged else None)


def threaded(calls: Sequence[tuple[Any, Callable[..., Any], tuple]], workers: int,
             desc: str) -> Iterator[tuple[Any, Any]]:
    """Run each ``(key, fn, args)`` on at most ``workers`` threads; yield (key, result) as done.

    The first failure cancels the calls not yet started and is raised.
    """
    if not calls:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(fn, *args): key for key, fn, args in calls}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="req",
                           file=sys.stderr, disable=None, leave=False):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _scan(run: Any, keys: list[str] | None, max_step: int | None) -> list[dict[str, Any]]:
    """History rows of ``run`` with local ``_step < max_step`` (exclusive; None: all)."""
    bound = {} if max_step is None else {"max_step": max_step}
    return list(run.scan_history(keys=keys, min_step=0, page_size=PAGE_SIZE, **bound))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan  # a string, media, a boolean or missing
    return float(value)


def _columns(rows: Mapping[int, Mapping[str, Any]], keys: Iterable[str]) -> dict[str, np.ndarray]:
    """Rows by ``_step`` -> ``_step`` (int64, ascending) and one float64 column per key."""
    steps = sorted(rows)
    columns = {STEP: np.array(steps, np.int64)}
    for key in keys:
        columns[key] = np.array([_number(rows[s].get(key)) for s in steps], np.float64)
    return columns


def _fetcher(runs: Mapping[str, Any], metrics: Mapping[str, list[str]], where: str,
             workers: int) -> Fetch:
    def fetch(segments: Sequence[Segment], keys: Sequence[str] | None) -> dict[str, Columns]:
        """Each segment's rows up to its cut; all metrics, or one scan per key in ``keys``."""
        wanted = None if keys is None else [k for k in dict.fromkeys(keys) if k != STEP]
        calls = []
        for seg in segments:
            # max_step is exclusive, the cut inclusive: keep _step <= last_step
            max_step = None if seg.last_step is None else seg.last_step + 1
            scans = [None] if wanted is None else [[STEP, k] for k in wanted] or [[STEP]]
            calls += [((seg.run_id, j), _scan, (runs[seg.run_id], scan_keys, max_step))
                      for j, scan_keys in enumerate(scans)]
        rows: dict[str, dict[int, dict[str, Any]]] = {seg.run_id: {} for seg in segments}
        with wandb_requests(where):
            for (run_id, _), scanned in threaded(calls, workers, "reading history"):
                merged = rows[run_id]
                for row in scanned:
                    step = _step(row.get(STEP))
                    if step is not None:
                        merged.setdefault(step, {}).update(row)
        return {run_id: _columns(merged, metrics[run_id] if wanted is None else wanted)
                for run_id, merged in rows.items()}

    return fetch


@dataclasses.dataclass(frozen=True)
class _Listed:
    """One run as the listing brought it, before any further request."""

    run: Any  # the public wandb Run
    summary: dict[str, Any]  # run.summary_metrics: a plain dict (run.summary wraps nested ones)
    crumbs: Breadcrumbs | None  # from config["runchain"]; None: walk the used checkpoints

    @property
    def steps(self) -> list[int] | None:
        """Checkpoint steps from the summary; None: walk the logged checkpoints."""
        return _summary_checkpoints(self.summary)


def _project_path(project: str) -> str:
    parts = project.strip().strip("/").split("/")
    if len(parts) > 2 or not all(parts):
        raise ProjectNotFoundError(f"bad W&B project {project!r}: expected entity/project or "
                                   f"project (for your default entity)")
    return "/".join(parts)


def open_project(project: str, api: Any = None, workers: int = 8) -> Source:
    """Read the runs of a W&B project: lineage now, chain histories on demand.

    Args:
        project: ``"entity/project"``, or ``"project"`` for the default entity.
        api: a ``wandb.Api`` to use; default a new one (needs credentials).
        workers: requests in flight at once while walking artifacts and reading histories.

    Returns:
        A ``Source`` whose ``where`` is ``"entity/project"``, ``urls`` maps run id -> run page.

    Raises:
        CredentialsError: no ``api`` and no W&B credentials; checked before any request.
        ProjectNotFoundError: W&B knows no such project, or it holds no runs.
        SourceError: W&B is unreachable, or a request failed; the message names the server.
        CheckpointError: a used checkpoint has neither a metadata step nor a valid
            ``checkpoint.json``.

    Example:
        >>> src = open_project("acme/llm")  # doctest: +SKIP
        >>> cols = src.history(src.tree.roots[0], keys=["train/loss"])
    """
    path = _project_path(project)
    if api is None:
        if credential_source() is None:
            raise CredentialsError(f"reading W&B project {path} needs credentials; {LOGIN_HINT}")
        with wandb_requests(path):
            api = wandb.Api()
    with wandb_requests(path):
        try:
            runs = api.runs(path, per_page=PER_PAGE, lazy=False)
            where = f"{runs.entity}/{runs.project}"
            listed = list(tqdm(runs, total=len(runs), desc=f"listing {where}", unit="run",
                               file=sys.stderr, disable=None, leave=False))
        except ValueError as e:  # wandb: "Could not find project ..."
            raise ProjectNotFoundError(
                f"W&B project {path} not found ({e}); check the entity and project, as in a "
                f"run page's URL, or {LIST_HINT}") from None
    if not listed:
        raise ProjectNotFoundError(f"W&B project {where} has no runs; check the entity and "
                                   f"project, as in a run page's URL, or {LIST_HINT}")

    listed = [run for run in listed if CHAIN_VIEW_KEY not in run.config]  # runchain publish
    found = [_Listed(run, run.summary_metrics, Breadcrumbs.from_config(
        run.config.get(CONFIG_KEY))) for run in listed]
    walks = [(f.run.id, _walk, (f.run, f.crumbs is None, f.steps is None, where))
             for f in found if f.crumbs is None or f.steps is None]
    with wandb_requests(where):
        walked = dict(threaded(walks, workers, "walking artifacts"))

    infos = []
    for f in found:
        run = f.run  # named so the wandb contract test sees what is read from it
        used, logged = walked.get(run.id, ((), None))
        checkpoints = logged if f.steps is None else tuple(
            CheckpointInfo(s, step_alias(s), None) for s in f.steps)
        infos.append(RunInfo(id=run.id, project=run.project, name=run.name,
                             state=STATES.get(run.state, "crashed"),
                             last_step=_step(f.summary.get(STEP)), checkpoints=checkpoints,
                             used=used, breadcrumbs=f.crumbs))
    fetch = _fetcher({run.id: run for run in listed},
                     {f.run.id: _metric_keys(f.summary) for f in found}, where, workers)
    return Source(where=where, runs=infos, fetch=fetch, urls={run.id: run.url for run in listed})
