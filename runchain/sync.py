"""Upload offline run trees with ``wandb sync``, then attach their input edges on W&B.

Offline, wandb refuses ``use_artifact``, so a resumed run's input edge lives only in its
breadcrumbs (``config["runchain"]``). ``runchain sync`` finishes the job:

1. **Plan.** Every run under the folder, parents before children (the local tree). A run
   folder that wandb already marked synced (``run-<id>.wandb.synced``, which ``wandb sync``
   writes), that was logged online (``run-*``), or that an earlier ``runchain sync``
   uploaded is not uploaded again, but its edge is still checked.
2. **Upload** each run's pending folders with wandb's own ``wandb sync`` (``upload_run``,
   the one boundary), ``jobs`` at once; a child starts only after its parent finished.
3. **Link.** For each run whose breadcrumbs name a parent checkpoint:
   ``api.run(child).use_artifact(api.artifact(ref))``, unless ``used_artifacts()``
   already holds it. A parent that is not local but is on W&B links the same way.
4. **Resume.** What is done is kept in ``<dir>/.runchain-sync.json`` (written atomically),
   so a sync that stopped continues where it stopped. runchain never changes or deletes
   wandb's files (``wandb sync`` adds its own bookkeeping, the ``.synced`` marker among it).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from .atomic import atomic_write
from .contract import BREADCRUMBS, CHECKPOINT_TYPE, CheckpointRef, artifact_name, parse_ref, step_alias
from .errors import ReferenceSyntaxError, SyncError
from .lineage import RunInfo
from .parallel import ParentFirstError, parent_first, threads
from .readers import default_wandb_dir, open_folder
from .wandb_api import entity_of, open_api, wandb_requests

STATE_FILE = ".runchain-sync.json"  # next to the run folders; the only file sync writes
OFFLINE_PREFIX = "offline-"  # wandb names offline run folders offline-run-*, online ones run-*


@dataclasses.dataclass(frozen=True)
class Edge:
    """A run's input edge, as its breadcrumbs name it."""

    parent_run: str
    parent_step: int | None  # the parent's local checkpoint step (inclusive)
    ref: CheckpointRef | None  # None when the breadcrumbs' reference is unusable (see problem)
    local: bool  # the parent's run files are in the folder too
    problem: str | None = None  # why the edge cannot be linked, known before asking W&B


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: where it goes on W&B, what to upload, which edge to link."""

    run_id: str
    entity: str | None  # where the run is or goes on W&B; None: the default entity
    project: str | None
    folders: tuple[Path, ...]  # every segment's folder, oldest first
    pending: tuple[Path, ...]  # the folders to upload, oldest first
    skipped: tuple[str, ...]  # why other folders are not: "synced", "online", "uploaded"
    parent: str | None  # the local parent, whose upload must finish first
    edge: Edge | None  # None: a root, or a run without breadcrumbs
    problem: str | None = None  # why this run is left alone (nothing uploaded, no edge linked)

    @property
    def path(self) -> str:
        """``entity/project/run_id`` on W&B (a run keyed ``project/id`` is run ``id`` there)."""
        return f"{self.entity}/{self.project}/{self.run_id.rpartition('/')[2]}"


@dataclasses.dataclass(frozen=True)
class Link:
    """What happened to one edge."""

    run_id: str
    path: str  # the child on W&B, entity/project/run_id
    ref: str  # the parent checkpoint on W&B, entity/project/run-<id>-checkpoint:step-<s>
    status: str  # "linked", "already linked" or "unlinkable"
    reason: str | None = None


@dataclasses.dataclass
class SyncResult:
    runs: list[PlannedRun]  # the plan, parents before children
    uploaded: list[str]  # run ids uploaded by this call, in the order they finished
    links: list[Link]  # one per edge, in plan order

    @property
    def problems(self) -> list[PlannedRun]:
        """The runs left alone, each with its ``problem``."""
        return [item for item in self.runs if item.problem]

    @property
    def unlinkable(self) -> list[Link]:
        return [link for link in self.links if link.status == "unlinkable"]


# -- the boundary: wandb's own upload ----------------------------------------------------

def wandb_sync_args(folders: Sequence[Path], entity: str, project: str) -> list[str]:
    """What follows ``wandb sync`` for one run (``tests/test_wandb_contract.py`` checks them)."""
    return ["--entity", entity, "--project", project, *map(str, folders)]


TIMEOUT = 3600.0  # seconds one `wandb sync` may take; it retries an unreachable server long


def upload_run(folders: Sequence[Path], entity: str, project: str,
               timeout: float = TIMEOUT) -> None:
    """Upload one run's folders (several when resumed in place, oldest first) with
    ``python -m wandb sync``. wandb syncs the files of one run in order of start time.

    Raises:
        SyncError: ``wandb sync`` exited non-zero, or took longer than ``timeout`` seconds
            (it is stopped); the message ends with its last lines.
    """
    cmd = [sys.executable, "-m", "wandb", "sync", *wandb_sync_args(folders, entity, project)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SyncError(f"`wandb sync` took more than {timeout:g} s for "
                        f"{', '.join(f.name for f in folders)} and was stopped; check that W&B "
                        f"is reachable (WANDB_BASE_URL), or pass a longer --timeout") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise SyncError(f"`wandb sync` exited {proc.returncode} for "
                          f"{', '.join(f.name for f in folders)}: {tail}")


# -- the plan -------------------------------------------------------------------------------

def is_synced(run_file: Path) -> bool:
    """Whether ``wandb sync`` marked this run file synced: ``run-<id>.wandb.synced`` next to it."""
    return run_file.with_name(run_file.name + ".synced").exists()


def load_state(root: Path) -> dict[str, Any]:
    """``{"uploaded": {folder name: "entity/project/run_id"}, "linked": {edge keys},
    "damaged": {folder name: what is wrong}}``; an edge key is ``"<run path> <- <checkpoint
    path>"``. An entry of the wrong shape is left out and listed under ``damaged``.

    Raises:
        SyncError: the file is not a JSON object at all; the message says to delete it.
    """
    path = root / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError(f"a JSON {type(state).__name__}, not an object")
    except FileNotFoundError:
        return {"uploaded": {}, "linked": set(), "damaged": {}}
    except (OSError, ValueError) as e:
        raise SyncError(f"cannot read the sync state {path} ({e}); delete it to start over "
                        f"(folders wandb marked synced are still skipped)") from None
    uploaded = state.get("uploaded", {})
    linked = state.get("linked", [])
    good, damaged, kept = {}, {}, {}
    for folder, where in (uploaded.items() if isinstance(uploaded, dict) else ()):
        parts = where.split("/") if isinstance(where, str) else []
        if len(parts) == 3 and all(parts):
            good[folder] = where
        else:  # kept as it is, and its run left alone, until someone looks
            damaged[folder], kept[folder] = (f"{path} records it uploaded to {where!r}, not "
                                             f"entity/project/run"), where
    if not isinstance(uploaded, dict):
        damaged["*"] = f"{path}: 'uploaded' is a JSON {type(uploaded).__name__}, not an object"
    return {"uploaded": good, "damaged": damaged, "kept": kept,
            "linked": {e for e in linked if isinstance(e, str)} if isinstance(linked, list) else set()}


def _save_state(root: Path, state: dict[str, Any]) -> None:
    uploaded = {**state.get("kept", {}), **state["uploaded"]}  # damaged entries stay as found
    text = json.dumps({"uploaded": uploaded, "linked": sorted(state["linked"])},
                      indent=1, sort_keys=True).encode()
    atomic_write(root / STATE_FILE, lambda f: f.write(text))


def _edge(info: RunInfo, local: set[str]) -> Edge | None:
    crumbs = info.breadcrumbs
    if crumbs is None or crumbs.parent_run in (None, info.id):  # a root, or resumed in place
        return None
    parent, step = crumbs.parent_run, crumbs.parent_step
    text = crumbs.parent_checkpoint
    if text is None and isinstance(step, int):
        text = f"{artifact_name(parent)}:{step_alias(step)}"
    edge = Edge(parent, step, None, parent in local)
    if not isinstance(text, str):
        return dataclasses.replace(edge, problem=f"its breadcrumbs name parent {parent} but no "
                                                 f"checkpoint (parent_checkpoint, parent_step)")
    try:
        ref = parse_ref(text)
    except ReferenceSyntaxError as e:
        return dataclasses.replace(edge, problem=f"its breadcrumbs' parent_checkpoint: {e}")
    if ref.run_id != parent.rpartition("/")[2]:  # a parent keyed project/id
        return dataclasses.replace(edge, problem=f"its breadcrumbs name parent {parent} but "
                                                 f"checkpoint {text}, of another run")
    return dataclasses.replace(edge, ref=ref)


def plan(dir: str | Path | None = None, *, entity: str | None = None,
         project: str | None = None, only_project: str | None = None) -> list[PlannedRun]:
    """Every run under ``dir``, parents before children, with what to upload and link.

    Reads local files only, so it needs no credentials (``runchain sync --dry-run``).

    Args:
        dir: a ``wandb/`` folder; default ``$WANDB_DIR/wandb``, else ``./wandb``.
        entity, project: where to upload; default each run's own (the entity: the one
            its run file records, else the API key's default entity, found later).
        only_project: plan only the runs of this W&B project.

    Raises:
        RunNotFoundError: no runs under ``dir``.
        CycleError: the breadcrumbs' parent links form a cycle.

    Example:
        >>> [(r.run_id, r.parent) for r in plan("wandb")]  # doctest: +SKIP
        [('a1', None), ('b2', 'a1')]
    """
    root = Path(dir) if dir is not None else default_wandb_dir()
    source = open_folder(root, only_project=only_project)
    files = source.files
    state = load_state(root)
    local = set(source.tree.nodes)
    planned = []
    for run_id, node in source.tree.nodes.items():  # depth-first: parents before children
        folders, why, where = _placement(files[run_id], (node.info.entity, node.info.project),
                                         state, entity, project)
        problem = _problem(node.info, folders, state["damaged"])
        planned.append(PlannedRun(run_id, *where, folders=folders,
                                  pending=() if problem else tuple(f for f in folders if f not in why),
                                  skipped=tuple(dict.fromkeys(why.values())),
                                  parent=node.parent_run,
                                  edge=None if problem else _edge(node.info, local),
                                  problem=problem))
    for view_id, (leaf, view_project, paths) in source.views.items():  # `runchain publish`
        folders, why, where = _placement(paths, (None, view_project), state, entity, project)
        problem = None if leaf in local else (
            f"a chain view of {leaf}, which is not in this folder to upload first")
        planned.append(PlannedRun(view_id, *where, folders=folders,  # after the leaf it shows
                                  pending=() if problem else tuple(f for f in folders if f not in why),
                                  skipped=tuple(dict.fromkeys(why.values())), parent=leaf,
                                  edge=None, problem=problem))
    return planned


def _placement(paths: Sequence[Path], recorded: tuple[str | None, str | None],
               state: dict[str, Any], entity: str | None,
               project: str | None) -> tuple[tuple[Path, ...], dict[Path, str], tuple]:
    """A run's folders, why some are not uploaded, and where on W&B it is or goes."""
    why: dict[Path, str] = {}
    for path in paths:
        if not path.parent.name.startswith(OFFLINE_PREFIX):
            why[path.parent] = "online"  # logged online: already on W&B
        elif is_synced(path):
            why[path.parent] = "synced"
        elif path.parent.name in state["uploaded"]:
            why[path.parent] = "uploaded"
    folders = tuple(p.parent for p in paths)
    uploaded = [state["uploaded"][f.name] for f in folders if why.get(f) == "uploaded"]
    if uploaded:  # where an earlier runchain sync put it
        where = tuple(uploaded[0].split("/")[:2])
    elif all(f in why for f in folders):  # logged online or synced by wandb: as recorded
        where = recorded
    else:  # --entity/--project say where uploads go
        where = (entity or recorded[0], project or recorded[1])
    return folders, why, where


