"""Runs as plain wandb users write them, read row by row: W&B's own ``define_metric`` recipe
(``val/*`` on ``epoch``, the rest on ``_step``), nanoGPT-style checkpoints with no
``checkpoint.json``, a step in any artifact's metadata, ``checkpoint.json`` in a named
folder, a run that used two artifacts, and which notes ``runchain chain`` prints.

Every run is real: the installed wandb writes it offline, in a subprocess
(``foreign.epochs``). The same runs logged online by the real SDK into the HTTP stand-in of
W&B (``tests/wandb_server.py``) must read the same through ``wandb.Api``.
"""

from __future__ import annotations

import math

import pytest

import runchain
from foreign import epochs
from helpers import cli, isolate
from runchain.readers.from_project import open_project

pytestmark = pytest.mark.slow  # real runs in subprocesses (docs/development.md)

PROJECT = "recipes"
JSON_STEP = {"checkpoint.json": {"step": "$step"}}  # the contract: the _step at saving
# name -> (epochs, spec): each epoch is 5 train rows and one epoch/val row (foreign.epochs)
RUNS = {
    # W&B's recipe, with checkpoint.json holding the _step at saving (epoch 1 ends at _step 11)
    "val-root": (4, dict(declare="val/*", saves=[
        dict(epoch=1, name="val-ck", type="checkpoint", files=JSON_STEP)])),
    "val-child": (2, dict(declare="val/*", epoch0=2, uses=[("val-ck:v0", "checkpoint")])),
    # the same recipe, with a checkpoint that names the epoch axis in its metadata
    "epoch-root": (4, dict(declare="val/*", saves=[
        dict(epoch=1, name="epoch-ck", type="checkpoint", files={"weights.pt": "w"},
             metadata={"step": "$epoch", "step_metric": "epoch"})])),
    "epoch-child": (2, dict(declare="val/*", epoch0=2, uses=[("epoch-ck:v0", "checkpoint")])),
    # every metric on epoch, and a value set only in the summary, as the Trainer sets
    # train_runtime: the run is on epoch (online, its history keys tell it apart)
    "star-root": (2, dict(declare="*", summary={"train_runtime": 1.5})),
    # checkpoints as hand-written loops log them
    "plain-root": (4, dict(saves=[
        *[dict(epoch=e, name="nano-ck", type="checkpoint", metadata={"iter_num": "$step"},
               files={"ckpt.pt": {"iter": "$step"}}) for e in range(4)],  # nanoGPT's
        dict(epoch=1, name="nano-model", type="model", metadata={"iter_num": "$step"},
             files={"ckpt.pt": {"iter": "$step"}}),
        dict(epoch=1, name="meta-model", type="model", metadata={"step": "$step"},
             files={"ckpt.pt": {"iter": "$step"}}),
        dict(epoch=2, name="named-ck", type="checkpoint", files=JSON_STEP, under="step-17"),
        dict(epoch=3, name="two-json", type="checkpoint",
             files={"a/checkpoint.json": {"step": "$step"}, "b/checkpoint.json": {"step": 1}})])),
    "loader": (1, dict(saves=[dict(epoch=0, name="loader-state", type="dataset",
                                   files={"checkpoint.json": {"step": "$step"}, "rows.csv": "a\n"})])),
    "nano-child": (2, dict(uses=[("nano-model:v0", "model"), ("nano-ck:v1", "checkpoint"),
                                 ("two-json:v0", "checkpoint")])),
    "meta-child": (2, dict(uses=[("meta-model:v0", "model")])),
    "ck-then-loader": (2, dict(uses=[("named-ck:v0", "checkpoint"),
                                     ("loader-state:v0", "dataset")])),
    "loader-then-ck": (2, dict(uses=[("loader-state:v0", "dataset"),
                                     ("named-ck:v0", "checkpoint")])),
}


def grow(wandb_dir) -> dict[str, str]:
    """Every run of ``RUNS``, in order; run name -> id."""
    return {name: epochs(wandb_dir, PROJECT, name, n, **spec) for name, (n, spec) in RUNS.items()}


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("recipes"))
        ids = grow(wdir)
        return {"dir": wdir, "ids": ids, "source": runchain.open_source(wdir)}


@pytest.fixture(scope="module")
def online(wandb_server, tmp_path_factory):
    """The same runs, logged online into the HTTP stand-in and read back through wandb.Api."""
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("recipes_online"), server=wandb_server)
        ids = grow(runchain.default_wandb_dir())
        return {"ids": ids, "source": open_project(f"{wandb_server.entity}/{PROJECT}")}


