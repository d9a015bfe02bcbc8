"""The lineage graph: runs linked by the checkpoints they used, and the chains through it.

Pure: readers (local run files, the W&B API) describe each run as a ``RunInfo``;
``build_tree`` links them and ``chain`` cuts one root-to-leaf path into segments.
Nothing here recurses, so a chain thousands of runs deep is fine.

Rules (see ``docs/chains.md``):

- A run's parent is the run that logged the checkpoint it used: its breadcrumbs'
  ``parent_run``/``parent_step`` when present, else a W&B fork's ``branch_point``
  (``RunInfo.fork``), else its ``used`` checkpoints.
- A run that used its own checkpoint (resumed in place) is not an edge.
- A run that used checkpoints of several runs takes the parent named in its
  breadcrumbs, else a checkpoint proper over an artifact that is one only by its
  ``checkpoint.json`` (``RunInfo.used_other``), else the latest used; a note names the
  candidates.
- Each run's steps are on its axis (``RunInfo.step_metric``): ``_step``, or the step
  metric it declares (a framework's ``train/global_step``). Its checkpoints' steps, its
  first and last steps, and a cut through it are all on that axis.
- The root's ``global_offset`` is 0; a child's is the parent's ``global_offset``
  + ``parent_step`` + 1. A child whose steps already continue its parent's keeps its
  parent's ``global_offset``: a W&B fork (W&B starts its ``_step`` at ``parent_step + 1``),
  and a run on the same declared step metric as its parent (``contract.continues_axis``:
  a framework resumed from a checkpoint goes on with its global step).
- A parent missing from the source makes the run a root that keeps its
  breadcrumbs' ``global_offset`` (else 0); a note says so.
- Parent links that form a cycle raise ``CycleError``.
- A run whose breadcrumbs are malformed (a field of the wrong type, a step that is not a
  non-negative int64) is read as a plain wandb run: its parent comes from the checkpoints
  it used, else it is a root; the reader's note names the field (``RunInfo.problems``).
- In a chain each non-leaf run keeps rows with local step ``<=`` the checkpoint
  step the next run started from (inclusive); the last run keeps all its rows.
- A checkpoint a rewind or resume in place abandoned (``CheckpointInfo.timeline``) cuts
  its run in that timeline (``Segment.timeline``), so its children get the rows it was
  saved after, not the rows that replaced them. A fork, or a cut at a step no checkpoint
  was saved at, takes the timeline that was the parent's newest when the child began
  (``RunInfo.timelines``): every edge keeps the rows it branched from.
- A plain child (no breadcrumbs) on ``_step`` whose first row is right after its cut went
  on with its parent's counter: it keeps its parent's ``global_offset``, like a fork.

Example:
    >>> a = RunInfo("a", None, None, "finished", last_step=99)
    >>> b = RunInfo("b", None, None, "finished", last_step=50, used=(("a", 39),))
    >>> tree = build_tree([a, b])
    >>> [(s.run_id, s.last_step, s.global_offset) for s in chain(tree, "b")]
    [('a', 39, 0), ('b', None, 40)]
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..errors import CheckpointNotFoundError, CycleError, RunNotFoundError
from .breadcrumbs import Breadcrumbs, child_offset
from .contract import LOCAL_STEP, continues_axis
from .parents import branched_timeline, continues_counter, odd_steps, parent_of


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    step: int  # the producing run's local step (on its axis), inclusive
    alias: str  # how to name it: "step-<step>" where it has that alias, else its version
    version: str | None  # "v0", "v1", ... (None if unknown)
    # None: on the run's rows as they stand. k: saved in a timeline a rewind or resume in
    # place later abandoned; a chain through it reads the run as its file k left it
    timeline: int | None = None


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a reader (local run files or the W&B API) knows about one run."""

    id: str
    project: str | None
    name: str | None
    state: str  # "finished", "failed", "crashed", "running", or "starting": running for
    # seconds and naming no parent yet, which it may still do (``readers.from_folder``)
    last_step: int | None  # last local step logged (inclusive), None if no rows
    checkpoints: tuple[CheckpointInfo, ...] = ()
    used: tuple[tuple[str, int], ...] = ()  # (producer run id, local checkpoint step), in use order
    breadcrumbs: Breadcrumbs | None = None  # from config["runchain"]; None for plain wandb runs
    entity: str | None = None  # the W&B entity, where known (offline runs usually record none)
    problems: tuple[str, ...] = ()  # what the reader found wrong with the run, for the notes
    fork: tuple[str, int] | None = None  # wandb.init(fork_from=): (parent, its _step, inclusive)
    first_step: int | None = None  # first local step logged, where the reader knows it
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # as the user set it
    step_metric: str = LOCAL_STEP  # the run's axis: what its local steps count
    started: float | None = None  # when its first file began (seconds since the epoch)
    # per file of a run in several (resumed in place, rewound), oldest first: when it began,
    # and the step from which its rows replace the earlier files' (inf: none); see
    # ``readers.timelines``. A child that began while file k was the newest branched from
    # timeline k.
    timelines: tuple[tuple[float | None, float], ...] = ()
    # as ``used``, of artifacts that are checkpoints only by the checkpoint.json they hold (a
    # dataset's loader state): a parent only when ``used`` names none (``parents.parent_of``)
    used_other: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class RunNode:
    info: RunInfo
    parent_run: str | None  # None for a root, or when the parent is missing from the source
    parent_step: int | None  # the parent's local checkpoint step this run started from (inclusive cut)
    global_offset: int  # global step of this run's local step 0
    depth: int
    children: tuple[str, ...]  # child run ids, ordered by (parent_step, global_offset, id)
    fork: bool = False  # a W&B fork: its local steps continue its parent's axis
    continues: bool = False  # its local steps go on from its parent's (a fork, or the same
    # declared step metric, or a first step right after the cut), so it has its parent's
    # global_offset
    parent_timeline: int | None = None  # the parent's timeline it branched from, where a
    # later rewind or resume in place of the parent replaced the rows up to its cut


