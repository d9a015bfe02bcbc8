"""The checkpoint contract, checked on real offline runs written by do_run.py."""

import json

from wandb.proto import wandb_internal_pb2 as pb

from helpers import rows, run_file
from runchain.readers.record_log import read_run_file, scan_records

BREADCRUMB_FIELDS = {"parent_run", "parent_checkpoint", "parent_step", "global_offset", "root_run",
                     "depth"}


def test_checkpoints_are_checkpoint_artifacts_named_by_run_with_step_aliases(tree):
    run = read_run_file(run_file(tree["dir"], tree["root"]))
    assert [a.metadata for a in run.artifacts] == [{"step": s} for s in (9, 19, 29, 39)]
    for artifact in run.artifacts:
        step = artifact.metadata["step"]
        assert artifact.type == "checkpoint"
        assert artifact.name == f"run-{tree['root']}-checkpoint"
        assert sorted(artifact.aliases) == sorted([f"step-{step}", "latest"])
        with open(artifact.files["checkpoint.json"]) as f:
            state = json.load(f)
        assert state["step"] == step
        assert state["iter_num"] == step + 1  # the model state after the row at `step`
    assert len({a.digest for a in run.artifacts}) == 4  # one version per checkpoint


def test_root_breadcrumbs_have_exactly_the_six_fields(tree):
    crumbs = read_run_file(run_file(tree["dir"], tree["root"])).config["runchain"]
    assert set(crumbs) == BREADCRUMB_FIELDS
    assert crumbs == {"parent_run": None, "parent_checkpoint": None, "parent_step": None,
                      "global_offset": 0, "root_run": tree["root"], "depth": 0}


def test_child_breadcrumbs_point_at_parent_checkpoint_and_offset(tree):
    crumbs = read_run_file(run_file(tree["dir"], tree["child"])).config["runchain"]
    assert crumbs == {"parent_run": tree["root"],
                      "parent_checkpoint": f"run-{tree['root']}-checkpoint:step-19",
                      "parent_step": 19, "global_offset": 20, "root_run": tree["root"],
                      "depth": 1}


def test_every_history_row_carries_global_step(tree):
    for run_id, offset in ((tree["root"], 0), (tree["child"], 20)):
        history = rows(read_run_file(run_file(tree["dir"], run_id)).history)
        assert history, run_id
        assert [row["global_step"] for row in history] == [offset + row["_step"] for row in history]
        assert [row["_step"] for row in history] == list(range(len(history)))


def test_global_step_is_declared_the_step_metric(tree):
    data = run_file(tree["dir"], tree["child"]).read_bytes()
    metrics = []
    for raw in scan_records(data).records:
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "metric":
            metrics.append((record.metric.name or record.metric.glob_name, record.metric.step_metric))
    assert ("global_step", "") in metrics
    assert ("*", "global_step") in metrics
