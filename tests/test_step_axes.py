"""A run's step axis, the odd cases: real offline runs made by small wandb scripts, read
by the folder reader. The framework callbacks' own runs are in test_integration_*.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

import runchain
from foreign import _python, append_use_artifact, run_files


pytestmark = pytest.mark.slow  # see docs/development.md

HF = "train/global_step"

# One run as a plan says: rows, then W&B artifacts, then runchain checkpoints.
_SCRIPT = r'''
import json, sys
import wandb
import runchain

plan = json.loads(sys.argv[1])
run = wandb.init(project="axes", name=plan.get("name"), config=plan.get("config"))
if "start" in plan:
    runchain.start(run, None, step_metric=plan["start"])
for row in plan.get("rows", []):
    run.log(row)
for a in plan.get("artifacts", []):
    artifact = wandb.Artifact(a["name"], type=a["type"], metadata=a.get("metadata", {}))
    with artifact.new_file("weights.txt") as f:
        f.write(json.dumps(a))
    run.log_artifact(artifact, aliases=a.get("aliases", []))
for c in plan.get("checkpoints", []):
    runchain.save_checkpoint(run, {}, step=c["step"], step_metric=c.get("step_metric"))
run.finish()
print(json.dumps({"id": run.id}))
'''


def make(wandb_dir, **plan) -> str:
    return _python(_SCRIPT, wandb_dir, json.dumps(plan))["id"]


def hf_rows(steps, loss=0.0):
    return [{HF: s, "train/loss": loss + s} for s in steps]


def remote(wandb_dir):
    """The folder as a stand-in W&B project holding it synced (tests/wandb_standin.py)."""
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir

    return open_project("ent/axes", api=StandinApi(project_from_dir(wandb_dir)))


def facts(source, run_id):
    node = source.tree.nodes[run_id]
    return (node.info.step_metric, node.info.first_step, node.info.last_step, node.parent_run,
            node.parent_step, node.global_offset)


def notes_of(source, run_id):
    return [n for n in source.tree.notes if n.startswith(f"run {run_id}:")]


def test_breadcrumbs_on_step_keep_a_run_on_step_whatever_model_artifacts_it_logs(wandb_dir):
    run = make(wandb_dir, start=None, rows=hf_rows(range(5, 55, 5)),
               artifacts=[{"name": "model-x", "type": "model",
                           "aliases": ["checkpoint_global_step_50"]}],
               checkpoints=[{"step": 9}])
    source = runchain.open_source(wandb_dir)
    info = source.tree.nodes[run].info
    assert (info.step_metric, info.first_step, info.last_step) == ("_step", 0, 9)
    assert [c.step for c in info.checkpoints] == [9]
    assert notes_of(source, run) == [f"run {run}: checkpoint model-x:v0 is left out: its step 50 "
                                     f"is on {HF}, the run's steps on _step"]


@pytest.mark.parametrize("how", ["step sync", "no column"])
def test_a_declared_axis_never_logged_is_read_on_step_with_a_note(wandb_dir, how):
    if how == "step sync":  # runchain.start declares it: wandb writes 0 into every row
        run = make(wandb_dir, start=HF, rows=[{"loss": 1.0}, {"loss": 0.5}])
    else:  # breadcrumbs that say so, and nothing declared
        crumbs = runchain.core.breadcrumbs.breadcrumbs_for("x", step_metric=HF).to_config()
        run = make(wandb_dir, config={"runchain": crumbs}, rows=[{"loss": 1.0}, {"loss": 0.5}])
    source = runchain.open_source(wandb_dir)
    info = source.tree.nodes[run].info
    assert (info.step_metric, info.first_step, info.last_step) == ("_step", 0, 1)
    assert notes_of(source, run) == [
        f"run {run}: its breadcrumbs or checkpoints put its steps on {HF}, but it logged no "
        f"value of {HF} other than 0 (wandb's step sync writes 0 into rows logged before any); "
        f"read on _step"]
    assert source.history(run)["step"].tolist() == [0, 1]
    if how == "step sync":  # the W&B reader says the same, from the summary
        theirs = remote(wandb_dir)
        assert theirs.tree.nodes[run].info.step_metric == "_step"
        assert notes_of(theirs, run) == notes_of(source, run)


def test_a_counter_that_goes_back_is_read_as_a_restart_and_said(wandb_dir):
    # trained to 20, then again from 10 in the same run (an online resume in place, say)
    run = make(wandb_dir, start=HF, rows=hf_rows([5, 10, 15, 20]) + hf_rows([10, 15, 20, 25], 100))
    source = runchain.open_source(wandb_dir)
    info = source.tree.nodes[run].info
    assert (info.first_step, info.last_step) == (5, 25)
    assert notes_of(source, run) == [
        f"run {run}: its {HF} goes back from 20 to 10 (at its row 4): read as a restart at 10, "
        f"its later rows replacing the earlier ones from there on (resumed in place without "
        f"RunchainCallback, or trained twice in one run?)"]
    cols = source.history(run, keys=["train/loss"])
    assert cols["global_step"].tolist() == [5, 10, 15, 20, 25]
    assert cols["train/loss"].tolist() == [5, 110, 115, 120, 125]  # the later attempt's
    theirs = remote(wandb_dir)  # W&B: the first row from one short scan; the same rows
    assert facts(theirs, run) == facts(source, run)
    assert theirs.history(run, keys=["train/loss"])["train/loss"].tolist() == [5, 110, 115, 120, 125]


def test_a_used_model_artifact_without_a_step_is_no_edge_and_is_said(wandb_dir):
    parent = make(wandb_dir, rows=hf_rows([5, 10]), artifacts=[
        {"name": "model-p", "type": "model", "aliases": ["latest"]}])
    child = make(wandb_dir, rows=hf_rows([15, 20]))
    append_use_artifact(run_files(wandb_dir, child)[-1], "model-p:v0", "model")
    source = runchain.open_source(wandb_dir)
    assert source.tree.nodes[child].parent_run is None
    assert notes_of(source, child) == [
        f"run {child}: it used model-p:v0, which runchain cannot place, so it is no edge: it is "
        f"a model artifact with no step in its metadata, a checkpoint.json, an alias "
        f"checkpoint_global_step_N or its file name step=N; log it with "
        f"metadata={{\"step\": N}} (N: the run's _step when it saved), or put a "
        f"checkpoint.json holding {{\"step\": N}} in it; see docs/contract.md"]
    assert parent in source.tree.roots


def test_a_model_collection_several_runs_log_links_its_alias_to_the_newest(wandb_dir):
    """The Trainer names its artifacts model-<run_name> when run_name is set: two runs of one
    name share the collection, and W&B moves an alias to the newest version."""
    model = lambda n: {"name": "model-exp", "type": "model",  # noqa: E731
                       "aliases": [f"checkpoint_global_step_{n}"]}
    old = make(wandb_dir, name="exp", rows=hf_rows([10, 20]), artifacts=[model(10), model(20)])
    new = make(wandb_dir, name="exp", rows=hf_rows([10, 20], 50), artifacts=[model(10), model(20)])
    child = make(wandb_dir, rows=hf_rows([30, 40]))
    append_use_artifact(run_files(wandb_dir, child)[-1], "model-exp:checkpoint_global_step_20", "model")
    source = runchain.open_source(wandb_dir)
    node = source.tree.nodes[child]
    assert (node.parent_run, node.parent_step, node.global_offset) == (new, 20, 0)
    for run in (old, new):
        assert any("artifact model-exp is logged by runs" in n for n in notes_of(source, run))
    cols = source.history(child, keys=["train/loss"])
    assert cols["train/loss"].tolist() == [60, 70, 30, 40]
    assert facts(remote(wandb_dir), child) == facts(source, child)  # W&B: logged_by() says


def test_a_resume_in_place_from_an_old_marker_is_refused_naming_the_fix():
    from framework_runs import OnlineRun
    from runchain.integrations import marker as markers

    run = OnlineRun("same0001", "p")
    old = {"runchain_marker": 1, "run": "same0001", "step": 3,
           "checkpoint": "p/run-same0001-checkpoint:step-3"}
    with pytest.raises(runchain.CheckpointError, match=r"ckpt-3: its runchain marker is of version 1"
                                                        r".*resume it in a new run"):
        markers.attach(run, old, HF, "ckpt-3")
    with pytest.warns(UserWarning, match="marker is of version 1"):
        markers.attach(OnlineRun("other001", "p"), old, HF, "ckpt-3")
    assert np.isscalar(run.step)


def test_checkpoint_steps_agree_offline_and_online_on_every_kind_of_artifact(wandb_dir):
    """One rule (``classify``) for both: a runchain checkpoint, a plain ``checkpoint`` with
    only checkpoint.json, W&B's HF ``model`` checkpoint; not a model without a step, nor a
    dataset."""
    from wandb_standin import StandinApi, project_from_dir

    run = make(wandb_dir, start=HF, rows=hf_rows(range(0, 40, 5)),
               artifacts=[{"name": "model-x", "type": "model",
                           "aliases": ["checkpoint_global_step_25"]},
                          {"name": "model-x", "type": "model", "aliases": ["best"]},
                          {"name": "data", "type": "dataset"}],
               checkpoints=[{"step": 30, "step_metric": HF}])
    offline = runchain.checkpoint_steps(run, wandb_dir=wandb_dir)
    api = StandinApi(project_from_dir(wandb_dir))
    online = runchain.checkpoint_steps(run, mode="online", project="axes", entity="ent",
                                       api=api, wandb_dir=wandb_dir.parent / "elsewhere")
    assert offline == online == [25, 30]
