"""The W&B reader (``runchain.readers.project.open_project``) against in-memory stand-ins.

The stand-ins (``tests/wandb_standin.py``) are built from a real offline tree grown by
``do_many.py``, so both readers see the same runs: the local reader from the run files,
the W&B reader from what W&B would hold once they are synced. W&B's servers are never
reached; the contract test checks the wandb calls themselves against the installed wandb.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import requests
import wandb
from wandb.sdk.lib.service.service_connection import WandbApiFailedError

import runchain
from runchain.readers import project as wandb_runs
from runchain.errors import ProjectNotFoundError, SourceError
from runchain.readers.project import open_project

from conftest import isolate, plain_run, script
from wandb_standin import (RunData, StandinApi, deep_chain, project_from_dir, with_logged_rows,
                           without_runchain)

pytestmark = pytest.mark.slow  # see docs/development.md

PROJECT = "ent/runchain-demo"  # do_many.py's default project, under the stand-in's entity


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real offline tree of 7 runs, 3 levels deep with forks at non-final checkpoints,
    read once by the local reader; ``runs`` is the same tree as W&B would hold it."""
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("wandb_reader"))
        script("do_many.py", "--n_runs", 7, "--n_steps", 30, "--n_checkpoint_steps", 10,
               "--n_metrics", 3, "--workers", 3, "--seed", 1)
        local = runchain.open_source(wdir)
        yield {"dir": wdir, "local": local, "runs": project_from_dir(wdir)}


def graph(source: runchain.Source) -> dict[str, tuple]:
    return {run_id: (node.parent_run, node.parent_step, node.global_offset, node.depth,
                     node.info.last_step, [c.step for c in node.info.checkpoints])
            for run_id, node in source.tree.nodes.items()}


def assert_same_histories(local: runchain.Source, remote: runchain.Source,
                          keys: list[str] | None = None, plain: bool = False) -> None:
    """``plain``: the remote runs lost their breadcrumbs, so a ``global_step`` they logged
    keeps its name and runchain's own column is ``runchain/global_step`` (same values)."""
    for leaf in runchain.leaves(local.tree):
        want, got = local.history(leaf, keys=keys), remote.history(leaf, keys=keys)
        if plain and keys is None:  # all keys: the logged global_step is among them
            np.testing.assert_array_equal(got.pop("runchain/global_step"), want["global_step"])
        assert set(got) == set(want), leaf
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{leaf}: {key}")


# -- (a), (b): both readers give the same tree and the same chains -----------------------

def test_wandb_reader_gives_the_local_readers_summaries(real):
    """``tree --json``'s summaries: W&B's run summary, the last value of each metric."""
    remote = open_project(PROJECT, api=StandinApi(real["runs"]))
    local = real["local"].summaries()
    assert remote.summaries() == local
    assert all(len(values) == 3 for values in local.values())  # --n_metrics 3


@pytest.mark.parametrize("plain, metadata_steps", [(False, True), (True, True), (True, False)],
                         ids=["breadcrumbs", "artifact-walk", "artifact-walk-checkpoint-json"])
def test_wandb_reader_gives_the_local_readers_tree(real, plain, metadata_steps):
    runs = without_runchain(real["runs"], metadata_steps) if plain else real["runs"]
    api = StandinApi(runs)

    remote = open_project(PROJECT, api=api)

    assert remote.where == PROJECT
    assert graph(remote) == graph(real["local"])  # checkpoint.json gives a step metadata lacks
    assert remote.tree.roots == real["local"].tree.roots
    assert len(remote.tree.nodes) == 7 and max(n.depth for n in remote.tree.nodes.values()) == 3
    assert remote.urls == {d.id: f"https://wandb.ai/ent/runchain-demo/runs/{d.id}" for d in runs}
    assert {info.state for info in remote.runs} == {"finished"}
    if plain:  # the tree came from the checkpoints each run used, not from breadcrumbs
        assert all(info.breadcrumbs is None for info in remote.runs)
        assert sum(len(info.used) for info in remote.runs) == 6
        # without a metadata step, each checkpoint's checkpoint.json is fetched once
        logged = sum(len(d.logged) for d in runs)
        assert api.requests["file download"] == (0 if metadata_steps else logged)


