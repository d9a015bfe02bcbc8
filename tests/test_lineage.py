"""The lineage graph and chains (pure): hand-built RunInfo lists, no files, no wandb."""

from __future__ import annotations

import random
import sys

import pytest

from runchain.core.breadcrumbs import Breadcrumbs, breadcrumbs_for
from runchain.errors import CycleError, RunNotFoundError
from runchain.core.lineage import (CheckpointInfo, RunInfo, Segment, build_tree, chain, chains,
                                   find_run, leaves)


def run(run_id: str, last_step: int | None = 99, used=(), crumbs: Breadcrumbs | None = None,
        ckpts=()) -> RunInfo:
    checkpoints = tuple(CheckpointInfo(s, f"step-{s}", f"v{i}") for i, s in enumerate(ckpts))
    return RunInfo(run_id, "proj", f"name-{run_id}", "finished", last_step, checkpoints,
                   tuple(used), crumbs)


def crumbs(run_id: str, parent: str | None = None, step: int | None = None, offset: int | None = None,
           parent_crumbs: Breadcrumbs | None = None) -> Breadcrumbs:
    """Breadcrumbs as do_run writes them; ``offset`` overrides the recorded global_offset."""
    ref = f"run-{parent}-checkpoint:step-{step}" if parent else None
    b = breadcrumbs_for(run_id, parent, ref, step, parent_crumbs)
    return b if offset is None else Breadcrumbs(b.parent_run, b.parent_checkpoint, b.parent_step,
                                                offset, b.root_run, b.depth)


# r ─┬─ a (from r@39) ─┬─ d (from a@9)
#    │                 └─ c (from a@29)
#    └─ b (from r@79)
# z (a second root)
EDGES = {"a": ("r", 39), "b": ("r", 79), "c": ("a", 29), "d": ("a", 9)}


def hand_built(with_crumbs: bool = False) -> list[RunInfo]:
    """The tree above; with breadcrumbs, or as plain wandb runs that only list used checkpoints."""
    made = {"r": crumbs("r"), "z": crumbs("z")}
    for run_id, (parent, step) in EDGES.items():  # parents come first
        made[run_id] = crumbs(run_id, parent, step, parent_crumbs=made[parent])
    pick = made.get if with_crumbs else (lambda _: None)
    runs = [run("r", 99, crumbs=pick("r"), ckpts=(19, 39, 59, 79, 99)), run("z", 10, crumbs=pick("z"))]
    for run_id, (parent, step) in EDGES.items():
        runs.append(run(run_id, 50, used=[(parent, step)], crumbs=pick(run_id), ckpts=(9, 29, 49)))
    return runs


def shape(tree):
    return {i: (n.parent_run, n.parent_step, n.global_offset, n.depth, n.children)
            for i, n in tree.nodes.items()}


def test_offsets_and_depths_follow_non_final_checkpoints():
    tree = build_tree(hand_built())
    assert shape(tree) == {
        "r": (None, None, 0, 0, ("a", "b")),
        "a": ("r", 39, 40, 1, ("d", "c")),
        "d": ("a", 9, 50, 2, ()),
        "c": ("a", 29, 70, 2, ()),
        "b": ("r", 79, 80, 1, ()),
        "z": (None, None, 0, 0, ()),
    }
    assert tree.roots == ("r", "z")
    assert tree.notes == ()


def test_chain_cuts_each_parent_at_the_checkpoint_step_the_next_run_used():
    tree = build_tree(hand_built())
    assert chain(tree, "c") == [Segment("r", 39, 0), Segment("a", 29, 40), Segment("c", None, 70)]
    assert chain(tree, "b") == [Segment("r", 79, 0), Segment("b", None, 80)]


def test_chain_ending_at_a_non_leaf_keeps_all_its_rows():
    tree = build_tree(hand_built())
    assert chain(tree, "a") == [Segment("r", 39, 0), Segment("a", None, 40)]
    assert chain(tree, "r") == [Segment("r", None, 0)]


def test_leaves_are_in_depth_first_order_children_by_checkpoint_step():
    assert leaves(build_tree(hand_built())) == ["d", "c", "b", "z"]


