"""Read a W&B project through the public API: every run's place in the tree, and chain histories.

What runchain asks W&B for (``docs/chains.md``, "Reading from W&B"):

- One paged listing, ``api.runs(path, per_page=PER_PAGE, lazy=False)``. Each page carries
  every run's config (the breadcrumbs) and summary (the last local ``_step`` and the
  checkpoint steps ``save_checkpoint`` lists), so a project of runchain runs costs one
  request per page, however many runs it holds. (``lazy=True``, wandb's default, would
  fetch config and summary with one more request per run.)
- Only where a run has no breadcrumbs (plain wandb code keeping to the contract) or no
  checkpoint list in its summary: the runs' used and logged artifacts, 50 runs a request
  (``project_lineage``); run by run (``run.used_artifacts()``, ``artifact.logged_by()``,
  ``run.logged_artifacts()``) where the server refuses that query, with one note.
- Only for a run on a declared step axis: one short ``scan_history`` for its first step.
- For one chain's history: one ``run.scan_history`` of every column for each run of the
  chain, cut at the step the next run started from; for a run of wide rows, one keyed
  scan per metric (``project_history``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from typing import Any, Iterable, Mapping, Sequence

from tqdm import tqdm

from ..core.breadcrumbs import Breadcrumbs, read_breadcrumbs
from ..core.classify import (NOT_HERE, PROPER_TYPES, Classified, left_out_notes, run_axis,
                             unlogged_axis_note, unplaceable_note)
from ..core.contract import (CHECKPOINT_TYPE, CONFIG_KEY, LOCAL_STEP,
                             SUMMARY_CHECKPOINTS, as_step, checkpoint_label, fork_point,
                             is_chain_view, config_branch_point, config_declared_axis, is_step,
                             step_alias, user_config)
from ..core.lineage import CheckpointInfo, RunInfo
from ..core.source import Source
from ..core.stitch import is_metric
from ..errors import ProjectNotFoundError
from ..parallel import threads
from ..wandb_io.api import Memo, classify_artifact, open_api, wandb_requests
from .cache_entry import CacheWarning, DamagedEntry, cache_dir
from .project_cache import load_lineage, run_key, save_lineage, walk_facts, walk_of
from .project_history import fetcher, listed_keys, run_path
from .project_lineage import Edges, LineageRefused, lineage_pages

PER_PAGE = 500  # runs per listing request
# W&B states -> RunInfo.state; anything else ended without finishing, as far as runchain knows
STATES = {"finished": "finished", "failed": "failed", "crashed": "crashed", "running": "running",
          "killed": "failed", "preempted": "crashed", "preempting": "running",
          "pending": "running"}
LIST_HINT = ("list an entity's projects with `python -c \"import wandb; "
             "print([p.name for p in wandb.Api().projects('ENTITY')])\"`")


def _summary_checkpoints(summary: Mapping[str, Any]) -> list[int] | None:
    """``summary["runchain"]["checkpoints"]`` as steps, or None if absent or malformed."""
    saved = summary.get(CONFIG_KEY)
    steps = saved.get(SUMMARY_CHECKPOINTS) if isinstance(saved, dict) else None
    if not isinstance(steps, list) or not all(is_step(s) for s in steps):
        return None
    return sorted(set(steps))


def _metric_keys(summary: Mapping[str, Any]) -> list[str]:
    """The run's metrics as its summary lists them: keys with a number (see ``is_metric``)."""
    return [k for k, v in summary.items() if is_metric(k)
            and isinstance(v, (int, float)) and not isinstance(v, bool)]


def _classified(artifact: Any, where: str, broken: list[tuple[str, str, str]], memo: Memo,
                  axis: str = LOCAL_STEP) -> Classified:
    """``classify`` of a logged artifact (``axis`` where it names none): a checkpoint whose
    step cannot be known is added to ``broken`` as (collection, version, why), for
    ``classify.left_out_notes``; ``memo`` keeps each ``checkpoint.json`` fetched once."""
    found = classify_artifact(artifact, where, memo, axis)
    if found.broken:
        name, version = artifact.name, artifact.version  # "ckpt:v3", "v3"
        broken.append((f"{where}/{name.removesuffix(f':{version}')}", version, found.reason))
    return found


