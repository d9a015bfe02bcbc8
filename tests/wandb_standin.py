"""An in-memory W&B for the W&B reader and ``runchain sync``, built from real offline run files.

The objects carry the names of wandb's public API that ``runchain.readers.from_project`` and
``runchain.commands.sync`` use: ``Api.runs`` / ``Api.run`` / ``Api.artifact`` /
``Api.default_entity``; the ``Runs`` listing (``entity``, ``project``, ``len``, paged
iteration); a public ``Run`` (``id``, ``name``, ``state``, ``project``, ``entity``,
``url``, ``config``, ``summary_metrics``, ``lastHistoryStep``, ``scan_history``,
``used_artifacts``, ``logged_artifacts``, ``use_artifact``); an ``Artifact`` (``id``,
``name``, ``type``, ``version``, ``metadata``, ``logged_by``, ``get_entry``,
``manifest.entries``) and a
manifest entry (``download``). wandb itself is never patched. ``Api.run`` and
``Api.artifact`` honour the entity and project in the path and raise ``ValueError`` for
what is not there, as wandb does.

What W&B would hold is what an online (or synced) runchain run leaves there: the config
and summary from the run file, the history rows, the logged checkpoints, and, since
offline runs cannot ``use_artifact``, the used checkpoint derived from the breadcrumbs
(``project_from_dir``). ``uploaded_runs`` is what a plain ``wandb sync`` leaves: no used
checkpoints, until ``runchain sync`` attaches them (``StandinApi.add`` puts them on).

Every method that sends a request in the real client counts one in ``api.requests``,
by kind, as the installed wandb 0.31 does it (read in ``wandb/apis/public/runs.py``,
``wandb/apis/public/history.py``, ``wandb/sdk/artifacts/artifact.py``):

| kind | real request |
|---|---|
| ``runs page`` | one page of ``api.runs`` |
| ``run load`` | a lazy run's config/summary (``load_full_data``), or the run ``logged_by`` builds |
| ``default entity`` | ``api.default_entity`` (the viewer query) |
| ``used artifacts page`` | one page of ``run.used_artifacts()`` |
| ``logged artifacts page`` | one page of ``run.logged_artifacts()`` |
| ``logged_by`` | the artifact's created-by query |
| ``manifest`` / ``file download`` | ``artifact.get_entry`` or ``artifact.manifest`` / ``entry.download`` |
| ``lastHistoryStep`` | the history-keys query (``scan_history`` makes it first; ``resume_args`` asks it) |
| ``history page`` | one ``page_size`` step range of a scan |
| ``run load`` (``api.run``) / ``artifact`` | ``api.run(path)`` (not lazy) / ``api.artifact(name)`` |
| ``use artifact`` | ``run.use_artifact(artifact)`` (also listed in ``api.use_calls``) |

``api.fail[kind] = error`` raises ``error`` at that kind of request instead.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import fnmatch
import functools
import json
import math
import threading
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from runchain.core.contract import artifact_name, checkpoint_json_paths, step_alias
from runchain.core.breadcrumbs import breadcrumbs_for
from runchain.readers.record_log import read_run_file, record_kind, scan_records
from wandb.proto import wandb_internal_pb2 as pb

STEP = "_step"


@dataclasses.dataclass
class StandinEntry:
    path: str
    text: str
    api: "StandinApi"

    def download(self, root: str | None = None) -> str:
        self.api.request("file download")
        target = Path(root or ".") / self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text, encoding="utf-8")
        return str(target)


@dataclasses.dataclass
class StandinArtifact:
    name: str  # "run-<id>-checkpoint:v<N>", as a public Artifact names itself
    type: str
    version: str
    aliases: list[str]
    metadata: dict[str, Any]
    files: dict[str, str]  # path in the artifact -> text (only checkpoint.json is kept)
    producer: str  # id of the run that logged it
    api: "StandinApi | None" = None

    @property
    def id(self) -> str:  # the real id is opaque; the name is unique in a stand-in project
        return self.name

    def logged_by(self) -> "StandinRun | None":
        self.api.request("logged_by")
        if self.producer not in self.api.data:
            return None
        self.api.request("run load")  # logged_by() builds a public Run, which loads itself
        return StandinRun(self.api.data[self.producer], self.api, lazy=True)

    @functools.cached_property
    def manifest(self) -> types.SimpleNamespace:  # wandb's ArtifactManifest: .entries by path
        self.api.request("manifest")  # fetched once per artifact object, as wandb does
        return types.SimpleNamespace(entries={name: StandinEntry(name, text, self.api)
                                              for name, text in self.files.items()})

    def get_entry(self, name: str) -> StandinEntry:
        if name not in self.manifest.entries:
            raise KeyError(f"Path not contained in artifact: {name}")
        return self.manifest.entries[name]


@dataclasses.dataclass
class RunData:
    """What W&B stores about one run."""

    id: str
    project: str
    entity: str
    name: str | None
    state: str  # a W&B state: finished, failed, crashed, running, killed, ...
    config: dict[str, Any]
    summary: dict[str, Any]
    history: dict[str, np.ndarray]  # "_step" (int64) + float64 columns, NaN = not logged
    logged: list[StandinArtifact] = dataclasses.field(default_factory=list)
    used: list[StandinArtifact] = dataclasses.field(default_factory=list)
    rows: list[dict[str, Any]] | None = None  # the rows as logged (strings too); else ``history``
    use_records: list[str] = dataclasses.field(default_factory=list)  # "name:label" it used


class StandinRun:
    """A public ``Run``: cheap properties, network calls as methods (each counted)."""

    def __init__(self, data: RunData, api: "StandinApi", lazy: bool):
        self._data, self._api, self._lazy = data, api, lazy
        self.id, self.name, self.state = data.id, data.name, data.state
        self.project, self.entity = data.project, data.entity

    def _load(self) -> RunData:
        if self._lazy:  # wandb: lazy runs fetch config and summaryMetrics on first access
            self._api.request("run load")
            self._lazy = False
        return self._data

    @property
    def url(self) -> str:
        return f"https://wandb.ai/{self.entity}/{self.project}/runs/{self.id}"

    @property
    def config(self) -> dict[str, Any]:  # wandb keeps its own _wandb key out of run.config
        return {k: v for k, v in self._load().config.items() if k != "_wandb"}

    @property
    def rawconfig(self) -> dict[str, Any]:
        return self._load().config

    @property
    def summary_metrics(self) -> dict[str, Any]:
        return self._load().summary

    @property
    def historyLineCount(self) -> int:  # noqa: N802 (wandb's name; listed, lazy or not)
        return int(self._data.history[STEP].size)

    @property
    def lastHistoryStep(self) -> int:  # noqa: N802 (wandb's name)
        self._api.request("lastHistoryStep")
        steps = self._data.history[STEP]
        return int(steps.max()) if steps.size else -1

    def scan_history(self, keys: list[str] | None = None, page_size: int = 1_000,
                     min_step: int = 0, max_step: int | None = None,
                     use_cache: bool = True) -> Iterator[dict[str, Any]]:
        """Rows with ``min_step <= _step < max_step``; with ``keys``, only rows holding them all."""
        self._api.scan_calls.append({"run": self.id, "keys": keys, "min_step": min_step,
                                     "max_step": max_step, "page_size": page_size})
        stop = self.lastHistoryStep + 1  # as wandb: max_step is clamped to the last step + 1
        stop = stop if max_step is None else min(max_step, stop)
        return self._scan(keys, page_size, min_step, stop)

    def _scan(self, keys, page_size, start, stop) -> Iterator[dict[str, Any]]:
        api, columns, logged = self._api, self._data.history, self._data.rows
        api.enter()
        try:
            steps = columns[STEP]
            for low in range(start, stop, page_size):
                api.request("history page")
                for i in np.flatnonzero((steps >= low) & (steps < min(low + page_size, stop))):
                    if logged is not None:
                        row = dict(logged[i])
                    else:
                        row = {k: float(v[i]) for k, v in columns.items()
                               if k != STEP and not math.isnan(v[i])}
                    row[STEP] = int(steps[i])
                    if keys is None:
                        yield row
                    elif all(k in row for k in keys):
                        yield {k: row[k] for k in keys}
        finally:
            api.leave()

    def _artifacts(self, kind: str, artifacts: list[StandinArtifact],
                   per_page: int) -> list[StandinArtifact]:
        for _ in range(max(1, math.ceil(len(artifacts) / per_page))):
            self._api.request(kind)
        return [dataclasses.replace(a, api=self._api) for a in artifacts]

    def used_artifacts(self, per_page: int = 100) -> list[StandinArtifact]:
        return self._artifacts("used artifacts page", self._data.used, per_page)

    def logged_artifacts(self, per_page: int = 100) -> list[StandinArtifact]:
        return self._artifacts("logged artifacts page", self._data.logged, per_page)

    def use_artifact(self, artifact: StandinArtifact, use_as: str | None = None) -> StandinArtifact:
        """Record ``artifact`` as used by this run (an input edge), as W&B does."""
        self._api.request("use artifact")
        self._api.use_calls.append((f"{self.entity}/{self.project}/{self.id}", artifact.name))
        self._data.used.append(dataclasses.replace(artifact, api=None))
        return artifact


class StandinRuns:
    """The ``Runs`` listing: ``entity``, ``project``, ``len`` and paged iteration."""

    def __init__(self, api: "StandinApi", entity: str, project: str, per_page: int, lazy: bool):
        self.entity, self.project, self.per_page = entity, project, per_page
        self._api, self._lazy = api, lazy
        self._pages: list[list[StandinRun]] | None = None
        self._all = [d for d in api.data.values() if (d.entity, d.project) == (entity, project)]

    def _page(self, n: int) -> list[StandinRun]:
        self._api.request("runs page")
        if self.project not in self._api.projects:
            raise ValueError(f"Could not find project {self.project}")  # as wandb's Runs does
        chunk = self._all[n * self.per_page:(n + 1) * self.per_page]
        return [StandinRun(d, self._api, self._lazy) for d in chunk]

    def __len__(self) -> int:
        if self._pages is None:
            self._pages = [self._page(0)]
        return len(self._all)

    def __iter__(self) -> Iterator[StandinRun]:
        if self._pages is None:
            self._pages = [self._page(0)]
        n = 0
        while True:
            if n == len(self._pages):
                if n * self.per_page >= len(self._all):
                    return
                self._pages.append(self._page(n))
            yield from self._pages[n]
            n += 1


class StandinApi:
    """``wandb.Api`` over ``RunData``; counts requests, tracks scans in flight."""

    def __init__(self, runs: list[RunData], default_entity: str = "ent",
                 empty_projects: tuple[str, ...] = ()):
        self.data = {d.id: d for d in runs}
        self.projects = {d.project for d in runs} | set(empty_projects)
        self._default_entity = default_entity
        self.requests: collections.Counter[str] = collections.Counter()
        self.fail: dict[str, BaseException] = {}
        self.scan_calls: list[dict[str, Any]] = []
        self.use_calls: list[tuple[str, str]] = []  # (run path, artifact name) per use_artifact
        self.in_flight = self.max_in_flight = 0
        self.hold: threading.Barrier | None = None  # scans wait here, to show they overlap
        self._lock = threading.Lock()

    def request(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1
        if kind in self.fail:
            raise self.fail[kind]

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.hold is not None:
            try:
                self.hold.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass  # fewer scans left than the barrier's parties

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def default_entity(self) -> str:
        self.request("default entity")
        return self._default_entity

    def runs(self, path: str | None = None, filters: dict | None = None,
             order: str = "+created_at", per_page: int = 50, include_sweeps: bool = False,
             lazy: bool = True) -> StandinRuns:
        entity, _, project = path.rpartition("/")
        return StandinRuns(self, entity or self.default_entity, project, per_page, lazy)

    def add(self, runs: list[RunData]) -> None:
        """Put runs on the stand-in W&B, as an upload does; a run already there gains the
        new segments' config and checkpoints."""
        with self._lock:
            for d in runs:
                old = self.data.get(d.id)
                if old is not None and (old.entity, old.project) == (d.entity, d.project):
                    old.config.update(d.config)
                    old.logged += [a for a in d.logged if a.name not in {b.name for b in old.logged}]
                else:
                    self.data[d.id] = d
                self.projects.add(d.project)

    def _in(self, d: RunData, entity: str | None, project: str | None) -> bool:
        """Whether ``d`` lives in entity/project (a part not given matches, as a bare id does)."""
        return entity in (None, d.entity) and project in (None, d.project)

    def run(self, path: str = "") -> StandinRun:
        *prefix, run_id = path.split("/")
        entity, project = [None] * (2 - len(prefix)) + prefix
        self.request("run load")
        d = self.data.get(run_id)
        if d is None or not self._in(d, entity, project):
            raise ValueError(f"Could not find run {path}")  # wandb: RunNotFoundError(ValueError)
        return StandinRun(d, self, lazy=False)

    def artifact(self, name: str, type: str | None = None) -> StandinArtifact:
        self.request("artifact")
        *prefix, last = name.split("/")
        entity, project = [None] * (2 - len(prefix)) + prefix
        collection, _, alias = last.partition(":")
        for d in self.data.values():
            if not self._in(d, entity, project):
                continue
            for a in reversed(d.logged):  # an alias points at the newest version carrying it
                if a.name.split(":")[0] == collection and alias in (a.version, *a.aliases):
                    if type is not None and a.type != type:  # as wandb's Api.artifact
                        raise ValueError(f"type {type!r} specified but this artifact is of "
                                         f"type {a.type!r}")
                    return dataclasses.replace(a, api=self)
        raise ValueError(f"artifact membership {last!r} not found in '{entity}/{project}'")