def test_chains_gives_one_chain_per_leaf():
    tree = build_tree(hand_built())
    all_chains = chains(tree)
    assert len(all_chains) == 4
    assert [c[-1].run_id for c in all_chains] == leaves(tree)
    assert all(c[-1].last_step is None for c in all_chains)


def test_tree_does_not_depend_on_input_order():
    runs = hand_built()
    expected = build_tree(runs)
    random.Random(0).shuffle(runs)
    shuffled = build_tree(runs)
    assert shuffled == expected and list(shuffled.nodes) == list(expected.nodes)


def test_plain_wandb_runs_build_the_same_tree_as_breadcrumb_runs():
    plain, tracked = build_tree(hand_built()), build_tree(hand_built(with_crumbs=True))
    assert shape(plain) == shape(tracked)
    assert plain.roots == tracked.roots and plain.notes == tracked.notes == ()


def test_offsets_come_from_the_graph_not_from_stale_breadcrumbs():
    runs = [run("r"), run("a", used=[("r", 39)], crumbs=crumbs("a", "r", 39, offset=12345))]
    assert build_tree(runs).nodes["a"].global_offset == 40


def test_breadcrumbs_parent_wins_over_used_list():
    runs = [run("p"), run("q"), run("x", used=[("q", 5)], crumbs=crumbs("x", "p", 20))]
    node = build_tree(runs).nodes["x"]
    assert (node.parent_run, node.parent_step, node.global_offset) == ("p", 20, 21)


def test_resume_in_place_is_not_an_edge():
    runs = [run("r"), run("a", used=[("r", 39), ("a", 49), ("a", 59)])]
    tree = build_tree(runs)
    assert (tree.nodes["a"].parent_run, tree.nodes["a"].parent_step) == ("r", 39)
    assert tree.notes == ()
    alone = build_tree([run("s", used=[("s", 9)])])
    assert alone.roots == ("s",) and alone.nodes["s"].parent_run is None and alone.notes == ()


def test_breadcrumbs_naming_the_run_itself_are_not_an_edge():
    b = Breadcrumbs("s", "run-s-checkpoint:step-9", 9, 10, "s", 1)
    tree = build_tree([run("s", crumbs=b)])
    assert tree.roots == ("s",)
    assert (tree.nodes["s"].parent_run, tree.nodes["s"].depth) == (None, 0)


def test_several_checkpoints_used_breadcrumbs_parent_wins_with_note():
    runs = [run("p"), run("q"), run("x", used=[("p", 10), ("q", 20)], crumbs=crumbs("x", "p", 10))]
    tree = build_tree(runs)
    assert (tree.nodes["x"].parent_run, tree.nodes["x"].parent_step) == ("p", 10)
    assert tree.nodes["p"].children == ("x",) and tree.nodes["q"].children == ()
    (note,) = tree.notes
    assert "x" in note and "p" in note and "q" in note and "breadcrumbs" in note


def test_several_checkpoints_used_without_breadcrumbs_latest_wins_with_note():
    runs = [run("p"), run("q"), run("x", used=[("q", 20), ("p", 10)])]
    tree = build_tree(runs)
    assert (tree.nodes["x"].parent_run, tree.nodes["x"].parent_step) == ("p", 10)
    assert tree.nodes["x"].global_offset == 11
    (note,) = tree.notes
    assert "run x" in note and "q" in note and "p" in note and "latest" in note


def test_a_checkpoint_proper_wins_over_a_later_artifact_that_only_holds_checkpoint_json():
    runs = [run("p"), run("d"),
            RunInfo("x", None, None, "finished", last_step=5, used=(("p", 10),),
                    used_other=(("d", 3),)),
            RunInfo("y", None, None, "finished", last_step=5, used_other=(("d", 3),))]
    tree = build_tree(runs)
    assert (tree.nodes["x"].parent_run, tree.nodes["x"].parent_step) == ("p", 10)
    assert (tree.nodes["y"].parent_run, tree.nodes["y"].parent_step) == ("d", 3)  # nothing else
    assert tree.run_notes == {"x": (
        "run x: used checkpoints of several runs (p, d); parent is p, the latest checkpoint it "
        "used (of type checkpoint or model, or with a step in its metadata), which comes "
        "before an artifact that only holds a checkpoint.json (d's)",)}
    assert tree.notes == tree.run_notes["x"]


