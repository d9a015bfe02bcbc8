"""The W&B reader (``runchain.readers.from_project.open_project``).

Against the HTTP stand-in of W&B (``tests/wandb_server.py``, the ``wandb_server`` fixture):
real runs, made online by the real SDK, read back by the real ``wandb.Api``. Two module
fixtures make them once: ``counts``, 4 runchain runs (``do_many.py --mode online``, project
``reader-counts``, a chain 3 deep), and ``plain``, runs of plain wandb code without
breadcrumbs (``PLAIN``: each logs a checkpoint artifact, the next ``use_artifact``s it):
chains of 2 and 4 runs, two runs whose checkpoint holds no step, two logging stray values
(beside offline twins of the same rows). What a read costs is what the server counted,
by operation: the tests clear its log, read, and assert every request, wandb's own
constant ones (``Viewer``, ``ServerFeaturesQuery``) included. The server records no
GraphQL variables, so a cut sent to W&B shows in the pages wandb asks for (runchain's
``PAGE_SIZE`` made small), and each key's own scan in the rows that come back.

On the in-memory stand-in of ``wandb.Api`` (``tests/wandb_standin.py``, built from the
session's offline ``demo_tree``) stays only what the HTTP server cannot show:

- a request of one kind failing (``api.fail``): the server fails no request on demand;
- W&B states the SDK cannot produce (``killed``, ``preempted``, ``pending``, an unknown one);
- a project that holds no runs: every project the server has, a run made;
- 200-run chains, placed run by run (200 real runs would take minutes; the cost per run
  is shown for real, at 2 and 4 runs);
- how many scans are in flight at once: the stand-in holds each at a barrier until
  ``workers`` are in flight; the server answers each at once and records no timing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import requests
import wandb
from wandb.sdk.lib.service.service_connection import WandbApiFailedError

import runchain
from runchain.core import lineage
from runchain.errors import ProjectNotFoundError, SourceError
from runchain.readers import from_project as wandb_runs
from runchain.readers import project_cache, project_history, project_lineage
from runchain.readers.cache_entry import CacheWarning
from runchain.readers.from_project import open_project

from helpers import cli, isolate, script, step_into
from wandb_standin import RunData, StandinApi, deep_chain, project_from_dir, without_runchain

pytestmark = pytest.mark.slow  # real runs in subprocesses (docs/development.md)

COUNTS = "reader-counts"  # the server is shared by every test module of a worker
N_STEPS = 20  # steps of each runchain run in COUNTS

# Plain wandb code in one process (a run is ~1 s then): argv[1] is a JSON list of runs,
# each {"project", "rows", "mode"?, "dir"?, "uses"?: index of an earlier run whose
# checkpoint v0 it uses, "checkpoints"?: [[step, {file: text}, metadata or null]]}.
# Prints the run ids, in order.
PLAIN = """
import json, sys, wandb
made = []
for spec in json.loads(sys.argv[1]):
    run = wandb.init(project=spec["project"], mode=spec.get("mode"), dir=spec.get("dir"))
    if spec.get("uses") is not None:
        run.use_artifact(f"checkpoint-{made[spec['uses']]}:v0")
    checkpoints = {step: (files, metadata) for step, files, metadata in spec.get("checkpoints", [])}
    for step, row in enumerate(spec["rows"]):
        run.log(row, step=step)
        if step in checkpoints:
            files, metadata = checkpoints[step]
            artifact = wandb.Artifact(f"checkpoint-{run.id}", type="checkpoint", metadata=metadata)
            for name, text in files.items():
                with artifact.new_file(name) as f:
                    f.write(text)
            run.log_artifact(artifact)
    run.finish()
    made.append(run.id)
