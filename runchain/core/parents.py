"""Each run's edge to its parent, as ``lineage.build_tree`` draws it: which parent, at which
step, in which of the parent's timelines, whether its steps go on from the parent's, and
what is odd about the steps (notes). Pure, like ``lineage``; the rules are listed there
and in ``docs/chains.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from .contract import LOCAL_STEP

if TYPE_CHECKING:
    from .lineage import RunInfo


def parent_of(info: RunInfo, notes: list[str]) -> tuple[str | None, int | None, bool]:
    """The (parent run, local checkpoint step, whether it is a fork) ``info`` claims, whether
    or not the parent is in the source; what is worth saying about the choice goes to
    ``notes``. Of the checkpoints it used, a checkpoint proper (type ``checkpoint`` or
    ``model``, or a step in its metadata: ``RunInfo.used``) is preferred over an artifact
    that is one only by its ``checkpoint.json`` (``RunInfo.used_other``); among equals, the
    latest used."""
    proper = [(run, step) for run, step in info.used if run != info.id]  # own: resumed in place
    other = [(run, step) for run, step in info.used_other if run != info.id]
    used = proper or other
    crumbs = info.breadcrumbs
    if crumbs is not None and crumbs.parent_run == info.id:
        crumbs = None  # breadcrumbs naming the run itself are no edge; fall back to `used`
    producers = list(dict.fromkeys(run for run, _ in proper + other))
    if crumbs is not None:
        parent, step = crumbs.parent_run, crumbs.parent_step
        if parent is None:
            if producers:
                notes.append(f"breadcrumbs name no parent, but it used checkpoints of "
                             f"{', '.join(producers)}; kept as a root, as its breadcrumbs say")
            return None, None, False
        if step is None:  # malformed breadcrumbs: take the step from the checkpoint it used
            step = next((s for run, s in reversed(used) if run == parent), None)
        how = "named in its breadcrumbs"
    elif info.fork is not None and info.fork[0] != info.id:
        (parent, step), how = info.fork, "the run it forked from"
    elif used:
        parent, step = used[-1]
        how = "the latest used"
        passed = list(dict.fromkeys(run for run, _ in other if run != parent))
        if proper and passed:
            how = (f"the latest checkpoint it used (of type checkpoint or model, or with a step "
                   f"in its metadata), which comes before an artifact that only holds a "
                   f"checkpoint.json ({', '.join(passed)}'s)")
    else:
        return None, None, False
    candidates = list(dict.fromkeys(producers + [parent]))
    if len(candidates) > 1:
        notes.append(f"used checkpoints of several runs ({', '.join(candidates)}); parent is "
                     f"{parent}, {how}")
    return parent, step, how == "the run it forked from"


def branched_timeline(parent: RunInfo, child: RunInfo, step: int, fork: bool) -> int | None:
    """The parent's timeline a child branched from at ``step``, where a later file of the
    parent replaced the rows up to it (None: the parent's rows as they stand). A child of a
    checkpoint takes the checkpoint's timeline; a fork, or a cut no checkpoint was saved at,
    the timeline that was the newest when the child began."""
    saved = [c for c in parent.checkpoints if c.step == step]
    if saved and not fork:
        return saved[-1].timeline
    files = parent.timelines
    if child.started is None or len(files) < 2:
        return None
    began = [k for k, (start, _) in enumerate(files) if start is not None and start <= child.started]
    if not began:
        return None
    k = began[-1]
    return k if any(takeover <= step for _, takeover in files[k + 1:]) else None


def continues_counter(parent: RunInfo, child: RunInfo, step: int) -> bool:
    """A plain child (no breadcrumbs) on ``_step`` whose first row is right after its cut
    in its parent's ``_step``: it went on with its parent's counter
    (``run.log(..., step=ckpt["step"] + 1 + i)``), so its steps are already global."""
    return (child.breadcrumbs is None and child.step_metric == parent.step_metric == LOCAL_STEP
            and child.first_step == step + 1)


def odd_steps(infos: Mapping[str, RunInfo], parents: Mapping[str, str],
               steps: Mapping[str, int], forks: set[str], continuing: set[str],
               branched: Mapping[str, int | None]) -> list[tuple[str, str]]:
    """Notes on steps that leave a chain with a gap or an overlap: a cut past the parent's
    rows, a checkpoint past its run's rows, a child whose first row is not at local step 0
    (a fork's: not right after the cut; a continuing axis's: not after the cut). A
    checkpoint or cut in a timeline a later file abandoned is not past the run's rows. Each
    note is (the run it is about, what it says)."""
    notes = []
    for run_id, info in infos.items():
        late = [c.step for c in info.checkpoints if c.timeline is None
                and info.last_step is not None and c.step > info.last_step]
        if late:
            notes.append((run_id, f"checkpoint step(s) {', '.join(map(str, late))} past its "
                          f"last logged step {info.last_step}; a checkpoint's step is the run's "
                          f"local step when it saved (often a training counter was passed instead)"))
        parent = parents.get(run_id)
        if parent is None:
            continue
        last = infos[parent].last_step
        if last is not None and steps[run_id] > last and branched[run_id] is None:
            notes.append((run_id, f"starts from {parent}@{steps[run_id]}, past {parent}'s "
                          f"last logged step {last}; its chain has no rows between"))
        if run_id in forks and infos[parent].step_metric != LOCAL_STEP:
            notes.append((run_id, f"forked from {parent} at its _step {steps[run_id]}, but "
                          f"{parent}'s steps are its {infos[parent].step_metric}; the chain cuts "
                          f"{parent} at {infos[parent].step_metric} {steps[run_id]}, which may "
                          f"not be where the fork began"))
        if run_id in continuing and run_id not in forks:
            if info.first_step is not None and info.first_step <= steps[run_id]:
                notes.append((run_id, f"its first row is at {info.step_metric} "
                              f"{info.first_step}, not after {parent}@{steps[run_id]}, so its "
                              f"chain shows rows of both runs at the same steps (did it start "
                              f"from another checkpoint than the one it names?)"))
            continue
        if run_id not in forks and info.step_metric != LOCAL_STEP:
            continue  # a declared axis, not its parent's: its first row is wherever it counts from
        expected = steps[run_id] + 1 if run_id in forks else 0
        if info.first_step is not None and info.first_step != expected:
            notes.append((run_id, f"its first row is at local step {info.first_step}, not "
                          f"{expected}, so its chain has a gap of {info.first_step - expected} "
                          f"steps; a child counts its local steps from 0 (it went on with "
                          f"its parent's counter?)"))
    return notes