# -- building a project ---------------------------------------------------------------

def _state(exit_code: int | None, torn: str | None) -> str:
    if exit_code is None:
        return "crashed" if torn else "running"
    return "finished" if exit_code == 0 else "failed"


def _link_used(runs: list[RunData]) -> None:
    """Each run uses the checkpoint its breadcrumbs name, as ``runchain.start`` does online,
    and the ones its run file's use_artifact records name (as plain wandb code does)."""
    by_id = {d.id: d for d in runs}
    logged = {}  # "name:version" and "name:alias" (the newest carrying it) -> artifact
    for d in runs:
        for a in d.logged:
            collection = a.name.split(":")[0]
            for label in (a.version, *a.aliases):
                logged[f"{collection}:{label}"] = a
    for d in runs:
        crumbs = d.config.get("runchain") or {}
        parent = by_id.get(crumbs.get("parent_run"))
        if parent is not None and parent is not d:  # the reference its breadcrumbs recorded
            d.used = [logged[crumbs["parent_checkpoint"].split("/")[-1]]]
        elif d.use_records:
            d.used = [logged[name] for name in d.use_records if name in logged]


def project_from_dir(wandb_dir: Path, entity: str = "ent") -> list[RunData]:
    """Every run under a real local ``wandb/`` folder, as W&B would hold it once synced."""
    paths = Path(wandb_dir).glob("*run-*/run-*.wandb")  # in start order, to the fraction of a
    # second (folder names tell only the second): the newest version of a shared alias wins
    runs = runs_from_files(sorted(paths, key=lambda p: (read_run_file(p).start_time or 0, p)), entity)
    _link_used(runs)
    return runs