def _problem(info: RunInfo, folders: Sequence[Path], damaged: dict[str, str]) -> str | None:
    """Why a run must be left alone: nothing to upload it as, bad breadcrumbs, or a damaged
    record of it in the state file. The other runs go on."""
    if info.project is None:
        return ("its run file holds no run record: empty, not a W&B run file, or a run in its "
                "first seconds")
    bad = [p for p in info.problems if p.startswith(BREADCRUMBS)]
    if bad:
        return bad[0]
    wrong = [damaged[f.name] for f in folders if f.name in damaged] or (
        [damaged["*"]] if "*" in damaged else [])
    if wrong:
        return f"{wrong[0]}; fix or delete that entry, then run `runchain sync` again"
    return None


# -- upload, link, sync ----------------------------------------------------------------------

def _upload(root: Path, runs: list[PlannedRun], state: dict[str, Any], jobs: int,
            timeout: float) -> list[str]:
    """Upload every run with pending folders, ``jobs`` at once, each after its parent.

    Raises:
        SyncError: an upload failed; the uploads in flight are let finish and recorded.
    """
    todo = {item.run_id: item for item in runs if item.pending}

    def upload(run_id: str) -> None:
        upload_run(todo[run_id].pending, todo[run_id].entity, todo[run_id].project,
                   timeout=timeout)

    def record(run_id: str) -> None:
        for folder in todo[run_id].pending:
            state["uploaded"][folder.name] = todo[run_id].path
        _save_state(root, state)

    try:
        return parent_first({run_id: item.parent for run_id, item in todo.items()}, upload,
                            jobs, "uploading (wandb sync)", done=record)
    except ParentFirstError as e:
        raise SyncError(
            f"uploading run {e.key} failed: {e.error}. {len(e.finished)} run(s) uploaded in this "
            f"call are recorded in {root / STATE_FILE}; run `runchain sync` again with the same "
            f"options to continue where it stopped") from e.error