def local_rows(epoch0: int, n: int) -> list[tuple]:
    """A run's rows as ``foreign.epochs`` logs them: (_step, train/loss, val/loss, epoch)."""
    out = []
    for epoch in range(epoch0, epoch0 + n):
        out += [(len(out) + i, 100.0 * epoch + i, None, None) for i in range(5)]
        out.append((len(out), None, 100.0 * epoch + 99, float(epoch)))
    return out


def chain_rows(source: runchain.Source, leaf: str) -> list[tuple]:
    """(global step, run, local step, train/loss, val/loss, epoch) of every stitched row."""
    cols = source.history(leaf)
    keys = ["global_step", "run_id", "step", "train/loss", "val/loss", "epoch"]
    assert set(cols) == set(keys)  # the user's epoch column is kept as a metric
    return [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in zip(*(cols[k].tolist() for k in keys))]


def graph(source: runchain.Source, ids: dict[str, str]) -> dict[str, tuple]:
    """Per run name: (parent name, cut, global offset, axis, last step, checkpoint steps)."""
    names = {run_id: name for name, run_id in ids.items()}
    return {names[run_id]: (names.get(n.parent_run), n.parent_step, n.global_offset,
                            n.info.step_metric, n.info.last_step, [c.step for c in n.info.checkpoints])
            for run_id, n in source.tree.nodes.items()}


def notes_of(source: runchain.Source, run_id: str) -> list[str]:
    return list(source.tree.run_notes.get(run_id, ()))


EXPECTED = {  # graph()'s, the same from both readers
    "val-root": (None, None, 0, "_step", 23, [11]),
    "val-child": ("val-root", 11, 12, "_step", 11, []),
    "epoch-root": (None, None, 0, "epoch", 3, [1]),
    "epoch-child": ("epoch-root", 1, 0, "epoch", 3, []),  # the epoch goes on: no offset
    "star-root": (None, None, 0, "epoch", 1, []),
    "plain-root": (None, None, 0, "_step", 23, [11, 17]),
    "loader": (None, None, 0, "_step", 5, [5]),
    "nano-child": (None, None, 0, "_step", 11, []),
    "meta-child": ("plain-root", 11, 12, "_step", 11, []),
    "ck-then-loader": ("plain-root", 17, 18, "_step", 11, []),
    "loader-then-ck": ("plain-root", 17, 18, "_step", 11, []),
}


def test_the_tree_follows_each_checkpoint_as_plain_wandb_code_saved_it(offline):
    assert graph(offline["source"], offline["ids"]) == EXPECTED


def test_a_define_metric_for_some_metrics_leaves_the_run_and_its_checkpoint_on_step(offline):
    """W&B's recipe puts val/* on epoch; checkpoint.json holds the _step at saving, 11, as
    docs/contract.md asks: the parent keeps its 12 rows up to it, not 24."""
    ids, source = offline["ids"], offline["source"]
    root, child = ids["val-root"], ids["val-child"]
    want = ([(s, root, s, *rest) for s, *rest in local_rows(0, 2)]
            + [(12 + s, child, s, *rest) for s, *rest in local_rows(2, 2)])
    assert chain_rows(source, child) == want
    assert notes_of(source, root) == notes_of(source, child) == []


def test_rows_without_the_axis_metric_are_placed_by_step_not_by_a_stale_epoch(offline):
    """A checkpoint on epoch 1 holds the rows up to epoch 1's val row (_step 11); the train
    rows after it (_step 12-16, epoch 2's) are cut, not kept under epoch 1."""
    ids, source = offline["ids"], offline["source"]
    root, child = ids["epoch-root"], ids["epoch-child"]

    def placed(run_id, rows, first):  # each row at the epoch before it (the first: the first)
        out, at = [], first
        for s, train, val, epoch in rows:
            at = int(epoch) if epoch is not None else at
            out.append((at, run_id, at, train, val, epoch))
        return out

    want = placed(root, local_rows(0, 2), 0) + placed(child, local_rows(2, 2), 2)
    assert chain_rows(source, child) == want
    assert len([r for r in want if r[1] == root]) == 12
    assert notes_of(source, root) == notes_of(source, child) == []