def _used(run: Any, where: str, problems: list[str], memo: Memo,
          paged: Edges | None = None) -> tuple[tuple[str, int, str, bool], ...]:
    """(producer run id, local step, its axis, whether it is a checkpoint proper) of every
    checkpoint ``run`` used, as W&B lists them (``paged``: as ``lineage_pages`` read them,
    else one request for the list and one per producer); a used checkpoint or model that
    is none gets one note (``classify.unplaceable_note``)."""
    used, crumbs = [], CONFIG_KEY in run.config
    inputs = paged[0] if paged is not None else [(a, None) for a in run.used_artifacts()]
    for artifact, producer_id in inputs:
        found = _classified(artifact, where, [], memo)
        if found.step is not None and paged is None:
            producer = artifact.logged_by()
            producer_id = producer.id if producer is not None else None
        if found.step is not None and producer_id is not None:
            used.append((producer_id, found.step, found.step_metric, found.proper))
        elif artifact.type in PROPER_TYPES and not crumbs:  # breadcrumbs name the parent
            why = found.reason if found.step is None else NOT_HERE  # no producer: W&B knows none
            problems.append(unplaceable_note(artifact.name, why))
    return tuple(used)


def _logged(run: Any, where: str, problems: list[str], memo: Memo, declared: str | None,
            paged: Edges | None = None) -> tuple[tuple[CheckpointInfo, str], ...]:
    """The checkpoints ``run`` logged, each with its axis, in logging order, a ``checkpoint``
    after a ``model``; one per (axis, step): the newest version of a step winning, a
    ``checkpoint`` over a ``model``, each named by its step alias where it has one.
    ``declared``: the run's ``define_metric`` axis for all its metrics (``_declared``)."""
    found: dict[tuple[str, int], tuple[CheckpointInfo, str]] = {}
    broken: list[tuple[str, str, str]] = []
    axis = declared or LOCAL_STEP  # a plain run's checkpoints count on its declared axis
    outputs = paged[1] if paged is not None else run.logged_artifacts()
    for artifact in sorted(outputs, key=lambda a: a.type == CHECKPOINT_TYPE):
        classified = _classified(artifact, where, broken, memo, axis)
        if classified.step is not None:
            step, on = classified.step, classified.step_metric
            found.pop((on, step), None)  # the newest goes last, as it was logged
            found[on, step] = (CheckpointInfo(
                step, checkpoint_label(step, artifact.aliases, artifact.version),
                artifact.version), on)
    problems += left_out_notes(broken)
    return tuple(found.values())


def _walk(run: Any, used: bool, logged: bool, where: str, memo: Memo,
          declared: str | None, paged: Edges | None) -> tuple[tuple, tuple | None, list]:
    problems: list[str] = []
    return (_used(run, where, problems, memo, paged) if used else (),
            _logged(run, where, problems, memo, declared, paged) if logged else None, problems)


def _kept_walks(listed: Sequence[Any], lacking: Mapping[str, tuple[bool, bool]],
                declared: Mapping[str, str | None], folder: Any) -> tuple[dict, dict]:
    """The walks the disk cache holds for runs that ended (``project_cache``), and the key
    of each run to walk that ended, to keep its walk under."""
    kept, keys = {}, {}
    for run in listed:
        key = run_key(run)
        if not any(lacking[run.id]) or key is None or folder is None:
            continue
        keys[run.id] = [*key, declared[run.id], *lacking[run.id]]
        try:
            facts = load_lineage(folder, run_path(run), keys[run.id])
            if facts is not None:
                kept[run.id] = walk_of(facts)
        except DamagedEntry as e:
            warnings.warn(f"the cached W&B lineage of {run_path(run)} is damaged ({e}); "
                          f"ignoring it: the run is walked again and the entry rewritten",
                          CacheWarning, stacklevel=3)
    return kept, keys


def _list(listing: Iterable[Any], runs: Any) -> tuple[list[Any], dict[str, Mapping[str, Any]]]:
    """The listed runs, and each one's raw config as the page W&B sent holds it.

    A ``Run`` that wandb 0.31 builds from a listing has lost ``rawconfig["_wandb"]``, where
    W&B keeps a fork's branch point and the ``define_metric`` axes: it parses the page's
    config twice (``Run._load_from_attrs``), and the second pass keeps only the user's keys.
    So the raw config is read from the page itself (``runs.last_response``), and from
    ``run.rawconfig`` where the page has none (a wandb that keeps it)."""
    listed, raw, page = [], {}, None
    for run in listing:
        if getattr(runs, "last_response", None) is not page:  # a page was fetched
            page = runs.last_response
            raw.update(_page_configs(page))
        listed.append(run)
        raw[run.id] = raw.get(run.id) or run.rawconfig
    return listed, raw