def _target(item: PlannedRun, by_id: dict[str, PlannedRun]) -> tuple[str, str | None]:
    """The parent checkpoint's W&B path and, if it cannot be linked, why."""
    edge = item.edge
    if edge.ref is None:
        return f"{artifact_name(edge.parent_run)}:?", edge.problem
    if edge.local:  # where this sync uploaded it (or where it was logged online)
        parent = by_id[edge.parent_run]
        entity, project = parent.entity, parent.project
    else:  # already on W&B: where the breadcrumbs say, else next to the child
        entity, project = edge.ref.entity or item.entity, edge.ref.project or item.project
    ref = f"{entity}/{project}/{edge.ref.short}"
    if item.project is None or project is None:
        return ref, f"run {item.run_id} or its parent records no project; pass --to-project"
    return ref, None


def _link(api: Any, item: PlannedRun, ref: str) -> Link:
    """Attach ``ref`` as the input edge of ``item`` unless W&B lists it as used already."""
    path, edge = item.path, item.edge
    with wandb_requests(f"the edge {path} <- {ref}"):
        try:
            artifact = api.artifact(ref, type=CHECKPOINT_TYPE)
        except ValueError as e:  # wandb: the project or the artifact does not exist
            where = ("was uploaded from this folder, but W&B does not list the checkpoint"
                     if edge.local else "is neither in this folder nor on W&B")
            return Link(item.run_id, path, ref, "unlinkable",
                        f"parent {edge.parent_run} {where} ({e}); upload the parent's run "
                        f"folder, or fix its breadcrumbs, then run `runchain sync` again")
        try:
            remote = api.run(path)
        except ValueError as e:  # wandb's RunNotFoundError
            return Link(item.run_id, path, ref, "unlinkable",
                        f"run {path} is not on W&B ({e}); check that `wandb sync` uploaded "
                        f"it, then run `runchain sync` again")
        if any(used.id == artifact.id for used in remote.used_artifacts()):
            return Link(item.run_id, path, ref, "already linked")
        remote.use_artifact(artifact)
    return Link(item.run_id, path, ref, "linked")