@dataclasses.dataclass(frozen=True)
class Tree:
    nodes: dict[str, RunNode]  # in depth-first order from the roots
    roots: tuple[str, ...]  # ordered by (global_offset, id)
    notes: tuple[str, ...]  # human-readable warnings (missing parents, several checkpoints used)
    run_notes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # the
    # notes on each run, among ``notes``: what ``runchain chain`` says of its runs alone


@dataclasses.dataclass(frozen=True)
class Segment:
    """One run's part of a chain; its kept local range starts at step 0."""

    run_id: str
    last_step: int | None  # keep rows with local step <= last_step (inclusive); None = keep all (the leaf)
    global_offset: int  # global step of local step 0
    timeline: int | None = None  # which of the run's timelines (CheckpointInfo.timeline)
    step_metric: str = LOCAL_STEP  # the run's axis (RunInfo.step_metric): the column cut on
    runchain: bool = False  # it has breadcrumbs: the global_step it logged is runchain's own


def _check_acyclic(parents: dict[str, str]) -> None:
    """Raise CycleError if following parent links from any run comes back to a run on the walk."""
    done: set[str] = set()
    for start in sorted(parents):
        walk: dict[str, None] = {}  # runs on this walk in child -> parent order (an ordered set)
        run: str | None = start
        while run is not None and run not in done:
            if run in walk:
                cycle = list(walk)[list(walk).index(run):][::-1]  # parent -> child order
                first = cycle.index(min(cycle))
                cycle = cycle[first:] + cycle[:first]
                raise CycleError(
                    f"runs {', '.join(cycle)} form a cycle of parent links: "
                    f"{' -> '.join(cycle + cycle[:1])} (each run started from a checkpoint of the "
                    f"one before it); check their breadcrumbs (config['runchain']) and used checkpoints")
            walk[run] = None
            run = parents.get(run)
        done.update(walk)


