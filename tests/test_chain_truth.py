"""Chains of runs plain wandb code makes, checked row by row: (global step, run, local step,
value) for every row of every stitched chain.

1. forks and rewinds written offline by wandb 0.19 and 0.17 (committed run files, see
   tests/data/README.md), read as the installed wandb's own;
2. a fork at a non-checkpoint step of a run that is rewound later keeps the rows it forked;
3. a run's own step axis, declared with ``define_metric``;
4. checkpoints saved as W&B models (``log_model``) or as any artifact type;
5. a child that goes on with its parent's step counter.

Where the W&B reader can know the same thing (``tests/wandb_standin.py``), it must agree.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import runchain
from helpers import cli, isolate
from foreign import append_use_artifact, original_root, plain, run_files, scripted
from runchain.readers.from_project import open_project
from wandb_standin import StandinApi, project_from_dir

pytestmark = pytest.mark.slow  # see docs/development.md

DATA = Path(__file__).parent / "data"
OLD_SDKS = sorted(p.name.removeprefix("wandb-") for p in DATA.glob("wandb-*"))


def rows(source: runchain.Source, leaf: str, key: str = "loss") -> list[tuple]:
    """A chain's rows as (global step, run, local step, value), in order; ``key`` names no
    column of runchain's, so those keep their names."""
    cols = source.history(leaf, keys=[key])
    return list(zip(cols["global_step"].tolist(), cols["run_id"].tolist(),
                    cols["step"].tolist(), cols[key].tolist()))


def graph(source: runchain.Source) -> dict[str, tuple]:
    return {run_id: (node.parent_run, node.parent_step, node.global_offset, node.continues,
                     node.info.last_step, [c.step for c in node.info.checkpoints])
            for run_id, node in source.tree.nodes.items()}


def remote(wdir: Path, project: str) -> runchain.Source:
    """The same runs as the W&B reader sees them once synced, from the stand-in."""
    return open_project(f"ent/{project}", api=StandinApi(project_from_dir(wdir)))


def assert_readers_agree(local: runchain.Source, other: runchain.Source) -> None:
    assert graph(other) == graph(local)
    for leaf in runchain.leaves(local.tree):
        want, got = local.history(leaf), other.history(leaf)
        assert set(got) == set(want), leaf
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{leaf}: {key}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A fresh isolated wandb folder per scenario, in this module's environment."""
    with pytest.MonkeyPatch.context() as mp:
        made = []

        def make(name: str) -> Path:
            made.append(isolate(mp, tmp_path_factory.mktemp(name)))
            return made[-1]
        yield make


# -- 1. forks and rewinds by older wandb ------------------------------------------------------

def forked_and_rewound(wdir: Path) -> None:
    """tests/data/make_old_wandb_runs.py's scenarios, by the installed wandb."""
    plain(wdir, 30, 0.0, project="oldsdk", id="oldforka")
    plain(wdir, 10, 100.0, project="oldsdk", id="oldforkb", fork_from="oldforka?_step=15")
    plain(wdir, 30, 0.0, project="oldsdk", id="oldrewnd")
    time.sleep(1.1)  # the rewound timeline starts later, as in the committed files
    plain(wdir, 5, 200.0, project="oldsdk", id="oldrewnd", resume_from="oldrewnd?_step=15")


@pytest.fixture(scope="module")
def installed_sdk(folder):
    wdir = folder("installed")
    forked_and_rewound(wdir)
    return runchain.open_source(wdir)


@pytest.mark.parametrize("version", OLD_SDKS)
def test_a_fork_and_a_rewind_by_an_older_wandb_read_as_the_installed_ones(
        version, tmp_path, installed_sdk):
    wdir = shutil.copytree(DATA / f"wandb-{version}" / "wandb", tmp_path / "wandb")
    source = runchain.open_source(wdir)

    fork = source.tree.nodes["oldforkb"]
    assert (fork.parent_run, fork.parent_step, fork.fork, fork.global_offset) == (
        "oldforka", 15, True, 0)
    assert source.tree.notes == ()
    assert rows(source, "oldforkb") == (
        [(s, "oldforka", s, float(s)) for s in range(16)]
        + [(16 + i, "oldforkb", 16 + i, 100.0 + i) for i in range(10)])
    assert rows(source, "oldrewnd") == (  # rows 16-29 were rewound away
        [(s, "oldrewnd", s, float(s)) for s in range(16)]
        + [(16 + i, "oldrewnd", 16 + i, 200.0 + i) for i in range(5)])
    assert_readers_agree(installed_sdk, source)
    # On W&B the branch point is in the run's raw config, as these SDKs upload it
    online = remote(wdir, "oldsdk").tree.nodes["oldforkb"]
    assert (online.parent_run, online.parent_step, online.fork) == ("oldforka", 15, True)