def test_a_step_in_any_artifacts_metadata_or_a_named_folder_makes_a_checkpoint(offline):
    ids, source = offline["ids"], offline["source"]
    root = ids["plain-root"]
    for leaf, cut in (("meta-child", 11), ("ck-then-loader", 17)):
        want = ([(s, root, s, *rest) for s, *rest in local_rows(0, 4) if s <= cut]
                + [(cut + 1 + s, ids[leaf], s, *rest) for s, *rest in local_rows(0, 2)])
        assert chain_rows(source, ids[leaf]) == want, leaf


def test_each_unplaceable_artifact_a_child_used_is_one_note_naming_the_fix(offline):
    ids, source = offline["ids"], offline["source"]
    child = ids["nano-child"]
    notes = notes_of(source, child)
    assert [n.split(",")[0] for n in notes] == [
        f"run {child}: it used nano-model:v0", f"run {child}: it used nano-ck:v1",
        f"run {child}: it used two-json:v0"]
    for note in notes:
        assert 'metadata={"step": N}' in note and "checkpoint.json" in note, note
        assert note.endswith("see docs/contract.md"), note
    assert "checkpoint_global_step_N" in notes[0] and "iter_num" in notes[1]
    assert "holds 2 checkpoint.json files (a/checkpoint.json, b/checkpoint.json)" in notes[2]


def test_left_out_versions_of_one_artifact_are_one_line(offline):
    ids, source = offline["ids"], offline["source"]
    root = ids["plain-root"]
    notes = notes_of(source, root)
    assert len(notes) == 2, notes
    assert notes[0].startswith(f"run {root}: 4 versions of nano-ck of run {root} "
                               f"(v0, v1, v2, v3) are left out: it has type 'checkpoint', but "
                               f"neither its metadata (it has iter_num) nor a checkpoint.json")
    assert notes[1].startswith(f"run {root}: checkpoint two-json:v0 of run {root} is left out: "
                               f"it holds 2 checkpoint.json files")


def test_a_checkpoint_proper_is_the_parent_over_an_artifact_that_only_holds_checkpoint_json(offline):
    """Whichever order the run used them in; the note says why."""
    ids, source = offline["ids"], offline["source"]
    for name in ("ck-then-loader", "loader-then-ck"):
        node = source.tree.nodes[ids[name]]
        assert (node.parent_run, node.parent_step) == (ids["plain-root"], 17)
        [note] = notes_of(source, ids[name])
        assert f"several runs ({ids['plain-root']}, {ids['loader']})" in note \
            or f"several runs ({ids['loader']}, {ids['plain-root']})" in note
        assert "only holds a checkpoint.json" in note, note


def test_chain_prints_the_notes_of_its_own_runs_only(offline):
    ids = offline["ids"]
    more = "more note(s) on runs outside this chain, or on the folder: `runchain tree` shows them"
    quiet = cli("chain", ids["val-child"], "--dir", offline["dir"])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == [f"note: 7 {more}"]
    parents = cli("chain", ids["meta-child"], "--dir", offline["dir"]).stderr.splitlines()
    assert len(parents) == 3 and parents[2] == f"note: 5 {more}"
    assert all(line.startswith(f"note: run {ids['plain-root']}: ") for line in parents[:2])
    noted = cli("chain", ids["nano-child"], "--dir", offline["dir"])
    assert [line.split(",")[0] for line in noted.stderr.splitlines()[:3]] == [
        f"note: run {ids['nano-child']}: it used {name}"
        for name in ("nano-model:v0", "nano-ck:v1", "two-json:v0")]
    everything = cli("tree", "--dir", offline["dir"]).stderr.splitlines()
    assert len(everything) == 7 and set(noted.stderr.splitlines()[:3]) <= set(everything)


def test_the_wandb_reader_reads_the_same_runs_online_the_same_way(offline, online):
    """Logged online by the real SDK (use_artifact for real), read through wandb.Api."""
    assert graph(online["source"], online["ids"]) == EXPECTED
    names = {run_id: name for name, run_id in offline["ids"].items()}
    for name in ("val-child", "epoch-child", "meta-child", "ck-then-loader", "loader-then-ck"):
        want = [(g, names[run], *rest) for g, run, *rest in
                chain_rows(offline["source"], offline["ids"][name])]
        by_name = {run_id: n for n, run_id in online["ids"].items()}
        got = [(g, by_name[run], *rest) for g, run, *rest in
               chain_rows(online["source"], online["ids"][name])]
        assert got == want, name
    child = online["ids"]["nano-child"]
    notes = notes_of(online["source"], child)
    assert len(notes) == 3 and all(n.endswith("see docs/contract.md") for n in notes), notes
    assert len(notes_of(online["source"], online["ids"]["plain-root"])) == 2