def uploaded_runs(folders: list[Path], entity: str, project: str | None = None) -> list[RunData]:
    """What a plain ``wandb sync`` of these run folders leaves on W&B: the runs, their
    logged checkpoints, and no input edges (offline runs record none)."""
    return runs_from_files([p for f in folders for p in sorted(Path(f).glob("run-*.wandb"))],
                           entity, project)


def runs_from_files(paths: list[Path], entity: str, project: str | None = None) -> list[RunData]:
    """One ``RunData`` per run id in these run files (segments in the order given)."""
    segments: dict[str, list] = {}
    for path in paths:  # folder names sort by time
        run = read_run_file(path, summary=True)
        segments.setdefault(run.run_id, []).append(run)
    runs = []
    for run_id, files in segments.items():
        config, summary, logged, digests = {}, {}, [], {}
        for f in files:
            config.update(f.config)
            summary.update(f.summary)
            for a in f.artifacts:  # W&B numbers versions per artifact name
                count = sum(name == a.name for name, _ in digests)
                version = digests.setdefault((a.name, a.digest), f"v{count}")
                text = {name: Path(a.files[name]).read_text()
                        for name in checkpoint_json_paths(a.files)}
                logged.append(StandinArtifact(f"{a.name}:{version}", a.type, version,
                                              list(a.aliases), dict(a.metadata), text, run_id))
        history = {k: np.concatenate([f.history.get(k, np.full(f.history[STEP].size, np.nan))
                                      for f in files])
                   for k in dict.fromkeys(k for f in files for k in f.history)}
        history[STEP] = history[STEP].astype(np.int64)
        if history[STEP].size:
            summary.setdefault(STEP, int(history[STEP].max()))  # W&B's summary always has it
        declared = {k: v for f in files for k, v in f.declared.items()}
        if declared:  # as an older sender uploaded define_metric: a glob expanded per key
            # (wandb 0.31 sends the glob itself, read through the HTTP stand-in in
            # tests/test_plain_recipes.py)
            axes = list(dict.fromkeys(declared.values()))
            keys = [k for k in history if not k.startswith("_") and k not in axes]
            m = [{"1": axis} for axis in axes]
            for k in keys:
                axis = next((v for g, v in declared.items() if fnmatch.fnmatchcase(k, g)), None)
                m += [{"1": k, "5": axes.index(axis) + 1}] if axis else []
            config.setdefault("_wandb", {})["m"] = m
        last = files[-1]
        runs.append(RunData(run_id, project or files[0].project, entity, last.name,
                            _state(last.exit_code, last.torn), config, summary, history, logged,
                            use_records=[name for f in files for _, name in f.used]))
    return runs