def test_the_committed_old_run_files_hold_their_branch_points_only_in_the_config():
    """What makes them worth keeping: an SDK 0.20+ writes the run record's branch_point."""
    from runchain.readers.record_log import read_run_file
    for version in OLD_SDKS:
        for path in (DATA / f"wandb-{version}").rglob("run-oldforkb.wandb"):
            assert read_run_file(path).branch_point == ("oldforka", 15), version
    assert len(OLD_SDKS) >= 2


# -- 2. a fork at a non-checkpoint step, and its parent rewound later -------------------------

@pytest.fixture(scope="module")
def fork_then_rewind(folder):
    """R logs 0-29 with checkpoints at 9, 19, 29; F forks R at _step 24; then R is rewound
    to 22 and logs 5 more rows."""
    wdir = folder("fork_then_rewind")
    r = original_root(wdir)
    f = plain(wdir, 10, 100.0, project="orig", fork_from=f"{r}?_step=24")
    time.sleep(1.1)
    plain(wdir, 5, 200.0, project="orig", id=r, resume_from=f"{r}?_step=22")
    return {"dir": wdir, "R": r, "F": f, "source": runchain.open_source(wdir)}


def test_a_fork_keeps_the_rows_it_forked_after_its_parent_is_rewound(fork_then_rewind):
    source, r, f = (fork_then_rewind[k] for k in ("source", "R", "F"))
    assert rows(source, f) == (  # R's original rows 23-24, not the rewound ones
        [(s, r, s, 1.0 / (s + 1)) for s in range(25)]
        + [(25 + i, f, 25 + i, 100.0 + i) for i in range(10)])
    assert rows(source, r) == (
        [(s, r, s, 1.0 / (s + 1)) for s in range(23)]
        + [(23 + i, r, 23 + i, 200.0 + i) for i in range(5)])
    assert source.tree.nodes[f].parent_timeline == 0
    assert source.tree.notes == ()


def test_the_tree_marks_an_abandoned_checkpoint_and_says_nothing_false(fork_then_rewind):
    proc = cli("tree", "--dir", fork_then_rewind["dir"])
    assert "steps 0-27" in proc.stdout and "checkpoints 9,19  abandoned 29" in proc.stdout
    assert proc.stderr == ""  # notes go there: none, "past its last logged step" among them


# -- 3. the run's own define_metric axis -------------------------------------------------------

@pytest.fixture(scope="module")
def declared_axis(folder):
    """A plain script's root on its own ``global_step`` (1000, 1010, ...), a checkpoint at
    global_step 1500 with no step_metric in its metadata, and a child resumed from it."""
    wdir = folder("declared_axis")
    r = scripted(wdir, "axis", 60, axis="global_step", axis0=1000, every=10,
                 saves=[{"at": 50, "type": "checkpoint", "name": "ck"}])
    c = scripted(wdir, "axis", 20, axis="global_step", axis0=1510, every=10)
    append_use_artifact(run_files(wdir, c)[-1], "ck:step-1500")
    return {"dir": wdir, "R": r, "C": c, "source": runchain.open_source(wdir)}


def test_a_runs_declared_step_metric_is_its_axis(declared_axis):
    source, r, c = (declared_axis[k] for k in ("source", "R", "C"))
    root = source.tree.nodes[r]
    assert (root.info.step_metric, root.info.last_step, [k.step for k in root.info.checkpoints]) \
        == ("global_step", 1590, [1500])
    assert (source.tree.nodes[c].parent_run, source.tree.nodes[c].parent_step) == (r, 1500)
    assert rows(source, c) == (  # the global axis is the user's own values
        [(1000 + 10 * i, r, 1000 + 10 * i, float(i)) for i in range(51)]
        + [(1510 + 10 * i, c, 1510 + 10 * i, float(i)) for i in range(20)])
    assert source.tree.notes == ()


def test_runchains_column_never_replaces_the_global_step_a_run_logged(declared_axis):
    source, c = declared_axis["source"], declared_axis["C"]
    cols = source.history(c)
    assert set(cols) == {"runchain/global_step", "run_id", "step", "global_step", "loss"}
    np.testing.assert_array_equal(cols["global_step"], cols["runchain/global_step"])
    assert list(source.dataframe(c).columns) == list(cols)  # the pandas extra: same names
    csv = cli("chain", c, "--dir", declared_axis["dir"], "--csv", "-").stdout.splitlines()
    assert csv[0] == "runchain/global_step,run_id,step,global_step,loss"
    assert len(csv) == 1 + 71 and csv[-1].startswith(f"1700,{c},1700,1700")


