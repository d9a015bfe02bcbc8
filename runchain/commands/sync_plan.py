"""The plan of ``runchain sync``: every run of a folder, parents before children, with what
to upload, where it goes on W&B, and which input edge to link (``sync`` carries it out).

A run folder that wandb already marked synced (``run-<id>.wandb.synced``), that was logged
online (``run-*``), or that an earlier ``runchain sync`` uploaded (recorded in
``<dir>/.runchain-sync.json``) is not uploaded again, but its edge is still checked. The
plan reads local files only, so it needs no credentials (``runchain sync --dry-run``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_write
from ..core.breadcrumbs import BREADCRUMBS
from ..core.contract import CheckpointRef, artifact_name, parse_ref, step_alias
from ..core.lineage import RunInfo
from ..errors import ReferenceSyntaxError, SyncError
from ..readers import default_wandb_dir, open_folder
from ..readers.local_runs import logged_online

STATE_FILE = ".runchain-sync.json"  # next to the run folders; with sync.LOCK_FILE, all sync writes


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
    view_of: str | None = None  # a `runchain publish` chain view: the leaf of the chain it shows

    @property
    def path(self) -> str:
        """``entity/project/run_id`` on W&B (a run keyed ``project/id`` is run ``id`` there)."""
        return f"{self.entity}/{self.project}/{self.run_id.rpartition('/')[2]}"


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


def save_state(root: Path, state: dict[str, Any]) -> None:
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
    for note in source.left_out:  # a folder with no run, or gone mid-read: nothing to upload
        warnings.warn(f"{note}; not synced", UserWarning, stacklevel=2)
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
    _refuse_moved_checkpoints(planned, source.tree.nodes)
    for view_id, (leaf, view_project, paths) in source.chain_views.items():  # `runchain publish`
        folders, why, where = _placement(paths, (None, view_project), state, entity, project)
        problem = None if leaf in local else (
            f"a chain view of {leaf}, which is not in this folder to upload first")
        planned.append(PlannedRun(view_id, *where, folders=folders,  # after the leaf it shows
                                  pending=() if problem else tuple(f for f in folders if f not in why),
                                  skipped=tuple(dict.fromkeys(why.values())), parent=leaf,
                                  edge=None, problem=problem, view_of=leaf))
    return planned


def _placement(paths: Sequence[Path], recorded: tuple[str | None, str | None],
               state: dict[str, Any], entity: str | None,
               project: str | None) -> tuple[tuple[Path, ...], dict[Path, str], tuple]:
    """A run's folders, why some are not uploaded, and where on W&B it is or goes."""
    why: dict[Path, str] = {}
    for path in paths:
        if logged_online(path):
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


def _refuse_moved_checkpoints(planned: Sequence[PlannedRun], nodes: dict[str, Any]) -> None:
    """Refuse, before any upload, to send runs that logged checkpoints anywhere but where
    they logged them. ``wandb sync --entity/--project`` moves the run, but wandb-core
    uploads each artifact to the entity and project its own record names (the run's when
    it was logged; no entity when it recorded none, so the API key's default entity), so
    the checkpoints would stay behind, apart from their run and the children that use them.

    Raises:
        SyncError: naming the runs, where they and their checkpoints would go, and how to
            sync instead.
    """
    moved = []
    for item in planned:
        info = nodes[item.run_id].info
        if (item.pending and info.checkpoints and item.problem is None
                and (item.entity, item.project) != (info.entity, info.project)):
            moved.append((item, info))
    if moved:
        where = ", ".join(f"{item.run_id} to {item.entity or 'your default entity'}/"
                          f"{item.project} (its checkpoints: {info.entity or 'your default entity'}"
                          f"/{info.project})" for item, info in moved[:5])
        raise SyncError(
            f"{len(moved)} run(s) with checkpoints would be uploaded away from them: {where}"
            f"{' ...' if len(moved) > 5 else ''}. wandb sync moves a run with --entity/--project, "
            f"but uploads its artifacts where their records say they were logged, so the "
            f"chain's checkpoints would not follow; nothing was uploaded. Sync without "
            f"--to-entity/--to-project (runs go where they were logged), or log them into "
            f"the right project to begin with (wandb.init(project=...), WANDB_ENTITY)")


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