def test_cycle_through_used_checkpoints_raises_naming_the_runs():
    runs = [run("a", used=[("b", 5)]), run("b", used=[("a", 5)])]
    with pytest.raises(CycleError, match=r"a -> b -> a") as err:
        build_tree(runs)
    assert isinstance(err.value, ValueError)


def test_cycle_through_breadcrumbs_names_every_run_in_order_and_no_bystander():
    runs = [run("a", crumbs=crumbs("a", "c", 1)), run("b", crumbs=crumbs("b", "a", 1)),
            run("c", crumbs=crumbs("c", "b", 1)), run("tail", used=[("b", 3)]), run("ok")]
    with pytest.raises(CycleError) as err:
        build_tree(runs)
    message = str(err.value)
    assert "a -> b -> c -> a" in message
    assert "tail" not in message and "ok" not in message


def test_missing_parent_makes_a_root_with_breadcrumbs_offset_and_a_note():
    runs = [run("c", used=[("gone", 9)], crumbs=crumbs("c", "gone", 9, offset=1234)),
            run("d", used=[("c", 19)]), run("zz")]
    tree = build_tree(runs)
    node = tree.nodes["c"]
    assert (node.parent_run, node.parent_step, node.global_offset, node.depth) == (None, None, 1234, 0)
    assert tree.roots == ("zz", "c")  # by global offset, then id
    assert tree.nodes["d"].global_offset == 1234 + 19 + 1
    (note,) = tree.notes
    assert "run c" in note and "gone" in note and "not in the source" in note
    assert chain(tree, "d") == [Segment("c", 19, 1234, runchain=True), Segment("d", None, 1254)]


def test_missing_parent_of_a_plain_run_starts_at_offset_zero():
    tree = build_tree([run("c", used=[("gone", 9)])])
    assert tree.nodes["c"].global_offset == 0 and tree.roots == ("c",)
    assert "gone" in tree.notes[0]


@pytest.fixture
def shallow_stack():
    """A recursion limit only ~200 frames above the test, so any recursion over 500 runs fails."""
    before, depth = sys.getrecursionlimit(), 0
    while sys._getframe(depth).f_back is not None:
        depth += 1
    sys.setrecursionlimit(depth + 200)
    yield depth + 200
    sys.setrecursionlimit(before)


def test_chain_500_runs_deep_resolves_without_recursion(shallow_stack):
    steps = [7 + i % 5 for i in range(500)]
    runs = [run("r0000")] + [run(f"r{i:04d}", used=[(f"r{i - 1:04d}", steps[i])]) for i in range(1, 500)]
    tree = build_tree(reversed(runs))
    segments = chain(tree, "r0499")
    assert sys.getrecursionlimit() == shallow_stack
    assert len(segments) == 500 and len(chains(tree)) == 1 and leaves(tree) == ["r0499"]
    assert segments[-1].global_offset == sum(s + 1 for s in steps[1:])
    assert [s.last_step for s in segments] == steps[1:] + [None]
    assert tree.nodes["r0499"].depth == 499


def test_unknown_run_id_raises_with_a_close_match():
    tree = build_tree([run("abc12345"), run("zzz99999")])
    with pytest.raises(RunNotFoundError, match="abc12345") as err:
        find_run(tree, "abc12354")
    assert "zzz99999" not in str(err.value) and "'abc12354'" in str(err.value)
    assert isinstance(err.value, LookupError)
    with pytest.raises(RunNotFoundError, match="abc12345"):
        chain(tree, "abc1")


def test_root_breadcrumbs_win_over_used_checkpoints_with_note():
    tree = build_tree([run("p"), run("x", used=[("p", 10)], crumbs=crumbs("x"))])
    assert tree.roots == ("p", "x") and tree.nodes["x"].parent_run is None
    (note,) = tree.notes
    assert "run x" in note and "p" in note