@pytest.mark.parametrize("plain", [False, True], ids=["breadcrumbs", "artifact-walk"])
def test_wandb_reader_stitches_every_chain_as_the_local_reader(real, plain):
    runs = without_runchain(real["runs"]) if plain else real["runs"]
    remote = open_project(PROJECT, api=StandinApi(runs))

    assert_same_histories(real["local"], remote, plain=plain)
    assert_same_histories(real["local"], remote, keys=["loss/00", "oscillation/02"], plain=plain)


def test_wandb_reader_accepts_a_project_without_entity_using_the_default_entity(real):
    api = StandinApi(real["runs"], default_entity="ent")

    remote = open_project("runchain-demo", api=api)

    assert remote.where == PROJECT
    assert api.requests["default entity"] == 1


def test_wandb_reader_maps_wandb_states_onto_runchain_states(real):
    runs = [RunData(**{**vars(d), "state": state})
            for d, state in zip(real["runs"], ["killed", "preempted", "pending", "crashed",
                                               "failed", "running", "mystery"])]

    remote = open_project(PROJECT, api=StandinApi(runs))

    assert [info.state for info in remote.runs] == [
        "failed", "crashed", "running", "crashed", "failed", "running", "crashed"]


# -- (c): what listing a project costs ----------------------------------------------------

@pytest.fixture(scope="module")
def chain200(real):
    """200 runs in one chain, each a copy of the real tree's root resumed from the one before."""
    root = next(d for d in real["runs"] if d.config["runchain"]["parent_run"] is None)
    return deep_chain(root, 200)


def test_listing_with_breadcrumbs_costs_one_request_per_page_not_per_run(chain200, monkeypatch):
    api = StandinApi(chain200)
    remote = open_project(PROJECT, api=api)
    assert dict(api.requests) == {"runs page": 1}  # PER_PAGE = 500: one page for 200 runs

    monkeypatch.setattr(wandb_runs, "PER_PAGE", 50)
    for n in (50, 100, 200):
        api = StandinApi(chain200[:n])
        remote = open_project(PROJECT, api=api)
        assert len(remote.runs) == n
        assert dict(api.requests) == {"runs page": math.ceil(n / 50)}  # no per-run "run load"
    leaf = remote.tree.nodes["r0199"]
    assert leaf.depth == 199
    assert leaf.global_offset == chain200[-1].config["runchain"]["global_offset"]


def test_artifact_walk_costs_requests_per_run(chain200):
    for n in (50, 200):
        api = StandinApi(without_runchain(chain200[:n]))
        remote = open_project(PROJECT, api=api)
        assert dict(api.requests) == {
            "runs page": 1,
            "used artifacts page": n,  # every run: which checkpoints did it use?
            "logged_by": n - 1,  # every used checkpoint: which run logged it?
            "run load": n - 1,  # ... and logged_by() builds that run with one more request
            "logged artifacts page": n,  # every run: which checkpoints did it log?
        }
        assert api.total == 1 + 4 * n - 2
        assert remote.tree.nodes[f"r{n - 1:04d}"].depth == n - 1


# -- (e): reading a chain's history ---------------------------------------------------------

def test_fetch_cuts_each_parent_with_max_step_one_past_the_checkpoint_step(real):
    api = StandinApi(real["runs"])
    remote = open_project(PROJECT, api=api)
    leaf = max(remote.tree.nodes.values(), key=lambda n: n.depth).info.id
    segments = remote.chain(leaf)

    cols = remote.history(leaf)

    calls = {c["run"]: c for c in api.scan_calls}
    assert list(calls) and set(calls) == {s.run_id for s in segments}
    for seg in segments[:-1]:  # max_step is exclusive, the cut inclusive
        assert calls[seg.run_id]["max_step"] == seg.last_step + 1
        assert calls[seg.run_id]["min_step"] == 0
    assert calls[leaf]["max_step"] is None
    assert all(c["keys"] is None for c in api.scan_calls)  # all metrics: one unkeyed scan per run
    assert list(cols["step"][cols["run_id"] == leaf]) == list(range(30))
    assert sorted(cols) == ["accuracy/01", "global_step", "loss/00", "oscillation/02", "run_id",
                            "step"]


