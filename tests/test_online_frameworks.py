"""The framework callbacks online, end to end: real Hugging Face Trainer and Lightning runs of
``examples/hf_trainer.py`` and ``examples/lightning_trainer.py``, the real wandb SDK online
against the HTTP stand-in of W&B (``tests/wandb_server.py``), nothing monkeypatched; then
read back from W&B with ``wandb.Api`` (``runchain.open_source(project=...)``).

One project per framework: A trains 30 steps (a checkpoint every 10), its ``RunchainCallback``
logging each checkpoint as a version of ``run-<A>-checkpoint`` on W&B; B resumes A's
checkpoint at global step 20 in a new run, finds its parent from the marker beside the
checkpoint, loads that artifact from W&B and uses it (the input edge).
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

import runchain
from helpers import isolate, need

need("torch", "transformers", "accelerate", "lightning")  # the test extra has no torch

from framework_runs import check_stitched, enter, example, marker, own_rows, raw_history
from runchain.renderers.formats import chain_rows

pytestmark = [pytest.mark.framework, pytest.mark.slow]  # see docs/development.md

LOSS = "train/loss"
A20 = "ckpt-a/epoch=1-step=20.ckpt"  # Lightning's checkpoint at global step 20

# Per framework, what the runs below make on W&B: the project; the run's axis; A's
# checkpoint steps on it; the cut (the step of A's checkpoint 20 on the axis: Lightning's
# step=20 holds the rows logged up to 19); that row's _step in A (HF: a row every 5 steps);
# B's first and last step.
EXPECTED = {
    "hf": dict(project="hf-online", axis="train/global_step", steps=[10, 20, 30], cut=20,
               row_step=3, first=25, last=30),
    "lightning": dict(project="lightning-online", axis="trainer/global_step", steps=[9, 19, 29],
                      cut=19, row_step=19, first=20, last=29),
}


def grow(server, tmp_path_factory, framework: str, script: str, a_args: tuple, b_args: tuple,
         marker_path: str, wandb_dir: str) -> types.SimpleNamespace:
    """A, then B from A's checkpoint, each a real run of ``examples/<script>`` online into
    the stand-in; with the requests the server saw while they ran, and the project read back."""
    project = EXPECTED[framework]["project"]
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp(project)
        isolate(mp, base, server=server)
        seen = len(server.requests())
        a = example(script, *a_args, "--project", project)
        b = example(script, *b_args, "--project", project)
        requests = server.requests()[seen:]
        path = f"{server.entity}/{project}"
        return types.SimpleNamespace(
            base=base, dir=base / wandb_dir, a=a, b=b, env=dict(os.environ), requests=requests,
            marker=marker(base / marker_path), path=path, source=runchain.open_source(project=path),
            **EXPECTED[framework])


@pytest.fixture(scope="module")
def hf(wandb_server, tmp_path_factory):
    return grow(wandb_server, tmp_path_factory, "hf", "hf_trainer.py",
                ("--output_dir", "out-a", "--max_steps", 30),
                ("--output_dir", "out-b", "--max_steps", 30, "--resume_from", "out-a/checkpoint-20"),
                "out-a/checkpoint-20/runchain.json", "wandb_dir/wandb")


@pytest.fixture(scope="module")
def lightning(wandb_server, tmp_path_factory):
    return grow(wandb_server, tmp_path_factory, "lightning", "lightning_trainer.py",
                ("--ckpt_dir", "ckpt-a", "--max_steps", 30),
                ("--ckpt_dir", "ckpt-b", "--max_steps", 30, "--ckpt_path", A20),
                f"{A20}.runchain.json", "wandb")  # WandbLogger's save_dir "."


@pytest.fixture(params=list(EXPECTED))
def online(request, monkeypatch):
    """One framework's runs, stepped into: their environment (the server's), their folder."""
    made = request.getfixturevalue(request.param)
    enter(made, monkeypatch)
    return made


def test_the_runs_logged_and_used_checkpoints_on_w_and_b(online):
    operations = {r["operation"] for r in online.requests}
    # A logged its checkpoints; B found the one it resumed and used it
    assert {"CreateArtifact", "CommitArtifact", "ArtifactMembershipByName",
            "UseArtifact"} <= operations, sorted(operations)


def test_the_marker_names_the_checkpoint_artifact_on_w_and_b(online):
    m = online.marker
    assert (m["run"], m["step"], m["step_metric"], m["framework_step"], m["row_step"]) == (
        online.a, online.cut, online.axis, 20, online.row_step)
    assert m["checkpoint"] == f"{online.path}/run-{online.a}-checkpoint:step-{online.cut}"


def test_b_is_a_child_of_a_at_the_checkpoint_step_on_the_framework_axis(online):
    nodes = online.source.tree.nodes
    assert set(nodes) == {online.a, online.b}
    a, b = nodes[online.a], nodes[online.b]
    assert a.parent_run is None and list(a.children) == [online.b]
    assert (b.parent_run, b.parent_step, b.global_offset) == (online.a, online.cut, 0)
    assert (a.info.step_metric, b.info.step_metric) == (online.axis, online.axis)
    assert (b.info.first_step, b.info.last_step) == (online.first, online.last)
    assert b.info.breadcrumbs == runchain.Breadcrumbs(
        online.a, f"run-{online.a}-checkpoint:step-{online.cut}", online.cut, global_offset=0,
        root_run=online.a, depth=1, step_metric=online.axis)


def test_a_checkpoints_are_listed(online):
    nodes = online.source.tree.nodes
    assert [c.step for c in nodes[online.a].info.checkpoints] == online.steps
    assert [c.step for c in nodes[online.b].info.checkpoints] == online.steps[-1:]


def test_b_used_a_checkpoint_artifact_on_w_and_b(online):
    import wandb

    api = wandb.Api()
    logged = [a for a in api.run(f"{online.path}/{online.a}").logged_artifacts()
              if a.type == "checkpoint"]
    assert [(a.name, a.metadata["step"]) for a in logged] == [
        (f"run-{online.a}-checkpoint:v{i}", step) for i, step in enumerate(online.steps)]
    used = api.run(f"{online.path}/{online.b}").used_artifacts()
    assert [(a.name, a.type) for a in used] == [(f"run-{online.a}-checkpoint:v1", "checkpoint")]
    assert f"step-{online.cut}" in used[0].aliases
    assert used[0].metadata == {"step": online.cut, "step_metric": online.axis,
                                "row_step": online.row_step}


def test_the_chain_keeps_a_rows_up_to_the_cut_and_all_of_b(online):
    source = online.source  # the segments as `runchain chain --project --json` prints them
    check_stitched(source, chain_rows(source.tree, source.chain(online.b)),
                   online.a, online.b, online.cut, online.axis, LOSS)


def test_w_and_b_holds_every_row_the_runs_logged(online):
    """The project's rows are the run files' (wandb writes them online too), row for row."""
    for run_id in (online.a, online.b):
        theirs, ours = own_rows(online.source, run_id), raw_history(online.dir, run_id)
        for key in ("_step", online.axis, LOSS):
            assert np.array_equal(theirs[key], ours[key], equal_nan=True), (run_id, key)


def test_the_resume_is_exact_so_the_stitched_loss_equals_a(online):
    stitched = online.source.history(online.b, keys=[LOSS])
    whole = online.source.history(online.a, keys=[LOSS])
    assert stitched["global_step"].tolist() == whole["global_step"].tolist()  # the same rows
    assert np.array_equal(stitched[LOSS], whole[LOSS], equal_nan=True)  # bit for bit