print(json.dumps(made))
"""

STRAY = [{"loss": 1.0, "acc": 0.5}, {"loss": "diverged", "acc": 0.6},
         {"loss": 0.25, "note": "warmup over"}, {"loss": True, "acc": 0.7}, {"loss": 0.125}]
UNDERSCORE = [{"_x": float(i), "loss": 1.0} for i in range(4)]


def plain_chain(project: str, n: int, first: int) -> list[dict]:
    """``n`` plain runs of 10 rows (``eval/loss`` at steps 4 and 9 only), each using the
    checkpoint at step 4 of the one before (``first``: the first one's index in the list).
    Each logs two: at step 4 with only ``checkpoint.json`` to tell its step, at step 9 with
    the step in its metadata too; every ``checkpoint.json`` differs (wandb fetches a file
    it has once, by its md5)."""
    return [{"project": project, "uses": first + i - 1 if i else None,
             "rows": [{"loss": 1.0 / (s + 1), **({"eval/loss": s / 100} if s % 5 == 4 else {})}
                      for s in range(10)],
             "checkpoints": [[s, {"checkpoint.json": json.dumps({"step": s, "run": first + i})},
                              {"step": s} if s == 9 else None] for s in (4, 9)]}
            for i in range(n)]


@pytest.fixture(scope="module")
def counts(wandb_server, tmp_path_factory):
    """4 runchain runs online in project ``reader-counts``: root, two children of it, a
    grandchild; each 20 steps, checkpoints at 9 and 19, children from the one at 9."""
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("reader_counts"), server=wandb_server)
        script("do_many.py", "--mode", "online", "--project", COUNTS, "--n_runs", 4,
               "--n_steps", N_STEPS, "--n_checkpoint_steps", 10, "--n_metrics", 2,
               "--seed", 1, "--no-report")
        return {"env": dict(os.environ), "cwd": os.getcwd()}


@pytest.fixture(scope="module")
def plain(wandb_server, tmp_path_factory):
    """The ``PLAIN`` runs: run ids by project (``reader-plain``: a chain of 2,
    ``reader-plain-x2``: a chain of 4, ``reader-nostep``, ``reader-values``) and the
    offline twins of ``reader-values`` (``offline``: ids, ``offline_dir``)."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("reader_plain")
        isolate(mp, base, server=wandb_server)
        specs = plain_chain("reader-plain", 2, 0) + plain_chain("reader-plain-x2", 4, 2) + [
            {"project": "reader-nostep", "rows": [{"loss": 1.0}] * 3,  # no checkpoint.json
             "checkpoints": [[2, {"weights.bin": "w"}, None]]},
            {"project": "reader-nostep", "rows": [{"loss": 1.0}] * 3, "uses": 6},
            {"project": "reader-values", "rows": STRAY},
            {"project": "reader-values", "rows": UNDERSCORE},
            {"project": "p", "rows": STRAY, "mode": "offline", "dir": str(base / "offline")},
            {"project": "p", "rows": UNDERSCORE, "mode": "offline", "dir": str(base / "offline")}]
        (base / "offline").mkdir()
        proc = subprocess.run([sys.executable, "-c", PLAIN, json.dumps(specs)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        ids = json.loads(proc.stdout.strip().splitlines()[-1])
        return {"env": dict(os.environ), "cwd": os.getcwd(), "reader-plain": ids[0:2],
                "reader-plain-x2": ids[2:6], "reader-nostep": ids[6:8],
                "reader-values": ids[8:10], "offline": ids[10:12],
                "offline_dir": base / "offline" / "wandb"}


@pytest.fixture
def at_counts(counts, monkeypatch):
    step_into(counts, monkeypatch)
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")  # what W&B is asked for without the disk
    return open_project(COUNTS)  # cache (a running run's route); the cache has its own tests


@pytest.fixture
def at_plain(plain, monkeypatch):
    step_into(plain, monkeypatch)
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")  # what W&B is asked for, uncached
    return plain


def deepest(source: runchain.Source) -> str:
    return max(source.tree.nodes.values(), key=lambda n: n.depth).info.id


# -- what listing a project of runchain runs costs ------------------------------------

@pytest.mark.parametrize("per_page", [1, 3, wandb_runs.PER_PAGE])
def test_listing_with_breadcrumbs_costs_one_request_per_page_not_per_run(counts, wandb_server,
                                                                        monkeypatch, per_page):
    """Each listed page holds every run's config and summary: no request per run."""
    step_into(counts, monkeypatch)
    monkeypatch.setattr(wandb_runs, "PER_PAGE", per_page)
    wandb_server.clear()

    remote = open_project(f"{wandb_server.entity}/{COUNTS}")

    assert len(remote.runs) == 4 and max(n.depth for n in remote.tree.nodes.values()) == 2
    assert wandb_server.asked() == {"Viewer": 1,  # wandb.Api() checks the key
                                   "Runs": math.ceil(4 / per_page)}


def test_a_project_without_entity_is_read_in_the_default_entity_at_no_cost(counts, wandb_server,
                                                                         monkeypatch):
    """The default entity (``WANDB_ENTITY`` here; wandb keeps the first it sees in a
    process) costs no request more than an entity named."""
    step_into(counts, monkeypatch)
    wandb_server.clear()

    remote = open_project(COUNTS)

    assert remote.where == f"{wandb_server.entity}/{COUNTS}"
    assert wandb_server.asked() == {"Viewer": 1, "Runs": 1}


def test_summaries_are_each_run_s_last_logged_values(at_counts):
    """``tree --json``'s summaries: W&B's run summary, the last value of each metric."""
    summaries = at_counts.summaries()
    assert set(summaries) == set(at_counts.tree.nodes)
    for run_id, summary in summaries.items():
        cols = at_counts.history(run_id)  # the chain to it, its own rows last
        assert summary == {k: cols[k][-1] for k in ("loss/00", "accuracy/01")}, run_id


def test_metric_names_come_without_a_request(at_counts, wandb_server):
    wandb_server.clear()
    leaf = deepest(at_counts)
    assert at_counts.metrics(leaf) == at_counts.metrics() == ["accuracy/01", "loss/00"]
    assert wandb_server.asked() == {}  # the listing had the names


def test_run_urls_are_on_the_server_wandb_talks_to(at_counts, wandb_server):
    assert at_counts.urls == {run_id: f"{wandb_server.base_url}/{wandb_server.entity}/{COUNTS}"
                                      f"/runs/{run_id}" for run_id in at_counts.tree.nodes}


# -- reading a chain's history -----------------------------------------------------------

def test_fetch_cuts_each_parent_on_w_and_b_one_past_the_checkpoint_step(at_counts, wandb_server,
                                                                       monkeypatch):
    """``max_step`` is the cut + 1 (exclusive): wandb asks for a parent's rows only up to
    its cut. Shown in pages of 5 steps: a parent cut at 9 costs 2 pages, not the 4 of its
    20 rows; the leaf all 4."""
    remote = at_counts
    leaf = deepest(remote)
    segments = remote.chain(leaf)
    assert len(segments) == 3 and all(s.last_step == 9 for s in segments[:-1])
    monkeypatch.setattr(project_history, "PAGE_SIZE", 5)
    wandb_server.clear()

    cols = remote.history(leaf)

    scans = len(segments)  # all metrics: one unkeyed scan per run
    pages = sum(math.ceil((s.last_step + 1) / 5) for s in segments[:-1]) + N_STEPS // 5
    assert wandb_server.asked() == {  # no RunHistoryKeys: the listing gave each last step
        "RunParquetHistory": scans,  # wandb-core opens the scan
        "HistoryPage": pages}  # 2 + 2 + 4, where uncut parents would cost 4 + 4 + 4
    for seg in segments[:-1]:  # the cut inclusive, its rows the parent's own first ones
        own = cols["run_id"] == seg.run_id
        assert cols["step"][own].tolist() == list(range(seg.last_step + 1))
        alone = remote.history(seg.run_id)  # the chain to it, uncut at its end
        np.testing.assert_array_equal(cols["loss/00"][own], alone["loss/00"][
            alone["run_id"] == seg.run_id][:seg.last_step + 1])
    assert cols["step"][cols["run_id"] == leaf].tolist() == list(range(N_STEPS))
    assert cols["global_step"].tolist() == list(range(10 + 10 + N_STEPS))
    assert sorted(cols) == ["accuracy/01", "global_step", "loss/00", "run_id", "step"]


def test_fetch_reads_each_run_in_one_scan_of_every_column(at_counts, wandb_server, monkeypatch):
    """Several metrics cost one scan of every column per run, split locally: 2 requests a
    run (wandb-core opens the scan, reads a page; the last step is the listing's), where a
    keyed scan per metric costs 2 per run and metric. Both routes give the same columns."""
    remote = at_counts
    leaf = deepest(remote)
    n = len(remote.chain(leaf))
    wandb_server.clear()

    cols = remote.history(leaf, keys=["loss/00", "accuracy/01"])

    assert wandb_server.asked() == {"RunParquetHistory": n, "HistoryPage": n}
    monkeypatch.setattr(project_history, "WIDE_RATIO", 0)  # as for a run of wide rows: keyed scans
    wandb_server.clear()
    keyed = remote.history(leaf, keys=["loss/00", "accuracy/01"])
    assert wandb_server.asked() == {"RunParquetHistory": 2 * n,
                                   "SampledHistoryPage": 2 * n}  # wandb's keyed scan
    whole = remote.history(leaf)
    assert sorted(cols) == sorted(keyed) == sorted(whole)
    for key in cols:
        np.testing.assert_array_equal(cols[key], keyed[key], err_msg=key)
        np.testing.assert_array_equal(cols[key], whole[key], err_msg=key)


def test_every_chain_reads_each_run_once(at_counts, wandb_server):
    """``source.histories()``: every chain of the tree, each run scanned once whatever the
    chains through it (2 requests a run), each chain equal to its own ``history``."""
    remote = at_counts
    n = len(remote.tree.nodes)
    wandb_server.clear()
    chains = dict(remote.histories())
    assert wandb_server.asked() == {"RunParquetHistory": n, "HistoryPage": n}
    assert sorted(chains) == sorted(lineage.leaves(remote.tree)) and len(chains) > 1
    for leaf, cols in chains.items():
        want = remote.history(leaf)
        assert cols.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(cols[key], want[key], err_msg=f"{leaf} {key}")


def test_a_run_of_wide_rows_or_many_more_keys_is_scanned_by_key():
    """Media or tables in a run's rows (a listed key of another type than numbers, strings,
    booleans or nulls), or more than WIDE_RATIO keys per key wanted: one scan per key."""
    def listed(**kinds):
        return type("Run", (), {"historyKeys": json.dumps({"keys": {
            k: {"typeCounts": [{"type": t, "count": 3} for t in ts]} for k, ts in kinds.items()}})})()

    narrow = listed(loss=["number"], acc=["number", "nil"], note=["string"], _step=["number"])
    assert project_history.whole_rows(narrow, ["loss", "acc"]) and project_history.whole_rows(narrow, None)
    assert not project_history.whole_rows(narrow, ["loss"])  # one keyed scan is all it costs
    assert not project_history.whole_rows(listed(loss=["number"], img=["image-file"]), ["loss", "x"])
    many = listed(**{f"m{i}": ["number"] for i in range(2 * project_history.WIDE_RATIO + 1)})
    assert not project_history.whole_rows(many, ["m0", "m1"])
    assert project_history.whole_rows(many, ["m0", "m1", "m2"])
    assert not project_history.whole_rows(type("Run", (), {"historyKeys": None})(), ["a", "b"])


def test_a_run_that_ended_is_read_once_then_from_the_disk_cache_until_it_changes(
        wandb_server, tmp_path, monkeypatch):
    """Cold, a chain costs its scans and fills the cache (an entry per run, private); warm,
    only the listing is asked for, whatever keys; a run resumed since is read again (its
    listing moved), the others not; a damaged entry warns once and is read again."""
    isolate(monkeypatch, tmp_path, server=wandb_server)
    script("do_many.py", "--mode", "online", "--project", "reader-cache", "--n_runs", 2,
           "--n_steps", 20, "--n_checkpoint_steps", 10, "--n_metrics", 2, "--seed", 3, "--no-report")
    cache = tmp_path / "runchain_cache"
    leaf = deepest(open_project("reader-cache"))
    n = len(open_project("reader-cache").chain(leaf))
    wandb_server.clear()
    cold = open_project("reader-cache").history(leaf)
    assert wandb_server.asked() == {"Viewer": 1, "Runs": 1, "RunParquetHistory": n,
                                   "HistoryPage": n}
    entries = sorted(cache.rglob("*.wbh"))
    assert len(entries) == n and {p.stat().st_mode & 0o777 for p in entries} == {0o600}
    assert {p.parent.stat().st_mode & 0o777 for p in entries} == {0o700}
    wandb_server.clear()
    warm = open_project("reader-cache").history(leaf)
    one = open_project("reader-cache").history(leaf, keys=["loss/00"])
    assert wandb_server.asked() == {"Viewer": 2, "Runs": 2}  # the listing, nothing more
    assert sorted(warm) == sorted(cold) and sorted(one) == ["global_step", "loss/00", "run_id", "step"]
    for key in cold:
        np.testing.assert_array_equal(warm[key], cold[key], err_msg=key)
    np.testing.assert_array_equal(one["loss/00"], cold["loss/00"])
    assert f"entries: {n}" in cli("cache", "info").stdout

    script("do_run.py", "--mode", "online", "--project", "reader-cache", "--run_id", leaf,
           "--checkpoint_artifact", f"{leaf}@19", "--n_steps", 5, "--n_metrics", 2)  # in place
    wandb_server.clear()
    again = open_project("reader-cache").history(leaf)
    assert again["step"][again["run_id"] == leaf].tolist() == list(range(25))
    assert wandb_server.asked()["HistoryPage"] == 1  # the resumed leaf alone
    np.testing.assert_array_equal(again["loss/00"][:len(cold["step"])], cold["loss/00"])

    root = open_project("reader-cache").chain(leaf)[0].run_id
    (entry,) = [p for p in cache.rglob("*.wbh") if root in p.read_bytes()[:400].decode(errors="replace")]
    data = entry.read_bytes()
    entry.write_bytes(data[:-8] + b"garbage!")  # a cut or an edit: the checksum catches it
    wandb_server.clear()
    with pytest.warns(CacheWarning, match="damaged") as said:
        fixed = open_project("reader-cache").history(leaf)
    assert len(said) == 1 and wandb_server.asked()["HistoryPage"] == 1
    for key in again:
        np.testing.assert_array_equal(fixed[key], again[key], err_msg=key)
    def held(entry_bytes):  # an entry's description and columns (their order is the scan's)
        _, meta, grid = entry_bytes.split(b"\n", 2)
        meta = json.loads(meta)
        values = np.frombuffer(grid, "<f8").reshape(len(meta.pop("columns")), meta["rows"])
        return meta, {n: v.tolist() for n, v in zip(json.loads(entry_bytes.split(b"\n")[1])["columns"], values)}
    assert held(entry.read_bytes()) == held(data)  # rewritten whole
    cli("cache", "clear")
    assert not list(cache.rglob("*.wbh"))


def test_only_a_run_that_ended_has_a_cache_key():
    """A run W&B lists as running may still log: never cached. An ended one is keyed by
    what its listing says of its rows."""
    def listed(state, lines=10, beat="2026-12-07T10:00:00", last=9):
        return type("Run", (), {"state": state, "historyLineCount": lines, "heartbeatAt": beat,
                                "historyKeys": {"lastStep": last, "keys": {}}})()

    for state in ("running", "pending", "preempting", None):
        assert project_cache.run_key(listed(state)) is None
    keys = [project_cache.run_key(listed(s)) for s in ("finished", "failed", "crashed")]
    assert all(keys) and len({json.dumps(k) for k in keys}) == 3
    assert project_cache.run_key(listed("finished", lines=11)) != keys[0]
    assert project_cache.run_key(listed("finished", beat="2026-12-07T11:00:00")) != keys[0]
    assert project_cache.run_key(listed("finished", lines=None)) is None


def test_fetch_keeps_rows_of_a_sparse_metric_that_a_joint_scan_would_drop(at_plain,
                                                                          wandb_server):
    """``scan_history(keys=[a, b])`` returns only rows holding both; runchain asks per key."""
    root = at_plain["reader-plain"][0]
    run = wandb.Api().run(f"{wandb_server.entity}/reader-plain/{root}")
    assert len(list(run.scan_history(keys=["loss", "eval/loss"]))) == 2  # W&B's joint scan

    cols = open_project("reader-plain").history(root, keys=["loss", "eval/loss"])

    np.testing.assert_array_equal(cols["loss"], [1.0 / (s + 1) for s in range(10)])
    np.testing.assert_array_equal(cols["eval/loss"], [np.nan] * 4 + [0.04] + [np.nan] * 4 + [0.09])


# -- runs without breadcrumbs: the artifact walk -------------------------------------------

def test_artifact_walk_costs_requests_per_page_of_runs(at_plain, wandb_server, monkeypatch, tmp_path):
    """Plain runs' artifacts come in pages (``RunchainLineage``: runs with their inputs, each
    one's producer, and their outputs), one request per PER_PAGE runs, whatever the depth;
    a checkpoint whose metadata has no step still costs its checkpoint.json, once."""
    costs = {}
    for project, n in (("reader-plain", 2), ("reader-plain-x2", 4)):
        # wandb keeps each file it downloads in its cache, by md5: a fresh one for each read
        monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / project))
        wandb_server.clear()
        remote = open_project(project)
        assert remote.tree.nodes[at_plain[project][-1]].depth == n - 1
        costs[n] = wandb_server.asked()
        assert costs[n] == {
            "Viewer": 1, "Runs": 1,
            "ServerFeaturesQuery": 1,  # wandb's, once per Api: which artifact fields it has
            "RunchainLineage": 1,  # every run's inputs, their producers, and outputs
            "FetchArtifactManifest": n,  # its checkpoint at step 4 (no metadata step):
            "GET /_standin/blobs/{key}": n,  # the manifest,
            "GET /artifactsV2/{region}/{entity}/{project}/{collection}/{birth}/{hexhash}/{name}":
                n,  # and its checkpoint.json, once: its child used the same one
        }
        assert remote.tree.notes == ()
    assert sum(costs[4].values()) - sum(costs[2].values()) == 2 * 3  # only checkpoint.json
    monkeypatch.setattr(project_lineage, "PER_PAGE", 1)
    wandb_server.clear()
    assert open_project("reader-plain-x2").tree.nodes[at_plain["reader-plain-x2"][-1]].depth == 3
    assert wandb_server.asked()["RunchainLineage"] == 4  # a page per run


def test_the_walk_of_a_run_that_ended_is_kept_and_the_next_read_asks_only_the_listing(
        at_plain, wandb_server, monkeypatch, tmp_path):
    """Plain runs that ended: their walk (used and logged checkpoints, notes) is kept in the
    disk cache, so the next read lists the project and nothing more, with the same tree; a
    damaged entry warns once and the run is walked again."""
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    cold = open_project("reader-plain-x2")
    entries = sorted((tmp_path / "cache").rglob("*.wbl"))
    assert len(entries) == 4 and {p.stat().st_mode & 0o777 for p in entries} == {0o600}
    wandb_server.clear()
    warm = open_project("reader-plain-x2")
    assert wandb_server.asked() == {"Viewer": 1, "Runs": 1}
    assert warm.runs == cold.runs and warm.tree.notes == cold.tree.notes
    entries[0].write_bytes(entries[0].read_bytes()[:-3] + b"}}}")
    wandb_server.clear()
    with pytest.warns(CacheWarning, match="lineage .* is damaged") as said:
        healed = open_project("reader-plain-x2")
    assert len(said) == 1 and healed.runs == cold.runs
    assert wandb_server.asked()["RunchainLineage"] == 1


@pytest.mark.refuses
def test_a_server_refusing_the_paged_lineage_is_read_run_by_run_with_one_note(
        at_plain, wandb_server, monkeypatch, tmp_path):
    """An older server (here: a query asking for a field it lacks) answers 400: each run's
    artifacts are then read with its own calls, and the tree is the same, with one note."""
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "fresh"))
    paged = open_project("reader-plain-x2")
    query = project_lineage.lineage_query().replace("edges { node { name",
                                                     "edges { node { name shoeSize", 1)
    monkeypatch.setattr(project_lineage, "lineage_query", lambda: query)
    wandb_server.clear()
    walked = open_project("reader-plain-x2")
    ids = at_plain["reader-plain-x2"]
    assert [(walked.tree.nodes[r].parent_run, walked.tree.nodes[r].parent_step) for r in ids] == \
        [(paged.tree.nodes[r].parent_run, paged.tree.nodes[r].parent_step) for r in ids]
    (note,) = [n for n in walked.tree.notes if "paged lineage" in n]
    assert "shoeSize" in note and "docs/chains.md" in note
    seen = [r["operation"] for r in wandb_server.requests()]
    assert seen.count("RunInputArtifacts") == 4 and seen.count("RunOutputArtifacts") == 4
    assert seen.count("RunchainLineage") == 1