def test_stitch_never_replaces_a_column_a_run_logged():
    """A run's own step (or a plain run's global_step) keeps its name and values;
    runchain's column of that name becomes runchain/<name>. A runchain run's global_step
    is runchain's own, so nothing is renamed for it."""
    import numpy as np
    from runchain.errors import MetricError
    from runchain.core.stitch import metric_columns, stitch, stitched_names
    segments = [Segment("a", 1, 0), Segment("b", None, 2)]
    histories = {"a": {"_step": np.arange(3), "loss": np.array([3.0, 2.0, 1.0]),
                       "step": np.array([1000.0, 1001.0, 1002.0])},
                 "b": {"_step": np.arange(2), "loss": np.array([0.5, 0.25])}}
    out = stitch(segments, histories)
    assert list(out) == ["global_step", "runchain/step", "run_id", "step", "loss"]
    assert out["runchain/step"].tolist() == [0, 1, 0, 1] and out["runchain/step"].dtype == np.int64
    np.testing.assert_array_equal(out["step"], [1000.0, 1001.0, np.nan, np.nan])
    assert out["loss"].tolist() == [3.0, 2.0, 0.5, 0.25]
    assert stitched_names(out)["step"] == "runchain/step" and metric_columns(out) == ["step", "loss"]
    only = stitch(segments, histories, keys=["loss"])  # not asked for: no clash, plain names
    assert list(only) == ["global_step", "step", "run_id", "loss"]
    for taken in ("run_id", "global_step"):  # names no run logged
        with pytest.raises(MetricError, match=taken):
            stitch(segments, histories, keys=["loss", taken])
    own = {"a": {**histories["a"], "global_step": np.array([0.0, 1.0, 2.0])}, "b": histories["b"]}
    crumbs = [Segment("a", 1, 0, runchain=True), Segment("b", None, 2, runchain=True)]
    assert "runchain/global_step" not in stitch(crumbs, own)
    assert stitch(segments, own)["global_step"][:2].tolist() == [0.0, 1.0]  # a plain run's


# -- step axes: a framework's global step goes on across a resume -------------------------

HF = "train/global_step"


def axis_run(run_id: str, first: int, last: int, used=(), metric: str = HF,
             ckpts=()) -> RunInfo:
    return RunInfo(run_id, "proj", None, "finished", last,
                   tuple(CheckpointInfo(s, f"step-{s}", f"v{i}") for i, s in enumerate(ckpts)),
                   tuple(used), first_step=first, step_metric=metric)


def test_a_child_on_its_parents_step_metric_keeps_its_parents_offset():
    # a 5..40 (checkpoints at 10, 20, 30); b resumed from a@20 goes on at 25; c from b@30
    tree = build_tree([axis_run("a", 5, 40, ckpts=(10, 20, 30)),
                       axis_run("b", 25, 40, used=[("a", 20)], ckpts=(30,)),
                       axis_run("c", 35, 50, used=[("b", 30)])])
    assert shape(tree)["b"] == ("a", 20, 0, 1, ("c",)) and shape(tree)["c"] == ("b", 30, 0, 2, ())
    assert tree.nodes["b"].continues and not tree.nodes["b"].fork
    assert chain(tree, "c") == [Segment("a", 20, 0, step_metric=HF), Segment("b", 30, 0, step_metric=HF),
                                Segment("c", None, 0, step_metric=HF)]
    assert tree.notes == ()  # 25 after a@20 is no gap: the Trainer logs every 5 steps


def test_a_child_on_another_axis_is_offset_past_the_cut():
    # a framework run as the parent of a run counting _step from 0 (and the other way round)
    tree = build_tree([axis_run("a", 5, 40, ckpts=(20,)),
                       axis_run("b", 0, 9, used=[("a", 20)], metric="_step", ckpts=(4,)),
                       axis_run("c", 5, 30, used=[("b", 4)])])
    assert tree.nodes["b"].global_offset == 21 and not tree.nodes["b"].continues
    assert tree.nodes["c"].global_offset == 26
    assert tree.notes == ()


def test_a_child_on_its_parents_axis_that_starts_at_or_before_the_cut_gets_a_note():
    tree = build_tree([axis_run("a", 5, 40, ckpts=(20,)), axis_run("b", 15, 40, used=[("a", 20)])])
    assert tree.nodes["b"].global_offset == 0
    assert tree.notes == ("run b: its first row is at train/global_step 15, not after a@20, so its "
                          "chain shows rows of both runs at the same steps (did it start from "
                          "another checkpoint than the one it names?)",)