def build_tree(runs: Iterable[RunInfo]) -> Tree:
    """Link runs to their parents and place each on the global step axis.

    Example (``a``, ``b`` as in the module docstring):
        >>> build_tree([a, b]).nodes["b"].global_offset  # doctest: +SKIP
        40

    Raises:
        CycleError: parent links form a cycle; the message names its runs in order.
    """
    infos: dict[str, RunInfo] = {}
    notes: list[tuple[str, str]] = []  # (run id, note)
    for info in runs:
        if info.id in infos:
            notes.append((info.id, "listed more than once in the source; using the last"))
        infos[info.id] = info
        notes += [(info.id, problem) for problem in info.problems]
    parents: dict[str, str] = {}
    steps: dict[str, int] = {}
    forks: set[str] = set()  # W&B forks
    offsets: dict[str, int] = {}  # global offsets, roots first
    for run_id in sorted(infos):
        info = infos[run_id]
        said: list[str] = []
        parent, step, fork = parent_of(info, said)
        notes += [(run_id, note) for note in said]
        if parent is None:
            continue
        if parent in infos and step is not None:
            parents[run_id], steps[run_id] = parent, step
            if fork:
                forks.add(run_id)
            continue
        why = "is named without a checkpoint step" if parent in infos else "is not in the source"
        crumbs = info.breadcrumbs
        offsets[run_id] = crumbs.global_offset if crumbs is not None and crumbs.parent_run != run_id else 0
        notes.append((run_id, f"parent {parent} {why}; its chain starts at {run_id}"
                              f" (global offset {offsets[run_id]})"))
    _check_acyclic(parents)
    continuing = forks | {run_id for run_id, parent in parents.items()
                          if continues_axis(infos[parent].step_metric, infos[run_id].step_metric)
                          or continues_counter(infos[parent], infos[run_id], steps[run_id])}
    branched = {run_id: branched_timeline(infos[parent], infos[run_id], steps[run_id],
                                           run_id in forks)
                for run_id, parent in parents.items()}
    notes += odd_steps(infos, parents, steps, forks, continuing, branched)

    children: dict[str, list[str]] = collections.defaultdict(list)
    for child, parent in parents.items():
        children[parent].append(child)
    roots = [run_id for run_id in infos if run_id not in parents]
    for run_id in roots:
        offsets.setdefault(run_id, 0)
    depths = dict.fromkeys(roots, 0)
    queue = collections.deque(roots)  # breadth-first: a parent's offset is known before its children's
    while queue:
        parent = queue.popleft()
        for child in children[parent]:
            offsets[child] = child_offset(offsets[parent], steps[child], child in continuing)
            depths[child] = depths[parent] + 1
            queue.append(child)
    for kids in children.values():
        kids.sort(key=lambda c: (steps[c], offsets[c], c))
    roots.sort(key=lambda r: (offsets[r], r))

    nodes: dict[str, RunNode] = {}
    for run_id in _depth_first(roots, children):
        nodes[run_id] = RunNode(info=infos[run_id], parent_run=parents.get(run_id),
                                parent_step=steps.get(run_id), global_offset=offsets[run_id],
                                depth=depths[run_id], children=tuple(children.get(run_id, ())),
                                fork=run_id in forks, continues=run_id in continuing,
                                parent_timeline=branched.get(run_id))
    said = [(run_id, f"run {run_id}: {note}") for run_id, note in notes]
    run_notes: dict[str, list[str]] = collections.defaultdict(list)
    for run_id, note in said:
        run_notes[run_id].append(note)
    return Tree(nodes=nodes, roots=tuple(roots), notes=tuple(note for _, note in said),
                run_notes={run_id: tuple(kept) for run_id, kept in run_notes.items()})


def _depth_first(roots: Iterable[str], children: Mapping[str, Sequence[str]]) -> Iterator[str]:
    """Run ids in depth-first pre-order, children in their stored order."""
    stack = list(roots)[::-1]
    while stack:
        run_id = stack.pop()
        yield run_id
        stack.extend(reversed(children.get(run_id, ())))


def leaves(tree: Tree) -> list[str]:
    """Runs without children, in depth-first order from the roots.

    Example (``tree`` as in the module docstring):
        >>> leaves(tree)  # doctest: +SKIP
        ['b']
    """
    kids = {run_id: node.children for run_id, node in tree.nodes.items()}
    return [run_id for run_id in _depth_first(tree.roots, kids) if not kids[run_id]]


def find_run(tree: Tree, run_id: str) -> RunNode:
    """The node of ``run_id``: a run's id (``project/id`` where one id is in several
    projects), or its display name where no other run has that name.

    Example (``tree`` as in the module docstring):
        >>> find_run(tree, "b").parent_step  # doctest: +SKIP
        39

    Raises:
        RunNotFoundError: no such run; the message lists close matches, or, for an id in
            several projects or a name several runs have, the ids it could mean.
    """
    node = tree.nodes.get(run_id)
    if node is not None:
        return node
    ids = sorted(tree.nodes)
    named = [i for i in ids if tree.nodes[i].info.name == run_id] if run_id else []
    if len(named) == 1:
        return tree.nodes[named[0]]
    if named:
        listed = ", ".join(named[:10]) + (", ..." if len(named) > 10 else "")
        raise RunNotFoundError(f"{len(named)} runs are named {run_id!r}: {listed}; name one "
                               f"by its id")
    twins = [i for i in ids if i.endswith(f"/{run_id}")] if run_id and "/" not in run_id else []
    if len(twins) > 1:  # keyed project/id: one id in several projects
        projects = [i.rpartition("/")[0] for i in twins]
        raise RunNotFoundError(
            f"run id {run_id!r} is in {len(twins)} projects ({', '.join(projects)}); name one "
            f"as {twins[0]}, or read one project (--only-project {projects[0]})")
    close = [i for i in ids if i.startswith(run_id)] if run_id else []
    close += [i for i in difflib.get_close_matches(run_id, ids, n=5, cutoff=0.5) if i not in close]
    hint = (f"close matches: {', '.join(close[:5])}" if close else
            f"known runs: {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''}" if ids else
            "the source has no runs")
    raise RunNotFoundError(f"no run {run_id!r} among the {len(ids)} runs of the source; {hint}")