def test_artifact_walk_places_each_run_at_the_checkpoint_it_used(at_plain, wandb_server):
    ids = at_plain["reader-plain-x2"]
    remote = open_project("reader-plain-x2")

    assert remote.where == f"{wandb_server.entity}/reader-plain-x2"
    assert remote.tree.roots == (ids[0],) and set(remote.tree.nodes) == set(ids)
    for i, run_id in enumerate(ids):
        node = remote.tree.nodes[run_id]
        assert (node.parent_run, node.parent_step, node.depth, node.global_offset) == (
            ids[i - 1] if i else None, 4 if i else None, i, 5 * i)
        # step 4 from its checkpoint.json, step 9 from its metadata
        assert [c.step for c in node.info.checkpoints] == [4, 9]
        assert node.info.breadcrumbs is None and node.info.state == "finished"
        assert node.info.used == (((ids[i - 1], 4),) if i else ())


def test_artifact_walk_stitches_the_chain_at_the_used_checkpoints(at_plain):
    ids = at_plain["reader-plain-x2"]
    remote = open_project("reader-plain-x2")

    cols = remote.history(ids[-1])

    assert cols["run_id"].tolist() == [r for r in ids[:-1] for _ in range(5)] + [ids[-1]] * 10
    assert cols["step"].tolist() == [*range(5)] * 3 + [*range(10)]
    assert cols["global_step"].tolist() == list(range(25))
    np.testing.assert_array_equal(cols["loss"], [1.0 / (s + 1) for s in cols["step"]])
    assert sorted(cols) == ["eval/loss", "global_step", "loss", "run_id", "step"]