# -- 4. checkpoints as W&B models, or any artifact holding checkpoint.json ----------------------

@pytest.fixture(scope="module")
def models(folder):
    """A root saving ``log_model`` models at steps 9 and 19 and a ``dataset`` artifact at 29,
    each holding checkpoint.json; child A uses the model at 19, child B the dataset at 29."""
    wdir = folder("models")
    r = scripted(wdir, "models", 30, saves=[{"at": 9, "type": "log_model", "name": "tiny"},
                                            {"at": 19, "type": "log_model", "name": "tiny"},
                                            {"at": 29, "type": "dataset", "name": "state"}])
    a = scripted(wdir, "models", 10, base=100.0)
    append_use_artifact(run_files(wdir, a)[-1], "tiny:step-19", type="model")  # use_model
    b = scripted(wdir, "models", 10, base=200.0)
    append_use_artifact(run_files(wdir, b)[-1], "state:step-29", type="dataset")
    return {"dir": wdir, "R": r, "A": a, "B": b, "source": runchain.open_source(wdir)}


def test_an_artifact_of_any_type_holding_checkpoint_json_is_a_checkpoint(models):
    source, r, a, b = (models[k] for k in ("source", "R", "A", "B"))
    assert [k.step for k in source.tree.nodes[r].info.checkpoints] == [9, 19, 29]
    for child, cut in ((a, 19), (b, 29)):
        node = source.tree.nodes[child]
        assert (node.parent_run, node.parent_step, node.global_offset) == (r, cut, cut + 1)
    assert rows(source, a) == ([(s, r, s, float(s)) for s in range(20)]
                               + [(20 + i, a, i, 100.0 + i) for i in range(10)])
    assert rows(source, b) == ([(s, r, s, float(s)) for s in range(30)]
                               + [(30 + i, b, i, 200.0 + i) for i in range(10)])
    assert source.tree.notes == ()


# -- 5. a child going on with its parent's counter ----------------------------------------------

@pytest.fixture(scope="module")
def counters(folder):
    """R logs 0-29 (checkpoints v0-v2 at 9, 19, 29). Both children use v1 (step 19): C logs
    from step 20, going on with R's counter; D from step 25, which fits neither reading."""
    wdir = folder("counters")
    r = original_root(wdir)
    c = scripted(wdir, "orig", 15, first=20, base=100.0)
    append_use_artifact(run_files(wdir, c)[-1], f"run-{r}-checkpoint:v1")
    d = scripted(wdir, "orig", 5, first=25, base=200.0)
    append_use_artifact(run_files(wdir, d)[-1], f"run-{r}-checkpoint:v1")
    return {"dir": wdir, "R": r, "C": c, "D": d, "source": runchain.open_source(wdir)}


def test_a_child_going_on_with_its_parents_counter_continues_its_axis(counters):
    source, r, c, d = (counters[k] for k in ("source", "R", "C", "D"))
    node = source.tree.nodes[c]
    assert (node.parent_run, node.parent_step, node.continues, node.global_offset) == (
        r, 19, True, 0)
    assert rows(source, c) == ([(s, r, s, 1.0 / (s + 1)) for s in range(20)]
                               + [(20 + i, c, 20 + i, 100.0 + i) for i in range(15)])
    assert not [n for n in source.tree.notes if c in n]
    # any other first step keeps the child's own reading, with a note
    gap = source.tree.nodes[d]
    assert (gap.continues, gap.global_offset) == (False, 20)
    assert rows(source, d)[20:] == [(45 + i, d, 25 + i, 200.0 + i) for i in range(5)]
    (note,) = [n for n in source.tree.notes if d in n]
    assert "first row is at local step 25" in note and "gap of 25 steps" in note


# -- the W&B reader, where it can know --------------------------------------------------------

@pytest.mark.parametrize("case, project", [("declared_axis", "axis"), ("models", "models"),
                                           ("counters", "orig")])
def test_the_w_and_b_reader_reads_the_same_chains(request, case, project):
    """W&B keeps one history per run, the rewound one, so case 2's original rows are not
    there to read, and how it numbers an old SDK's offline fork once synced is not known
    here: those two are read from run files only."""
    made = request.getfixturevalue(case)
    assert_readers_agree(made["source"], remote(made["dir"], project))


# -- ids and cuts ---------------------------------------------------------------------------

def test_a_cut_past_a_runs_last_step_is_an_error_naming_it(counters):
    proc = cli("chain", f"{counters['R']}@5000", "--dir", counters["dir"], check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "5000" in proc.stderr and "29" in proc.stderr