def sync(dir: str | Path | None = None, *, entity: str | None = None,
         project: str | None = None, jobs: int = 4, api: Any = None, timeout: float = TIMEOUT,
         only_project: str | None = None) -> SyncResult:
    """Upload the offline runs under ``dir`` with ``wandb sync`` and link their edges.

    Args:
        dir: a ``wandb/`` folder; default ``$WANDB_DIR/wandb``, else ``./wandb``.
        entity: the W&B entity to upload to; default the run's own, else the API key's.
        project: the W&B project to upload to; default each run's own.
        jobs: uploads (and link requests) at once; a child waits for its parent's upload.
        api: a ``wandb.Api`` to link with; default a new one.
        timeout: seconds one ``wandb sync`` may take before it is stopped.
        only_project: sync only the runs of this W&B project.

    Returns:
        A ``SyncResult``; ``result.unlinkable`` lists the edges that could not be attached.

    Raises:
        CredentialsError: no W&B credentials; checked before anything is read or uploaded.
        SyncError: ``wandb sync`` failed for a run; what finished is recorded, so
            calling ``sync`` again continues.
        SourceError: a request to W&B failed; the message names the server.
        RunNotFoundError, CycleError: as ``plan``.

    Example:
        >>> result = sync("wandb", project="llm")  # doctest: +SKIP
        >>> [link.reason for link in result.unlinkable]
        []
    """
    api = api or open_api("`runchain sync` uploads to W&B, so it",
                          hint=". `runchain sync --dry-run` shows the plan without them")
    root = Path(dir) if dir is not None else default_wandb_dir()
    runs = plan(root, entity=entity, project=project, only_project=only_project)
    if any(item.entity is None for item in runs):
        default = entity_of(api, None, "the runs that record none")
        runs = [item if item.entity else dataclasses.replace(item, entity=default)
                for item in runs]
    missing = [item.run_id for item in runs if item.pending and not item.project]  # --project
    if missing:
        raise SyncError(f"run(s) {', '.join(missing)} record no W&B project; pass --to-project")

    state = load_state(root)
    uploaded = _upload(root, runs, state, max(1, jobs), timeout)

    by_id = {item.run_id: item for item in runs}
    links: dict[str, Link] = {}
    calls = []
    for item in runs:
        if item.edge is None:
            continue
        ref, problem = _target(item, by_id)
        if problem is not None:
            links[item.run_id] = Link(item.run_id, item.path, ref, "unlinkable", problem)
        elif f"{item.path} <- {ref}" in state["linked"]:
            links[item.run_id] = Link(item.run_id, item.path, ref, "already linked")
        else:
            calls.append((item.run_id, _link, (api, item, ref)))
    for run_id, link in threads(calls, max(1, jobs), "linking edges"):
        links[run_id] = link
        if link.status != "unlinkable":
            state["linked"].add(f"{link.path} <- {link.ref}")
            _save_state(root, state)
    return SyncResult(runs, uploaded, [links[item.run_id] for item in runs if item.run_id in links])