def test_a_checkpoint_without_any_step_is_left_out_with_a_note(at_plain):
    """A used checkpoint whose step cannot be known gives no edge, and the note says why; the
    child is then a root (its chain starts at it), never placed at a guessed step."""
    parent, child = at_plain["reader-nostep"]

    remote = open_project("reader-nostep")

    assert set(remote.tree.roots) == {parent, child}
    assert all(not node.info.checkpoints for node in remote.tree.nodes.values())
    notes = "\n".join(remote.tree.notes)
    assert "but neither its metadata nor a checkpoint.json holds its step" in notes
    assert 'log it with metadata={"step": N}' in notes and "docs/contract.md" in notes
    assert f"run {parent}: " in notes and f"run {child}: " in notes  # it logged, and it used


# -- one rule for logged values, in both readers ---------------------------------------------

def both_readers(made: dict, index: int) -> tuple[dict, dict]:
    """The ``index``th run of ``reader-values`` from W&B, and its offline twin's, stitched."""
    remote = open_project("reader-values")
    local = runchain.open_source(made["offline_dir"])
    online_id, offline_id = made["reader-values"][index], made["offline"][index]
    return ({k: v for k, v in local.history(offline_id).items() if k != "run_id"},
            {k: v for k, v in remote.history(online_id).items() if k != "run_id"})