def without_runchain(runs: list[RunData], metadata_steps: bool = True) -> list[RunData]:
    """The runs as plain wandb code would leave them: no ``runchain`` config or summary.

    ``metadata_steps=False`` also drops the checkpoints' metadata step, so only their
    ``checkpoint.json`` tells it.
    """
    runs = copy.deepcopy(runs)
    for d in runs:
        d.config.pop("runchain", None)
        d.summary.pop("runchain", None)
        d.config.get("_wandb", {}).pop("m", None)  # runchain's define_metric of global_step
        for a in d.logged:
            if not metadata_steps:  # one deepcopy: a run's used checkpoint is its parent's
                a.metadata.pop("step", None)
    return runs


def deep_chain(template: RunData, n: int, cuts: tuple[int, ...] = (9, 19, 29)) -> list[RunData]:
    """``n`` runs in one chain, each a copy of ``template`` resumed from the one before it,
    at a checkpoint step taken in turn from ``cuts``."""
    runs, crumbs = [], None
    for i in range(n):
        run_id = f"r{i:04d}"
        parent = runs[-1] if runs else None
        cut = cuts[i % len(cuts)] if parent else None
        crumbs = breadcrumbs_for(run_id, parent and parent.id,
                                 parent and f"{artifact_name(parent.id)}:{step_alias(cut)}", cut,
                                 crumbs)
        d = copy.deepcopy(template)
        d.id, d.config["runchain"], d.used = run_id, crumbs.to_config(), []
        d.logged = [dataclasses.replace(a, name=f"{artifact_name(run_id)}:{a.version}",
                                        producer=run_id) for a in d.logged]
        runs.append(d)
    _link_used(runs)
    return runs


def logged_rows(path: Path) -> list[dict[str, Any]]:
    """A run file's history rows as logged, strings and all (what W&B serves), decoded the
    slow and obvious way: wandb's ``Record`` class and one ``json.loads`` per value."""
    record, rows = pb.Record(), []
    for raw in scan_records(Path(path).read_bytes()).records:
        if record_kind(raw) == "history":
            record.ParseFromString(raw)
            rows.append({item.key or ".".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return [row for row in rows if STEP in row]


def with_logged_rows(runs: list[RunData], wandb_dir: Path) -> list[RunData]:
    """The runs serving their rows as logged (``logged_rows``) instead of decoded columns."""
    for d in runs:
        paths = sorted(Path(wandb_dir).glob(f"*run-*-{d.id}/run-{d.id}.wandb"))
        d.rows = [row for path in paths for row in logged_rows(path)]
        assert len(d.rows) == d.history[STEP].size, d.id
    return runs