def chain(tree: Tree, leaf: str, last_step: int | None = None) -> list[Segment]:
    """Segments from the root down to ``leaf``; ``leaf`` keeps all its rows, or those up to
    ``last_step`` (inclusive) when given.

    Any run id works: a non-leaf gives the chain ending at it.

    Example (``tree`` as in the module docstring):
        >>> [(s.run_id, s.last_step, s.global_offset) for s in chain(tree, "b")]  # doctest: +SKIP
        [('a', 39, 0), ('b', None, 40)]

    Raises:
        RunNotFoundError: ``leaf`` is not in the tree.
        CheckpointNotFoundError: ``last_step`` is past the leaf's last logged step.
    """
    node = find_run(tree, leaf)
    last = node.info.last_step
    if last_step is not None and last is not None and last_step > last:
        raise CheckpointNotFoundError(
            f"{node.info.id}@{last_step} is past run {node.info.id}'s last logged step {last} "
            f"(on its {node.info.step_metric}); cut it at a step up to {last}")
    segments = [Segment(node.info.id, last_step, node.global_offset,
                        step_metric=node.info.step_metric,
                        runchain=node.info.breadcrumbs is not None)]
    while node.parent_run is not None:
        cut = node.parent_step  # inclusive: the checkpoint holds the state after this step
        timeline = node.parent_timeline
        node = tree.nodes[node.parent_run]
        segments.append(Segment(node.info.id, cut, node.global_offset, timeline,
                                node.info.step_metric, node.info.breadcrumbs is not None))
    return segments[::-1]


def first_local_step(node: RunNode) -> int:
    """The first local step of ``node``'s run: as its reader read it; where the reader does
    not know it (a W&B listing holds no first row), right after its parent's cut when its
    steps continue its parent's, else 0.

    Example (``tree`` as in the module docstring):
        >>> first_local_step(tree.nodes["b"])  # doctest: +SKIP
        0
    """
    if node.info.first_step is not None:
        return node.info.first_step
    return node.parent_step + 1 if node.continues and node.parent_step is not None else 0


def kept_last_step(tree: Tree, segment: Segment) -> int | None:
    """The last local step ``segment`` keeps (inclusive): its cut, or for the leaf its run's
    last logged step; None when the run logged no rows. The first kept step is the run's
    first (``RunInfo.first_step``): 0 on ``_step``, later for a fork or a framework's axis.

    Example (``tree`` as in the module docstring):
        >>> [kept_last_step(tree, s) for s in chain(tree, "b")]  # doctest: +SKIP
        [39, 50]
    """
    if segment.last_step is not None:
        return segment.last_step
    return tree.nodes[segment.run_id].info.last_step


def config_diff(tree: Tree, run_id: str) -> dict[str, Any]:
    """The config keys where ``run_id`` differs from its parent or from its siblings (the
    other runs started from the same parent; for a root, the other roots of its project),
    with its values: what tells two forks of one checkpoint apart.

    Example (two forks of ``a`` with another lr):
        >>> config_diff(tree, "b")  # doctest: +SKIP
        {'lr': 0.001}
    """
    node = find_run(tree, run_id)
    if node.parent_run:
        siblings = tree.nodes[node.parent_run].children
    else:  # the other roots of its project: another project's runs are another experiment
        siblings = [r for r in tree.roots if tree.nodes[r].info.project == node.info.project]
    others = [tree.nodes[s].info.config for s in siblings if s != node.info.id]
    if node.parent_run is not None:
        others.append(tree.nodes[node.parent_run].info.config)
    missing = object()
    return {k: v for k, v in node.info.config.items()
            if any(other.get(k, missing) != v for other in others)}


def chains(tree: Tree) -> list[list[Segment]]:
    """One chain per leaf, in ``leaves`` order."""
    return [chain(tree, leaf) for leaf in leaves(tree)]