def test_fetch_scans_each_key_on_its_own_with_step(real):
    api = StandinApi(real["runs"])
    remote = open_project(PROJECT, api=api)
    root = remote.tree.roots[0]

    remote.history(root, keys=["loss/00", "accuracy/01"])

    assert sorted(tuple(c["keys"]) for c in api.scan_calls) == [
        ("_step", "accuracy/01"), ("_step", "loss/00")]


def test_fetch_keeps_rows_of_a_sparse_metric_that_a_joint_scan_would_drop(real):
    """``scan_history(keys=[a, b])`` returns only rows holding both; runchain asks per key."""
    root = next(d for d in real["runs"] if d.config["runchain"]["parent_run"] is None)
    sparse = RunData(**{**vars(root), "history": dict(root.history)})
    steps = sparse.history["_step"]
    sparse.history["eval/loss"] = np.where(steps % 10 == 9, steps / 100.0, np.nan)
    last = sparse.history["eval/loss"][~np.isnan(sparse.history["eval/loss"])][-1]
    sparse.summary = {**root.summary, "eval/loss": float(last)}  # W&B keeps each key's last value
    remote = open_project(PROJECT, api=StandinApi([sparse]))

    cols = remote.history(root.id, keys=["loss/00", "eval/loss"])

    np.testing.assert_array_equal(cols["loss/00"], root.history["loss/00"])
    np.testing.assert_array_equal(cols["eval/loss"], sparse.history["eval/loss"])
    assert np.isnan(cols["eval/loss"]).sum() == 27


def test_fetch_runs_at_most_workers_scans_at_once(chain200):
    api = StandinApi(chain200)
    remote = open_project(PROJECT, api=api, workers=4)
    api.hold = threading.Barrier(4)  # each scan waits until 4 are in flight

    cols = remote.history("r0199")

    assert len(api.scan_calls) == 200
    assert api.max_in_flight == 4
    assert cols["step"].size == sum(s.last_step + 1 for s in remote.chain("r0199")[:-1]) + 30
    assert np.all(np.diff(cols["global_step"]) == 1)  # one contiguous global axis


# -- (d): errors ------------------------------------------------------------------------------

def test_without_credentials_raises_before_any_request(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)

    for open_ in (lambda: open_project(PROJECT), lambda: runchain.open_source(project=PROJECT)):
        with pytest.raises(runchain.CredentialsError) as info:
            open_()
        assert PROJECT in str(info.value)
        assert "wandb login" in str(info.value) and "WANDB_API_KEY" in str(info.value)


@pytest.mark.parametrize("error", [
    wandb.errors.CommError("HTTP 502: bad gateway"),
    requests.ConnectionError("Max retries exceeded with url: /graphql"),
    WandbApiFailedError("connection refused"),
], ids=["CommError", "requests.ConnectionError", "WandbApiFailedError"])
@pytest.mark.parametrize("kind", ["runs page", "used artifacts page", "history page"])
def test_unreachable_wandb_raises_source_error_naming_the_server(real, monkeypatch, error, kind):
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    api = StandinApi(without_runchain(real["runs"]))
    api.fail[kind] = error

    with pytest.raises(SourceError) as info:
        open_project(PROJECT, api=api).history(real["local"].tree.roots[0])

    message = str(info.value)
    assert "https://wandb.example.com" in message and "WANDB_BASE_URL" in message
    assert PROJECT in message and str(error) in message
    assert isinstance(info.value, ConnectionError)


def test_unknown_project_raises_project_not_found_saying_how_to_list_projects(real):
    with pytest.raises(ProjectNotFoundError) as info:
        open_project("ent/no-such-project", api=StandinApi(real["runs"]))

    assert "ent/no-such-project" in str(info.value)
    assert "projects(" in str(info.value)
    assert isinstance(info.value, runchain.RunNotFoundError) and isinstance(info.value, LookupError)


