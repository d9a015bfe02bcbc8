"""The Lightning callback: a Trainer logging to W&B with WandbLogger chains through its checkpoints.

Real Lightning runs of a two-layer MLP on random tensors, offline, through
``examples/lightning_trainer.py`` (10 batches an epoch, a row every step, a checkpoint
every 10 steps): A trains 40 steps; B resumes A's ``epoch=1-step=20.ckpt`` in a new run;
C forks it on other data, with the file uploaded; then C is resumed in place from its
own ``step=30`` checkpoint. WandbLogger writes to ./wandb whatever WANDB_DIR says.
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

import runchain
from helpers import isolate, need

need("torch", "lightning")  # skip without them (the test extra has no torch)

from framework_runs import artifacts, check_chain, enter, example, marker, raw_history, tree
from runchain.integrations.lightning import RunchainCallback


pytestmark = [pytest.mark.framework, pytest.mark.slow]  # see docs/development.md

LOSS, STEP_METRIC = "train/loss", "trainer/global_step"
A20 = "ckpt-a/epoch=1-step=20.ckpt"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("lightning")
        isolate(mp, base)
        wdir = base / "wandb"  # WandbLogger's save_dir "." and not $WANDB_DIR
        a = example("lightning_trainer.py", "--ckpt_dir", "ckpt-a", "--log_model", "all")
        b = example("lightning_trainer.py", "--ckpt_dir", "ckpt-b", "--ckpt_path", A20)
        c = example("lightning_trainer.py", "--ckpt_dir", "ckpt-c", "--ckpt_path", A20,
                    "--data_seed", 1, "--upload")
        c_before = raw_history(wdir, c)
        c_again = example("lightning_trainer.py", "--ckpt_dir", "ckpt-c", "--ckpt_path",
                          "ckpt-c/epoch=2-step=30.ckpt", "--data_seed", 1, "--upload",
                          "--run_id", c)
        yield types.SimpleNamespace(dir=wdir, base=base, a=a, b=b, c=c, c_again=c_again,
                                    c_before=c_before, env=dict(os.environ),
                                    marker=marker(base / f"{A20}.runchain.json"))


@pytest.fixture
def env(runs, monkeypatch):
    enter(runs, monkeypatch)


def test_marker_beside_the_checkpoint_names_the_run_the_step_and_the_artifact(runs, env):
    m = runs.marker
    assert (m["run"], m["framework"], m["step_metric"], m["framework_step"]) == (
        runs.a, "lightning", STEP_METRIC, 20)
    assert m["step"] == 19  # step=20 holds the rows logged at trainer/global_step 0..19
    assert m["checkpoint"] == f"runchain-lightning/run-{runs.a}-checkpoint:step-19"
    ckpt = runchain.load_checkpoint(m["checkpoint"], mode="offline", wandb_dir=runs.dir)
    assert m["row_step"] == 19  # a row every step: _step and trainer/global_step agree in A
    assert (ckpt.run_id, ckpt.step, ckpt.state["framework_step"], ckpt.state["step_metric"]) == (
        runs.a, 19, 20, STEP_METRIC)
    path = (runs.base / A20).resolve()
    assert ckpt.files["epoch=1-step=20.ckpt"] == path.as_uri()  # by reference by default


def test_upload_puts_the_checkpoint_file_in_the_artifact(runs, env):
    ckpt = runchain.load_checkpoint(f"{runs.c}@29", mode="offline", wandb_dir=runs.dir)
    assert ckpt.state["framework_step"] == 30
    staged = ckpt.files["epoch=2-step=30.ckpt"]
    assert not staged.startswith("file://") and open(staged, "rb").read(8)


def test_tree_shows_the_resume_and_the_fork_as_children_at_the_checkpoint_step(runs, env):
    runs_by_id = tree(runs.dir)
    assert runs_by_id[runs.a]["parent_run"] is None
    assert sorted(runs_by_id[runs.a]["children"]) == sorted([runs.b, runs.c])
    for child in (runs.b, runs.c):
        assert (runs_by_id[child]["parent_run"], runs_by_id[child]["parent_step"]) == (runs.a, 19)
        assert runs_by_id[child]["global_offset"] == 0  # its global step goes on from A's
        assert (runs_by_id[child]["first_step"], runs_by_id[child]["step_metric"]) == (20, STEP_METRIC)


def test_chain_cuts_the_parent_at_exactly_the_checkpoint_rows_despite_the_one_step_lag(runs, env):
    cols = check_chain(runs.dir, runs.a, runs.b, cut=19, step_metric=STEP_METRIC, loss=LOSS)
    assert cols["global_step"].tolist() == list(range(40))  # the chain on Lightning's own axis


def test_resume_at_an_epoch_boundary_is_exact_so_the_stitched_loss_equals_the_uninterrupted_run(runs, env):
    stitched = runchain.open_source(runs.dir).history(runs.b, keys=[LOSS])
    whole = runchain.open_source(runs.dir).history(runs.a, keys=[LOSS])
    assert np.array_equal(stitched[LOSS], whole[LOSS], equal_nan=True)  # bit for bit
    fork = runchain.open_source(runs.dir).history(runs.c, keys=[LOSS])
    assert np.array_equal(fork[LOSS][:20], whole[LOSS][:20])
    assert not np.allclose(fork[LOSS][20:], whole[LOSS][20:])


def test_breadcrumbs_name_the_parent_checkpoint(runs, env):
    crumbs = {r.id: r.breadcrumbs for r in runchain.open_source(runs.dir).runs}
    assert crumbs[runs.b] == runchain.Breadcrumbs(runs.a, f"run-{runs.a}-checkpoint:step-19", 19,
                                                  global_offset=0, root_run=runs.a, depth=1,
                                                  step_metric=STEP_METRIC)


def test_lightning_rows_stay_on_the_trainer_step_axis_not_at_global_step_zero(runs, env):
    cols = raw_history(runs.dir, runs.b)
    assert "global_step" not in cols
    assert cols[STEP_METRIC].tolist() == list(range(20, 40))


def test_wandb_logger_model_artifacts_are_left_as_they_are(runs, env):
    logged = artifacts(runs.dir, runs.a)
    model = [a for a in logged if a.type == "model"]
    assert {a.name for a in model} == {f"model-{runs.a}"} and len(model) == 4
    assert [a.metadata["step"] for a in logged if a.type == "checkpoint"] == [9, 19, 29, 39]


def test_resume_in_place_records_no_edge_and_keeps_the_rows(runs, env):
    assert runs.c_again == runs.c
    node = tree(runs.dir)[runs.c]
    assert (node["parent_run"], node["parent_step"]) == (runs.a, 19)
    after = raw_history(runs.dir, runs.c)
    assert after["_step"].tolist() == runs.c_before["_step"].tolist() == list(range(20))
    assert after[STEP_METRIC].tolist() == runs.c_before[STEP_METRIC].tolist()
    assert np.array_equal(after[LOSS], runs.c_before[LOSS])  # resumed at an epoch boundary: exact


def test_processes_other_than_the_main_one_do_nothing(monkeypatch):
    import wandb
    monkeypatch.setattr(wandb, "run", None)  # rank 0 would raise: no W&B run
    callback = RunchainCallback()
    trainer = types.SimpleNamespace(is_global_zero=False, loggers=[], ckpt_path=None,
                                    global_step=20, checkpoint_callbacks=[])
    callback.on_fit_start(trainer, None)
    callback.on_save_checkpoint(trainer, None, {})
    callback.on_train_end(trainer, None)
    assert callback.run is None and callback.pending is None
    with pytest.raises(runchain.RunchainError, match="WandbLogger"):
        callback.on_fit_start(types.SimpleNamespace(**{**vars(trainer), "is_global_zero": True}), None)


def test_a_parent_whose_run_files_are_gone_fails_naming_the_checkpoint(runs, env, tmp_path):
    from framework_runs import OnlineRun
    from runchain.integrations import marker as markers

    run = OnlineRun("orphan01", "runchain-lightning")
    run.offline, run.dir = True, str(tmp_path / "wandb" / "offline-run-x-orphan01" / "files")
    with pytest.raises(runchain.RunNotFoundError, match=r"resuming from ckpt-a/epoch=1-step=20.ckpt .*"
                                                        rf"run-{runs.a}-checkpoint:step-19"):
        markers.attach(run, {**runs.marker, "wandb_dir": str(tmp_path / "gone")}, STEP_METRIC, A20)


def test_a_checkpoint_saved_without_the_callback_starts_a_new_tree_with_a_warning():
    from framework_runs import OnlineRun
    from runchain.integrations import marker as markers

    run = OnlineRun("fresh001", "runchain-lightning")
    with pytest.warns(UserWarning, match="old.ckpt has no runchain marker"):
        markers.attach(run, None, STEP_METRIC, "old.ckpt")
    assert run.config["runchain"]["parent_run"] is None and run.config["runchain"]["root_run"] == "fresh001"
    assert run.define_metric_calls[-1] == ("*", STEP_METRIC)


# -- W&B's integration alone: no RunchainCallback ------------------------------------------

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """P trains 40 steps with ``log_model="all"`` and no RunchainCallback; Q resumes P's
    ``step=20`` file in a new run after (online) ``use_artifact`` of the ``model-<P>``
    version holding it, the record appended as online wandb writes it."""
    from foreign import append_use_artifact, run_files

    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("lightning-plain")
        isolate(mp, base)
        wdir = base / "wandb"
        p = example("lightning_trainer.py", "--ckpt_dir", "ckpt-p", "--log_model", "all", plain=True)
        q = example("lightning_trainer.py", "--ckpt_dir", "ckpt-q", "--ckpt_path",
                    "ckpt-p/epoch=1-step=20.ckpt", plain=True)
        models = [a for a in artifacts(wdir, p) if a.type == "model"]
        version = next(i for i, a in enumerate(models)
                       if a.metadata["original_filename"] == "epoch=1-step=20.ckpt")
        append_use_artifact(run_files(wdir, q)[-1], f"model-{p}:v{version}", "model")
        yield types.SimpleNamespace(dir=wdir, base=base, p=p, q=q, env=dict(os.environ))


def test_a_plain_lightning_run_that_used_a_model_checkpoint_is_its_child_one_step_before(plain, monkeypatch):
    enter(plain, monkeypatch)
    runs_by_id = tree(plain.dir)
    p, q = runs_by_id[plain.p], runs_by_id[plain.q]
    assert (p["step_metric"], q["step_metric"]) == (STEP_METRIC, STEP_METRIC)
    assert [c["step"] for c in p["checkpoints"]] == [9, 19, 29, 39]  # step=N holds rows to N-1
    assert (q["parent_run"], q["parent_step"], q["global_offset"]) == (plain.p, 19, 0)
    cols = check_chain(plain.dir, plain.p, plain.q, cut=19, step_metric=STEP_METRIC, loss=LOSS)
    assert cols["global_step"].tolist() == list(range(40))
    whole = runchain.open_source(plain.dir).history(plain.p, keys=[LOSS])
    assert np.array_equal(cols[LOSS], whole[LOSS])  # resumed at an epoch boundary: exact


def test_the_wandb_reader_reads_the_plain_lightning_runs_the_same(plain, monkeypatch):
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir

    enter(plain, monkeypatch)
    remote = open_project("ent/runchain-lightning", api=StandinApi(project_from_dir(plain.dir)))
    node = remote.tree.nodes[plain.q]
    assert (node.parent_run, node.parent_step, node.global_offset) == (plain.p, 19, 0)
    ours, theirs = (s.history(plain.q, keys=[LOSS]) for s in (runchain.open_source(plain.dir), remote))
    assert ours["global_step"].tolist() == theirs["global_step"].tolist() == list(range(40))
    assert np.array_equal(ours[LOSS], theirs[LOSS])