def test_a_stray_string_costs_one_value_and_both_readers_agree(at_plain):
    """A string (or boolean) among a metric's numbers is NaN in that row only, from the
    folder reader and from the W&B reader alike; a key that never held a number is no column."""
    want, got = both_readers(at_plain, 0)
    assert set(want) == set(got) == {"global_step", "step", "loss", "acc"}
    np.testing.assert_array_equal(want["loss"], [1.0, np.nan, 0.25, np.nan, 0.125])
    np.testing.assert_array_equal(want["acc"], [0.5, 0.6, np.nan, 0.7, np.nan])
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    remote = open_project("reader-values")
    local = runchain.open_source(at_plain["offline_dir"])
    for keys in (["loss"], ["acc", "loss"]):  # asked for by name: the same again
        mine = remote.history(at_plain["reader-values"][0], keys=keys)
        for key, column in local.history(at_plain["offline"][0], keys=keys).items():
            if key != "run_id":
                np.testing.assert_array_equal(mine[key], column, err_msg=key)


def test_a_metric_of_ones_own_named_with_an_underscore_is_a_metric(at_plain):
    """Only the keys wandb adds to every row (_step, _runtime, _timestamp) are internal."""
    want, got = both_readers(at_plain, 1)
    for cols in (want, got):
        assert set(cols) == {"global_step", "step", "_x", "loss"}
        assert cols["_x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert open_project("reader-values").metrics() == ["_x", "acc", "loss"]


# -- errors ----------------------------------------------------------------------------------

def test_without_credentials_raises_before_any_request(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    project = "ent/runchain-demo"

    for open_ in (lambda: open_project(project), lambda: runchain.open_source(project=project)):
        with pytest.raises(runchain.CredentialsError) as info:
            open_()
        assert project in str(info.value)
        assert "wandb login" in str(info.value) and "WANDB_API_KEY" in str(info.value)


def test_unknown_project_raises_project_not_found_saying_how_to_list_projects(wandb_server,
                                                                              tmp_path,
                                                                              monkeypatch):
    isolate(monkeypatch, tmp_path, server=wandb_server)
    path = f"{wandb_server.entity}/no-such-project"

    with pytest.raises(ProjectNotFoundError) as info:
        open_project(path)

    assert path in str(info.value)
    assert "projects(" in str(info.value)
    assert isinstance(info.value, runchain.RunNotFoundError) and isinstance(info.value, LookupError)


@pytest.mark.parametrize("project", ["", "a/b/c", "ent//proj"])
def test_malformed_project_path_raises_before_any_request(wandb_server, tmp_path, monkeypatch,
                                                          project):
    isolate(monkeypatch, tmp_path, server=wandb_server)
    wandb_server.clear()

    with pytest.raises(ProjectNotFoundError, match="expected entity/project"):
        open_project(project)
    assert wandb_server.asked() == {}


# -- on the in-memory stand-in: what the HTTP server cannot show -----------------------------

PROJECT = "ent/runchain-demo"  # do_run.py's default project, under the stand-in's entity


@pytest.fixture(scope="module")
def standin_root(demo_tree):
    """The root of the session's offline ``demo_tree`` (40 steps, checkpoints at 9, 19, 29,
    39), as W&B would hold it: the template of the stand-in's chains."""
    return next(d for d in project_from_dir(demo_tree["dir"])
                if d.config["runchain"]["parent_run"] is None)


@pytest.fixture(scope="module")
def chain200(standin_root):
    """200 runs in one chain, each a copy of the root resumed from the one before."""
    return deep_chain(standin_root, 200)


def test_wandb_reader_maps_wandb_states_onto_runchain_states(standin_root):
    """States the SDK cannot make a run end in (killed, preempted, pending, unknown)."""
    states = ["killed", "preempted", "pending", "crashed", "failed", "running", "mystery"]
    runs = [RunData(**{**vars(d), "state": state})
            for d, state in zip(deep_chain(standin_root, 7), states)]

    remote = open_project(PROJECT, api=StandinApi(runs))

    assert [info.state for info in remote.runs] == [
        "failed", "crashed", "running", "crashed", "failed", "running", "crashed"]


@pytest.mark.parametrize("error", [
    wandb.errors.CommError("HTTP 502: bad gateway"),
    requests.ConnectionError("Max retries exceeded with url: /graphql"),
    WandbApiFailedError("connection refused"),
], ids=["CommError", "requests.ConnectionError", "WandbApiFailedError"])
@pytest.mark.parametrize("kind", ["runs page", "used artifacts page", "history page"])
def test_unreachable_wandb_raises_source_error_naming_the_server(standin_root, monkeypatch,
                                                                  error, kind):
    """One kind of request failing, with each error wandb passes on: the server fails none
    on demand."""
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    api = StandinApi(without_runchain(deep_chain(standin_root, 3)))
    api.fail[kind] = error

    with pytest.raises(SourceError) as info:
        open_project(PROJECT, api=api).history("r0000")

    message = str(info.value)
    assert "https://wandb.example.com" in message and "WANDB_BASE_URL" in message
    assert PROJECT in message and str(error) in message
    assert isinstance(info.value, ConnectionError)


def test_project_without_runs_raises_project_not_found(standin_root):
    """Every project the server holds was made by a run: an empty one exists only here."""
    with pytest.raises(ProjectNotFoundError, match="ent/empty has no runs"):
        open_project("ent/empty", api=StandinApi([standin_root], empty_projects=("empty",)))


@pytest.mark.parametrize("plain", [False, True], ids=["breadcrumbs", "artifact-walk"])
def test_a_200_run_chain_is_placed_run_by_run(chain200, plain):
    """At 200 runs deep (the cost per run is counted for real, above)."""
    runs = without_runchain(chain200) if plain else chain200
    remote = open_project(PROJECT, api=StandinApi(runs))
    leaf = remote.tree.nodes["r0199"]
    assert leaf.depth == 199
    assert leaf.global_offset == chain200[-1].config["runchain"]["global_offset"]


def test_fetch_runs_at_most_workers_scans_at_once(chain200):
    """Each scan is held at a barrier until 4 are in flight: the server answers each at
    once and records no timing, so how many overlap shows only here."""
    api = StandinApi(chain200)
    remote = open_project(PROJECT, api=api, workers=4)
    api.hold = threading.Barrier(4)  # each scan waits until 4 are in flight

    cols = remote.history("r0199")

    assert len(api.scan_calls) == 200
    assert api.max_in_flight == 4
    assert cols["step"].size == sum(s.last_step + 1 for s in remote.chain("r0199")[:-1]) + 40
    assert np.all(np.diff(cols["global_step"]) == 1)  # one contiguous global axis
