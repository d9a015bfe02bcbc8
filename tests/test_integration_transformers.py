"""The HF Trainer callback: a Trainer that reports to W&B chains through its checkpoints.

Real Trainer runs of a tiny GPT-2 (from a config) on random tokens, offline, through
``examples/hf_trainer.py``: A trains 40 steps (checkpoints at 10, 20, 30, 40; a row every
5 steps); B resumes A's checkpoint-20 in a new run; C forks it on other data, with the
folder uploaded; then C is resumed in place from its own checkpoint-30.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

import runchain
from helpers import cli, isolate, need

need("torch", "transformers", "accelerate")  # skip without them (the test extra has no torch)

from framework_runs import artifacts, check_chain, enter, example, marker, raw_history, tree
from runchain.integrations.transformers import RunchainCallback


pytestmark = [pytest.mark.framework, pytest.mark.slow]  # see docs/development.md

LOSS, STEP_METRIC = "train/loss", "train/global_step"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("hf")
        wdir = isolate(mp, base)
        a = example("hf_trainer.py", "--output_dir", "out-a", env={"WANDB_LOG_MODEL": "checkpoint"})
        b = example("hf_trainer.py", "--output_dir", "out-b", "--resume_from", "out-a/checkpoint-20")
        c = example("hf_trainer.py", "--output_dir", "out-c", "--resume_from", "out-a/checkpoint-20",
                    "--data_seed", 1, "--upload")
        c_before = raw_history(wdir, c)
        c_again = example("hf_trainer.py", "--output_dir", "out-c", "--resume_from",
                          "out-c/checkpoint-30", "--data_seed", 1, "--upload",
                          env={"WANDB_RUN_ID": c, "WANDB_RESUME": "allow"})
        yield types.SimpleNamespace(dir=wdir, base=base, a=a, b=b, c=c, c_again=c_again,
                                    c_before=c_before, env=dict(__import__("os").environ),
                                    marker=marker(base / "out-a" / "checkpoint-20" / "runchain.json"))


@pytest.fixture
def env(runs, monkeypatch):
    enter(runs, monkeypatch)


def test_marker_names_the_run_the_step_and_the_checkpoint_artifact(runs, env):
    m = runs.marker
    assert (m["run"], m["framework"], m["step_metric"], m["framework_step"]) == (
        runs.a, "transformers", STEP_METRIC, 20)
    assert m["step"] == 20  # on the run's axis: the Trainer logs step 20's row, then saves
    assert m["row_step"] == 3  # rows at global steps 5, 10, 15, 20 are _step 0..3
    assert m["checkpoint"] == f"runchain-hf/run-{runs.a}-checkpoint:step-20"
    ckpt = runchain.load_checkpoint(m["checkpoint"], mode="offline")
    assert (ckpt.run_id, ckpt.step, ckpt.state["framework_step"], ckpt.state["step_metric"]) == (
        runs.a, 20, 20, STEP_METRIC)
    # stored by reference by default: file:// URIs to the Trainer's own folder, marker included
    folder = (runs.base / "out-a" / "checkpoint-20").resolve()
    assert ckpt.files["model.safetensors"] == (folder / "model.safetensors").as_uri()
    assert ckpt.files["runchain.json"] == (folder / "runchain.json").as_uri()


def test_upload_puts_the_checkpoint_folder_in_the_artifact(runs, env):
    ckpt = runchain.load_checkpoint(f"{runs.c}@30", mode="offline")
    assert ckpt.state["framework_step"] == 30
    staged = ckpt.files["checkpoint-30/model.safetensors"]
    assert not staged.startswith("file://") and open(staged, "rb").read(8)  # a staged copy


def test_tree_shows_the_resume_and_the_fork_as_children_at_the_checkpoint_step(runs, env):
    runs_by_id = tree(runs.dir)
    assert runs_by_id[runs.a]["parent_run"] is None
    assert sorted(runs_by_id[runs.a]["children"]) == sorted([runs.b, runs.c])
    for run in (runs.a, runs.b, runs.c):  # every run on the Trainer's own axis
        assert runs_by_id[run]["step_metric"] == STEP_METRIC
    assert [c["step"] for c in runs_by_id[runs.a]["checkpoints"]] == [10, 20, 30, 40]
    for child in (runs.b, runs.c):
        assert (runs_by_id[child]["parent_run"], runs_by_id[child]["parent_step"]) == (runs.a, 20)
        assert runs_by_id[child]["global_offset"] == 0  # its global step goes on from A's
        assert runs_by_id[child]["first_step"] == 25
    text = cli("tree", "--dir", runs.dir).stdout
    assert f"{runs.b} " in text and f"from {runs.a}@20  steps (train/global_step) 25-40" in text


def test_chain_cuts_the_parent_at_exactly_the_checkpoint_rows(runs, env):
    check_chain(runs.dir, runs.a, runs.b, cut=20, step_metric=STEP_METRIC, loss=LOSS)


def test_trainer_resumes_exactly_so_the_stitched_loss_equals_the_uninterrupted_run(runs, env):
    stitched = runchain.open_source(runs.dir).history(runs.b, keys=[LOSS])
    whole = runchain.open_source(runs.dir).history(runs.a, keys=[LOSS])
    assert stitched["global_step"].tolist() == whole["global_step"].tolist()  # the same rows
    assert np.array_equal(stitched[LOSS], whole[LOSS], equal_nan=True)  # bit for bit
    fork = runchain.open_source(runs.dir).history(runs.c, keys=[LOSS])
    assert np.array_equal(fork[LOSS][:4], whole[LOSS][:4])
    assert not np.allclose(fork[LOSS][4:8], whole[LOSS][4:8])  # other data after the cut


def test_breadcrumbs_name_the_parent_checkpoint(runs, env):
    crumbs = {r.id: r.breadcrumbs for r in runchain.open_source(runs.dir).runs}
    assert crumbs[runs.b] == runchain.Breadcrumbs(runs.a, f"run-{runs.a}-checkpoint:step-20", 20,
                                                  global_offset=0, root_run=runs.a, depth=1,
                                                  step_metric=STEP_METRIC)


def test_trainer_rows_stay_on_the_trainer_step_axis_not_at_global_step_zero(runs, env):
    cols = raw_history(runs.dir, runs.b)
    assert "global_step" not in cols  # wandb's step sync would have filled in 0 for every row
    assert cols[STEP_METRIC][:4].tolist() == [25, 30, 35, 40]


def test_wandb_callback_model_artifacts_are_left_as_they_are(runs, env):
    logged = artifacts(runs.dir, runs.a)
    model = [a for a in logged if a.type == "model"]
    assert {a.name for a in model} == {f"model-{runs.a}"}
    assert ["checkpoint_global_step_20" in a.aliases for a in model].count(True) == 1
    assert [a.metadata["step"] for a in logged if a.type == "checkpoint"] == [10, 20, 30, 40]


def test_resume_in_place_records_no_edge_and_keeps_the_rows(runs, env):
    assert runs.c_again == runs.c
    node = tree(runs.dir)[runs.c]
    assert (node["parent_run"], node["parent_step"]) == (runs.a, 20)  # the fork's edge, kept
    assert [c["step"] for c in node["checkpoints"]] == [30, 40]
    after = raw_history(runs.dir, runs.c)
    assert after["_step"].tolist() == runs.c_before["_step"].tolist()
    # exact resume: the rows after checkpoint-30 came back the same
    assert np.array_equal(after[LOSS], runs.c_before[LOSS], equal_nan=True)
    assert after[STEP_METRIC].tolist() == runs.c_before[STEP_METRIC].tolist()


def test_processes_other_than_the_main_one_do_nothing(monkeypatch):
    import wandb
    monkeypatch.setattr(wandb, "run", None)  # rank 0 would raise: no W&B run
    callback = RunchainCallback()
    state = types.SimpleNamespace(is_world_process_zero=False, global_step=20, stateful_callbacks={})
    callback.on_train_begin(None, state, None)
    callback.on_save(types.SimpleNamespace(output_dir="nowhere"), state, None)
    assert callback.run is None and callback.state()["attributes"] == {"saving": None}
    with pytest.raises(runchain.RunchainError, match="report_to='wandb'"):
        callback.on_train_begin(None, types.SimpleNamespace(**{**vars(state), "is_world_process_zero": True}), None)


def test_online_a_new_run_uses_the_checkpoint_the_marker_names(runs, env):
    """The online path, against a stand-in W&B holding the real offline runs as synced."""
    from framework_runs import OnlineRun, standin_api
    from runchain.integrations import marker as markers

    api = standin_api(runs.dir)
    run = OnlineRun("online01", "runchain-hf")
    markers.attach(run, runs.marker, STEP_METRIC, "checkpoint-20", api=api)
    ((name, kind),) = run.use_artifact_calls
    assert name.startswith(f"ent/runchain-hf/run-{runs.a}-checkpoint:v") and kind == "checkpoint"
    assert api.artifact(name).metadata == {"step": 20, "step_metric": STEP_METRIC, "row_step": 3}
    crumbs = run.config["runchain"]  # the version the marker names, pinned
    assert (crumbs["parent_run"], crumbs["parent_step"], crumbs["global_offset"]) == (runs.a, 20, 0)
    assert run.define_metric_calls[-1] == ("*", STEP_METRIC)  # the Trainer's axis, declared last


# -- W&B's integration alone: no RunchainCallback ------------------------------------------

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """P trains 40 steps with ``WANDB_LOG_MODEL=checkpoint`` and no RunchainCallback; Q
    resumes P's checkpoint-20 in a new run after (online) ``use_artifact`` of its
    ``model-<P>:checkpoint_global_step_20``, the record appended as online wandb writes it."""
    from foreign import append_use_artifact, run_files

    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("hf-plain")
        wdir = isolate(mp, base)
        p = example("hf_trainer.py", "--output_dir", "out-p", plain=True,
                    env={"WANDB_LOG_MODEL": "checkpoint"})
        q = example("hf_trainer.py", "--output_dir", "out-q", "--resume_from", "out-p/checkpoint-20",
                    plain=True)
        append_use_artifact(run_files(wdir, q)[-1], f"model-{p}:checkpoint_global_step_20", "model")
        yield types.SimpleNamespace(dir=wdir, base=base, p=p, q=q, env=dict(__import__("os").environ))


def test_a_plain_trainer_run_that_used_a_model_checkpoint_is_its_child_on_the_trainer_axis(plain, monkeypatch):
    enter(plain, monkeypatch)
    assert not (plain.base / "out-p" / "checkpoint-20" / "runchain.json").exists()  # no callback
    runs_by_id = tree(plain.dir)
    p, q = runs_by_id[plain.p], runs_by_id[plain.q]
    assert (p["step_metric"], q["step_metric"]) == (STEP_METRIC, STEP_METRIC)
    assert [c["step"] for c in p["checkpoints"]] == [10, 20, 30, 40]  # model-<P>'s aliases
    assert (q["parent_run"], q["parent_step"], q["global_offset"]) == (plain.p, 20, 0)
    cols = check_chain(plain.dir, plain.p, plain.q, cut=20, step_metric=STEP_METRIC, loss=LOSS)
    whole = runchain.open_source(plain.dir).history(plain.p, keys=[LOSS])
    assert np.array_equal(cols[LOSS], whole[LOSS], equal_nan=True)  # the Trainer resumes exactly


def test_the_wandb_reader_reads_the_plain_trainer_runs_the_same(plain, monkeypatch):
    """Against a stand-in W&B holding the offline runs as synced (the edge: Q's used
    ``model`` artifact)."""
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir

    enter(plain, monkeypatch)
    remote = open_project("ent/runchain-hf", api=StandinApi(project_from_dir(plain.dir)))
    local = runchain.open_source(plain.dir)
    for source in (remote, local):
        node = source.tree.nodes[plain.q]
        assert (node.parent_run, node.parent_step, node.global_offset) == (plain.p, 20, 0)
        assert (node.info.step_metric, node.info.first_step) == (STEP_METRIC, 25)
    assert [c.step for c in remote.tree.nodes[plain.p].info.checkpoints] == [10, 20, 30, 40]
    ours, theirs = (s.history(plain.q, keys=[LOSS]) for s in (local, remote))
    assert ours["global_step"].tolist() == theirs["global_step"].tolist()
    assert np.array_equal(ours[LOSS], theirs[LOSS], equal_nan=True)


def test_the_report_draws_each_run_from_its_first_framework_step(runs, env):
    """The report's data: B's bar and rows begin at global step 25, after A's cut at 20,
    not at its offset 0 (where they would cover A's)."""
    import base64

    from runchain.renderers.report.data import payload

    source = runchain.open_source(runs.dir)
    described = {r["id"]: r for r in payload(source, [LOSS], [LOSS], [runs.b], "test")["runs"]}
    a, b = described[runs.a], described[runs.b]
    assert (a["offset"], a["firstStep"], a["lastStep"]) == (0, 5, 40)
    assert (b["offset"], b["firstStep"], b["lastStep"], b["parentStep"]) == (0, 25, 40, 20)
    assert [tuple(p) for p in a["pieces"]] == [(5, 20), (21, 40)]  # cut where B started
    steps = np.frombuffer(base64.b64decode(b["series"][0][0][0]), "<i4")
    assert steps.min() == 25 and steps.max() == 40  # local steps on the Trainer's axis


def test_the_wandb_reader_reads_the_callback_runs_on_the_trainer_axis_too(runs, env):
    """Against a stand-in W&B holding the offline runs as synced: the breadcrumbs declare
    the axis, the summary lists the checkpoint steps, the summary's step metric is the last
    step; the tree and the stitched history are the folder reader's."""
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir

    remote = open_project("ent/runchain-hf", api=StandinApi(project_from_dir(runs.dir)))
    local = runchain.open_source(runs.dir)
    # not C: resumed in place offline, its synced summary lists only the last file's
    # checkpoints (a limit of offline resume in place, whatever the axis)
    for run_id in (runs.a, runs.b):
        theirs, ours = remote.tree.nodes[run_id], local.tree.nodes[run_id]
        assert (theirs.parent_run, theirs.parent_step, theirs.global_offset) == (
            ours.parent_run, ours.parent_step, ours.global_offset)
        assert (theirs.info.step_metric, theirs.info.last_step) == (STEP_METRIC, 40)
        assert theirs.info.first_step == ours.info.first_step  # 5 and 25: one short scan
        assert [c.step for c in theirs.info.checkpoints] == [c.step for c in ours.info.checkpoints]
    ours, theirs = (s.history(runs.b, keys=[LOSS]) for s in (local, remote))
    assert ours["global_step"].tolist() == theirs["global_step"].tolist()
    assert np.array_equal(ours[LOSS], theirs[LOSS], equal_nan=True)