def test_project_without_runs_raises_project_not_found(real):
    with pytest.raises(ProjectNotFoundError, match="ent/empty has no runs"):
        open_project("ent/empty", api=StandinApi(real["runs"], empty_projects=("empty",)))


@pytest.mark.parametrize("project", ["", "a/b/c", "ent//proj"])
def test_malformed_project_path_raises_before_any_request(real, project):
    api = StandinApi(real["runs"])

    with pytest.raises(ProjectNotFoundError, match="expected entity/project"):
        open_project(project, api=api)
    assert api.total == 0


def test_a_checkpoint_without_any_step_is_left_out_with_a_note(real):
    """A used checkpoint whose step cannot be known gives no edge, and the note says why; the
    child is then a root (its chain starts at it), never placed at a guessed step."""
    runs = without_runchain(real["runs"], metadata_steps=False)
    for d in runs:
        for a in d.logged:
            a.files.pop("checkpoint.json")

    remote = open_project(PROJECT, api=StandinApi(runs))

    assert len(remote.tree.roots) == 7
    assert all(not node.info.checkpoints for node in remote.tree.nodes.values())
    notes = "\n".join(remote.tree.notes)
    assert "holds no checkpoint.json, and its metadata no step" in notes
    assert all(f"run {d.id}: " in notes for d in runs)


# -- one rule for logged values, in both readers ------------------------------------------

def test_a_stray_string_costs_one_value_and_both_readers_agree(wandb_dir):
    """A string (or boolean) among a metric's numbers is NaN in that row only, from the
    folder reader and from the W&B reader alike; a key that never held a number is no column."""
    logged = [{"loss": 1.0, "acc": 0.5}, {"loss": "diverged", "acc": 0.6},
              {"loss": 0.25, "note": "warmup over"}, {"loss": True, "acc": 0.7}, {"loss": 0.125}]
    plain_run(wandb_dir, logged)
    local = runchain.open_source(wandb_dir)
    api = StandinApi(with_logged_rows(project_from_dir(wandb_dir), wandb_dir))
    remote = open_project("ent/p", api=api)
    (leaf,) = local.tree.nodes
    want, got = local.history(leaf), remote.history(leaf)
    assert set(want) == set(got) == {"global_step", "run_id", "step", "loss", "acc"}
    np.testing.assert_array_equal(want["loss"], [1.0, np.nan, 0.25, np.nan, 0.125])
    np.testing.assert_array_equal(want["acc"], [0.5, 0.6, np.nan, 0.7, np.nan])
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    for keys in (["loss"], ["acc", "loss"]):  # asked for by name: the same again
        for key, column in local.history(leaf, keys=keys).items():
            np.testing.assert_array_equal(remote.history(leaf, keys=keys)[key], column)


def test_metric_names_come_without_reading_a_history_on_w_and_b(real):
    api = StandinApi(real["runs"])
    remote = open_project(PROJECT, api=api)
    before = dict(api.requests)
    leaf = runchain.leaves(remote.tree)[0]
    assert remote.metrics(leaf) == real["local"].metrics(leaf) == ["accuracy/01", "loss/00",
                                                                   "oscillation/02"]
    assert remote.metrics() == real["local"].metrics()
    assert dict(api.requests) == before  # not one request: the listing had the names


def test_a_metric_of_ones_own_named_with_an_underscore_is_a_metric(wandb_dir):
    """Only the keys wandb adds to every row (_step, _runtime, _timestamp) are internal."""
    plain_run(wandb_dir, [{"_x": float(i), "loss": 1.0} for i in range(4)])
    local = runchain.open_source(wandb_dir)
    remote = open_project("ent/p", api=StandinApi(with_logged_rows(project_from_dir(wandb_dir),
                                                                  wandb_dir)))
    (leaf,) = local.tree.nodes
    for source in (local, remote):
        cols = source.history(leaf)
        assert set(cols) == {"global_step", "run_id", "step", "_x", "loss"}
        assert cols["_x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert local.metrics() == remote.metrics() == ["_x", "loss"]