def _page_configs(page: Any) -> dict[str, dict[str, Any]]:
    """Run name -> its raw config (``{key: value}``) from one page of a runs listing, as
    ``Runs.last_response`` holds it; a run whose config cannot be read there is left out
    (``_list`` then takes its ``rawconfig``), and so is every run of a page of another shape."""
    try:
        nodes = [edge["node"] for edge in page["project"]["runs"]["edges"]]
    except (KeyError, TypeError):
        return {}
    configs = {}
    for node in nodes:
        try:
            name, config = node["name"], json.loads(node["config"], strict=False)
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(config, dict):
            configs[name] = {k: v["value"] if isinstance(v, dict) and "value" in v else v
                             for k, v in config.items()}
    return configs


def _history_keys(run: Any) -> list[str]:
    """The metrics ``run`` logged with ``run.log``, from the listed ``historyKeys`` (its
    summary also holds what was set in ``run.summary`` alone, such as the Trainer's
    ``train_runtime``); its summary's metrics where the listing has none."""
    keys = listed_keys(run)
    if keys is None:
        return _metric_keys(run.summary_metrics)
    return [k for k in keys if is_metric(k)]


def _declared(run: Any, rawconfig: Mapping[str, Any]) -> str | None:
    """The step metric a run without breadcrumbs declared with ``define_metric`` for all the
    metrics it logged (``_history_keys``), from its raw config
    (``contract.config_declared_axis``); None for a runchain run."""
    if CONFIG_KEY in run.config:
        return None
    return config_declared_axis(rawconfig, _history_keys(run))


def _axis_of(run: Any, walked: Mapping[str, tuple], declared: str | None) -> str:
    """A listed run's axis (``classify.run_axis``), from its config, summary and artifact
    walk: whether it logged a metric is whether its summary holds it."""
    used, logged, _ = walked.get(run.id, ((), None, []))
    return run_axis(read_breadcrumbs(run.config)[0], [axis for _, axis in logged or ()],
                    [axis for producer, _, axis, _ in used if producer != run.id],
                    lambda metric: metric in run.summary_metrics, declared)


def _run_info(run: Any, entity: str, walked: Mapping[str, tuple], axis: str,
              first: int | None, rawconfig: Mapping[str, Any]) -> RunInfo:
    """A listed public ``Run`` as the tree needs it; ``walked`` holds the artifact walks,
    ``axis`` is ``_axis_of`` it, ``first`` its first step on a declared axis, ``rawconfig``
    its raw config (``_list``)."""
    summary = run.summary_metrics  # a plain dict (run.summary wraps nested ones)
    steps = _summary_checkpoints(summary)
    used, logged, walk_problems = walked.get(run.id, ((), None, []))
    crumbs, problems = read_breadcrumbs(run.config)
    if (axis != LOCAL_STEP and summary.get(axis, 0) == 0 and isinstance(summary.get(LOCAL_STEP), int)
            and summary[LOCAL_STEP] > 0):  # the folder reader's rule, from the last values
        problems += (unlogged_axis_note(axis),)
        axis = LOCAL_STEP
    if steps is None:  # from the artifact walk, in step order
        checkpoints = tuple(sorted((c for c, on in logged if on == axis), key=lambda c: c.step))
    else:  # from the summary's list
        checkpoints = tuple(CheckpointInfo(s, step_alias(s), None) for s in steps)
    last = as_step(summary.get(axis))  # on a declared axis: its last value, a float there
    # a fork's branch point is only in the raw config (wandb keeps _wandb out of run.config)
    branch = config_branch_point(rawconfig) or (None, None)
    return RunInfo(id=run.id, project=run.project, name=run.name,
                   state=STATES.get(run.state, "crashed"),
                   last_step=last, checkpoints=checkpoints,
                   used=tuple((producer, step) for producer, step, _, proper in used if proper),
                   used_other=tuple((producer, step) for producer, step, _, proper in used
                                    if not proper),
                   breadcrumbs=crumbs, entity=entity, step_metric=axis,
                   first_step=first,
                   problems=(*problems, *walk_problems),
                   fork=fork_point(run.id, *branch),
                   config=user_config(run.config))


def _plain_child(run: Any, walked: Mapping[str, tuple]) -> bool:
    """Whether ``run`` has no breadcrumbs and used a checkpoint of another run."""
    used = walked.get(run.id, ((), None, []))[0]
    return CONFIG_KEY not in run.config and any(producer != run.id for producer, *_ in used)


def _starts_at_zero(run: Any) -> bool:
    """Whether ``run``'s ``_step`` rows are exactly 0..last, known from the listing: steps
    only grow, so N rows whose last step is N - 1 are those (``historyLineCount`` is in
    every listed page, as the contract test checks)."""
    lines = getattr(run, "historyLineCount", None)  # a listed field, as wandb names it
    last = run.summary_metrics.get(LOCAL_STEP)
    return isinstance(lines, int) and isinstance(last, int) and lines == last + 1