def test_breadcrumbs_record_the_axis_and_a_continuing_child_keeps_the_offset():
    root = breadcrumbs_for("a", step_metric=HF)
    child = breadcrumbs_for("b", "a", "run-a-checkpoint:step-20", 20, root, step_metric=HF)
    assert (child.global_offset, child.step_metric) == (0, HF)
    assert child.to_config()["step_metric"] == HF and Breadcrumbs.from_config(child.to_config()) == child
    # a parent without breadcrumbs: the checkpoint's own axis says
    assert breadcrumbs_for("b", "a", "model-a:v1", 20, None, HF, parent_step_metric=HF).global_offset == 0
    assert breadcrumbs_for("b", "a", "run-a-checkpoint:step-20", 20, root).global_offset == 21
    plain = breadcrumbs_for("c")
    assert "step_metric" not in plain.to_config()  # runs on _step keep the breadcrumbs they had
    assert Breadcrumbs.from_config(plain.to_config()) == plain


def test_breadcrumbs_with_a_step_metric_that_is_not_a_name_are_malformed():
    from runchain.core.breadcrumbs import breadcrumbs_problem

    config = {**breadcrumbs_for("a").to_config(), "step_metric": 5}
    assert breadcrumbs_problem(config) == ("breadcrumbs (config['runchain']) hold step_metric=5, "
                                           "expected a metric name or null")
    assert Breadcrumbs.from_config(config) is None


def test_framework_checkpoints_are_read_from_aliases_and_file_names_and_nothing_else():
    from runchain.core.classify import framework_checkpoint

    assert framework_checkpoint("model", ["checkpoint_global_step_7", "epoch_0.31"], None) == (7, HF)
    assert framework_checkpoint("model", [], {"original_filename": "step=5.ckpt"}) == (4, "trainer/global_step")
    assert framework_checkpoint("model", [], {"original_filename": "epoch=3-step=0.ckpt"}) is None
    assert framework_checkpoint("model", ["latest", "best"], {"original_filename": "model.ckpt"}) is None
    assert framework_checkpoint("model", [], {"original_filename": "mystep=5.ckpt"}) is None
    assert framework_checkpoint("checkpoint", ["checkpoint_global_step_7"], {}) is None
    assert framework_checkpoint("model", "checkpoint_global_step_7", []) is None  # not a list


def test_any_artifact_holding_checkpoint_json_is_a_checkpoint_but_wandbs_own_are_not_asked():
    from runchain.core.classify import classify
    asked = []

    def state(step):
        return lambda: asked.append(step) or (None if step is None else {"step": step})
    assert classify("model", ["v0"], {}, state(19)).step == 19  # run.log_model's type
    found = classify("dataset", [], {}, state(29), run_axis="global_step")
    assert (found.step, found.step_metric) == (29, "global_step")  # on a declared axis
    plain = classify("dataset", [], {}, state(None))
    assert (plain.step, plain.broken) == (None, False)  # no checkpoint, and nothing to say
    for own in ("code", "job", "run_table", "wandb-history"):
        assert classify(own, [], {}, state(7)).step is None
    assert asked == [19, 29, None]


def test_tree_lines_cap_the_indent_so_output_grows_with_runs_not_depth_squared():
    from runchain.renderers.formats import INDENT_CAP, tree_lines
    ids = [f"r{i:05d}" for i in range(2000)]
    runs = [run(ids[0], 9, ckpts=(4, 9))] + [
        run(ids[i], 9, used=[(ids[i - 1], 4)], ckpts=(4, 9)) for i in range(1, len(ids))]
    lines = list(tree_lines(build_tree(runs)))
    for i, line in enumerate(lines):
        start = "  " * i if i <= INDENT_CAP else "  " * INDENT_CAP + f"\u2026(depth {i}) "
        assert line.startswith(start + ids[i] + " "), line
    assert max(map(len, lines)) < 2 * min(map(len, lines)) + 2 * INDENT_CAP  # not ~4,000 wide
