"""Every chain of a tree stitched at once (pure): ``stitch_chains`` against ``stitch``, on
hand-built segments and columns, no files, no wandb."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from runchain.core.lineage import Segment, build_tree, chain, leaves
from runchain.core.stitch import stitch, stitch_chains
from test_lineage import hand_built


class Counted(dict):
    """A run's columns that count which columns were read (``reads``), not only looked up."""

    def __init__(self, run_id: str, columns: dict, reads: Counter):
        super().__init__(columns)
        self.run_id, self.reads = run_id, reads

    def __getitem__(self, name):
        self.reads[self.run_id, name] += 1
        return super().__getitem__(name)


def columns_of(rows: int, seed: int, extra=()) -> dict[str, np.ndarray]:
    """A run's columns: ``_step`` 0.., a random ``loss``, and each of ``extra``."""
    rng = np.random.default_rng(seed)
    out = {"_step": np.arange(rows), "loss": rng.random(rows)}
    for name in extra:
        out[name] = rng.random(rows)
    return out


def assert_same(given: dict, want: dict, where: str) -> None:
    assert list(given) == list(want), where
    for key in want:
        assert given[key].dtype == want[key].dtype, (where, key)
        np.testing.assert_array_equal(given[key], want[key], err_msg=f"{where}: {key}")


# r ─┬─ a (from r@39) ─┬─ d (from a@9)
#    │                 └─ c (from a@29)
#    └─ b (from r@79)
# z (a second root)
TREE = build_tree(hand_built())
LOGGED = {"r": columns_of(100, 0), "z": columns_of(11, 1),
          "a": columns_of(51, 2, extra=["acc"]),
          "b": columns_of(51, 3, extra=["step"]),  # a stitched column's name: kept as logged
          "c": columns_of(51, 4, extra=["acc", "lr"]),
          "d": columns_of(51, 5)}


def reads_of(chains, keys, together: bool) -> Counter:
    """(run, column) -> times read: stitching ``chains`` at once, or each alone."""
    reads: Counter = Counter()
    histories = {r: Counted(r, c, reads) for r, c in LOGGED.items()}
    if together:
        list(stitch_chains(chains, histories, keys))
    for segments in [] if together else chains:
        stitch(segments, histories, keys)
    return reads


@pytest.mark.parametrize("keys", [None, ["loss"], ["acc", "loss"]])
def test_each_chain_is_what_stitch_gives_and_a_shared_prefix_is_read_by_one_chain(keys):
    """In depth-first order d's chain is r@39, a@9, d; c's is r@39, a@29, c: r@39 is read
    by d's chain and copied into c's; a, cut elsewhere, is read by both; b's chain reads
    r again, cut at 79."""
    order = leaves(TREE)
    assert order == ["d", "c", "b", "z"]
    chains = [chain(TREE, leaf) for leaf in order]
    assert chains[0][0] == chains[1][0] != chains[2][0] and chains[0][1] != chains[1][1]
    given = list(stitch_chains(chains, LOGGED, keys))
    for leaf, segments, columns in zip(order, chains, given):
        assert_same(columns, stitch(segments, LOGGED, keys=keys), leaf)
    together = reads_of(chains, keys, together=True)
    r_once = reads_of([chains[0], chains[2]], keys, together=False)  # d's and b's
    a_twice = reads_of(chains[:2], keys, together=False)
    assert {k: n for k, n in together.items() if k[0] == "r"} == {
        k: n for k, n in r_once.items() if k[0] == "r"}
    assert {k: n for k, n in together.items() if k[0] == "a"} == {
        k: n for k, n in a_twice.items() if k[0] == "a"}
    each = reads_of(chains, keys, together=False)
    assert together["r", "loss"] == 2 < each["r", "loss"] == 3


def test_a_changed_cut_offset_or_order_of_chains_is_stitched_again():
    """Only segments equal in every field are copied: a run cut at another step, or at
    another offset, is stitched afresh; any order of chains gives what stitch gives."""
    segs = [[Segment("r", 39, 0), Segment("a", None, 40)],
            [Segment("r", 79, 0), Segment("b", None, 80)],  # r cut elsewhere
            [Segment("r", 79, 5), Segment("b", None, 85)],  # at another offset
            [Segment("r", 79, 5), Segment("b", 20, 85), Segment("d", None, 106)]]
    rng = random.Random(0)
    for _ in range(10):
        rng.shuffle(segs)
        for segments, columns in zip(segs, stitch_chains(segs, LOGGED)):
            assert_same(columns, stitch(segments, LOGGED), str(segments))


def test_a_chain_sorted_by_global_step_is_not_copied_from():
    """A chain whose rows had to be sorted (a run's steps go back past its parent's cut) is
    not a prefix of the next chain in row order: the next is stitched whole."""
    first = [Segment("r", 9, 0), Segment("a", None, 5)]  # a's rows start inside r's
    second = [Segment("r", 9, 0), Segment("d", None, 10)]
    out = list(stitch_chains([first, second], LOGGED))
    assert out[0]["run_id"][5:8].tolist() == ["r", "a", "r"]  # sorted: a's step 0 after r's 5
    assert_same(out[0], stitch(first, LOGGED), "first")
    assert_same(out[1], stitch(second, LOGGED), "second")


def test_a_key_the_chain_before_left_out_is_read_from_the_shared_runs():
    """A runchain run's own global_step is not a metric, so a chain of runchain runs leaves
    it out; a plain child that logs a global_step of its own makes it one in its chain,
    where the runchain runs' rows show their logged values, read from them, not copied."""
    own = {"p": {**columns_of(20, 6), "global_step": np.arange(20.0) + 1000},
           "q": columns_of(10, 7),
           "w": {**columns_of(10, 8), "global_step": np.arange(10.0) + 7}}
    crumbs = [Segment("p", 9, 0, runchain=True), Segment("q", None, 10, runchain=True)]
    plain = [Segment("p", 9, 0, runchain=True), Segment("w", None, 10)]
    out = list(stitch_chains([crumbs, plain], own))
    assert "runchain/global_step" not in out[0]
    assert out[1]["global_step"][:2].tolist() == [1000.0, 1001.0]  # p's, as logged
    assert_same(out[1], stitch(plain, own), "plain")


def test_what_a_caller_does_to_a_chain_never_reaches_the_next():
    """Each chain is stitched before the one before it is given, so writing into the
    arrays given changes no later chain."""
    chains = [chain(TREE, leaf) for leaf in leaves(TREE)]
    for segments, columns in zip(chains, stitch_chains(chains, LOGGED)):
        assert_same(columns, stitch(segments, LOGGED), segments[-1].run_id)
        for column in columns.values():
            column[:] = column[::-1]  # what a careless caller might do
    assert list(stitch_chains([], LOGGED)) == []


def test_run_ids_of_other_lengths_keep_each_chain_its_own_width():
    """The run_id column is as wide as the chain's longest id: a prefix copied from a chain
    with a longer id keeps its ids whole, at this chain's width."""
    own = {"r": columns_of(20, 9), "a-much-longer-id": columns_of(10, 10), "d": columns_of(10, 11)}
    first = [Segment("r", 9, 0), Segment("a-much-longer-id", None, 10)]
    second = [Segment("r", 9, 0), Segment("d", None, 10)]
    out = list(stitch_chains([first, second, first], own))
    assert out[0]["run_id"].dtype == np.dtype("<U16") and out[1]["run_id"].dtype == np.dtype("<U1")
    for segments, columns in zip([first, second, first], out):
        assert_same(columns, stitch(segments, own), segments[-1].run_id)