def _first_step(run: Any, axis: str) -> int | None:
    """The first value of ``axis`` that ``run`` logged, from one short scan."""
    for row in run.scan_history(keys=[axis], min_step=0, page_size=1):
        return as_step(row.get(axis))
    return None


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
    api = api or open_api(f"reading W&B project {path}")
    with wandb_requests(path):
        try:
            runs = api.runs(path, per_page=PER_PAGE, lazy=False)
            entity, name = runs.entity, runs.project
            listed, raw = _list(tqdm(runs, total=len(runs), desc=f"listing {entity}/{name}",
                                     unit="run", file=sys.stderr, disable=None, leave=False), runs)
        except ValueError as e:  # wandb: "Could not find project ..."
            raise ProjectNotFoundError(
                f"W&B project {path} not found ({e}); check the entity and project, as in a "
                f"run page's URL, or {LIST_HINT}") from None
    where = f"{entity}/{name}"
    if not listed:
        raise ProjectNotFoundError(f"W&B project {where} has no runs; check the entity and "
                                   f"project, as in a run page's URL, or {LIST_HINT}")

    listed = [run for run in listed if not is_chain_view(run.config)]
    # walk artifacts only where the listing lacks an answer: no breadcrumbs (plain wandb
    # code), or no checkpoint list in the summary
    walks, memo, notes = [], Memo(), []  # each checkpoint.json fetched once in this read
    declared = {run.id: _declared(run, raw[run.id]) for run in listed}
    lacking = {run.id: (Breadcrumbs.from_config(run.config.get(CONFIG_KEY)) is None,
                        _summary_checkpoints(run.summary_metrics) is None) for run in listed}
    kept, keys = _kept_walks(listed, lacking, declared, cache_dir())  # a run that ended: as
    paged: dict[str, Edges] = {}  # walked before; the others' artifacts in pages of 50 runs
    if any((a or b) and r not in kept for r, (a, b) in lacking.items()):
        try:
            paged = lineage_pages(api, entity, name, {r for r, (a, b) in lacking.items()
                                                      if (a or b) and r not in kept})
        except LineageRefused as e:
            notes.append(f"W&B refused runchain's paged lineage query ({e}); each run's "
                         f"artifacts were read with requests of their own (a few per run): "
                         f"see docs/chains.md, \"Reading from W&B\"")
    for run in listed:
        no_crumbs, no_list = lacking[run.id]
        if (no_crumbs or no_list) and run.id not in kept:
            walks.append((run.id, _walk, (run, no_crumbs, no_list, where, memo, declared[run.id],
                                          paged.get(run.id))))
    with wandb_requests(where):
        walked = dict(threads(walks, workers, "walking artifacts"))
    for run in listed:  # a walk of a run that ended is kept for the next read
        if run.id in walked and keys.get(run.id) is not None:
            with contextlib.suppress(OSError):  # caching only saves requests
                save_lineage(cache_dir(), run_path(run), keys[run.id], walk_facts(walked[run.id]))
    walked.update(kept)
    # a run on a declared axis: its first step is the first row's value (one short scan);
    # so is a plain child's on _step, which may go on with its parent's counter, unless the
    # listing shows its rows start at 0. Elsewhere the tree takes 0
    axes = {run.id: _axis_of(run, walked, declared[run.id]) for run in listed}
    children = {run.id for run in listed if axes[run.id] == LOCAL_STEP and _plain_child(run, walked)}
    firsts = {run.id: 0 for run in listed if run.id in children and _starts_at_zero(run)}
    scans = [(run.id, _first_step, (run, axes[run.id])) for run in listed
             if (axes[run.id] != LOCAL_STEP and axes[run.id] in run.summary_metrics)
             or (run.id in children and run.id not in firsts)]
    with wandb_requests(where):
        firsts.update(threads(scans, workers, "reading first steps"))
    infos = [_run_info(run, entity, walked, axes[run.id], firsts.get(run.id), raw[run.id])
             for run in listed]
    summaries = {run.id: run.summary_metrics for run in listed}

    def metric_names(run_ids: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(k for run_id in run_ids for k in _metric_keys(summaries[run_id])))

    def last_values(run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {run_id: {k: summaries[run_id][k] for k in _metric_keys(summaries[run_id])}
                for run_id in run_ids}

    return Source(where=where, runs=infos, fetch=fetcher({run.id: run for run in listed},
                                                          where, workers),
                  metric_names=metric_names, urls={run.id: run.url for run in listed},
                  last_values=last_values, notes=tuple(notes))
