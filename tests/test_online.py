"""Every online path, end to end: the real wandb SDK, online, against the HTTP stand-in of
W&B (``tests/wandb_server.py``) on 127.0.0.1. Nothing here is monkeypatched: ``do_many.py``
and ``do_run.py`` run as subprocesses with ``--mode online``, wandb-core uploads the runs,
``wandb.Api`` reads them back with its own GraphQL queries, and ``wandb sync`` uploads
offline runs. What comes back is compared with what was logged: the tree grown online, and
the one synced, with the same seed grown offline, row for row.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import runchain
from runchain.renderers import formats
from runchain.readers import from_project as project_reader
from runchain.readers.from_project import _page_configs
from runchain.readers.local_runs import LocalCheckpoint, LocalRun
from helpers import cli, do_run, isolate, rows, runchain_process, script, step_into

pytestmark = pytest.mark.slow  # real runs in subprocesses (docs/development.md)

GROW = ("--n_runs", 6, "--n_steps", 20, "--n_checkpoint_steps", 5, "--n_metrics", 3, "--seed", 1)


def canonical(source: runchain.Source) -> tuple:
    """The tree independent of run ids: per run its cut, offset, lr, state, checkpoints and
    children; per leaf its stitched chain, row for row (without the run ids)."""
    tree = source.tree

    def node(run_id: str) -> tuple:
        n = tree.nodes[run_id]
        chain = None
        if not n.children:
            chain = tuple(tuple(sorted((k, v) for k, v in r.items() if k != "run_id"))
                          for r in rows(source.history(run_id)))
        return (n.parent_step, n.global_offset, n.depth, n.info.config.get("lr"), n.info.state,
                tuple(c.step for c in n.info.checkpoints), chain,
                tuple(sorted(node(k) for k in n.children)))

    return tuple(sorted(node(r) for r in tree.roots))


@pytest.fixture(scope="module")
def grown(wandb_server, tmp_path_factory):
    """The same seeded tree grown twice by ``do_many.py``: offline, and online into the
    stand-in (project ``grown``)."""
    made = {}
    with pytest.MonkeyPatch.context() as mp:
        made["offline_dir"] = isolate(mp, tmp_path_factory.mktemp("offline"))
        script("do_many.py", *GROW, "--project", "synced", "--no-report")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("online"), server=wandb_server)
        made["proc"] = script("do_many.py", *GROW, "--mode", "online", "--project", "grown")
        made["online_dir"] = runchain.default_wandb_dir()
        made["env"], made["cwd"] = dict(os.environ), os.getcwd()
    return made


@pytest.fixture
def online(grown, monkeypatch):
    """Step into the environment the online tree was grown in."""
    step_into(grown, monkeypatch)
    return grown


def test_do_many_online_grows_every_run_and_ends_with_the_tree_and_report(online):
    proc = online["proc"]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "6 new runs in project grown (online); runchain tree --project grown:"
    tree_lines = lines[1:-1]
    assert len(tree_lines) == 6 and "checkpoints -" not in proc.stdout
    assert all(re.search(r"checkpoints \d", line) for line in tree_lines), proc.stdout
    assert lines[-1].startswith("report: ") and os.path.getsize(lines[-1].split(": ", 1)[1]) > 0


def test_the_project_on_w_and_b_is_the_tree_grown_offline_row_for_row(online, wandb_server):
    remote = runchain.open_source(project=f"{wandb_server.entity}/grown")
    local = runchain.open_source(online["offline_dir"])
    assert len(remote.runs) == 6
    assert canonical(remote) == canonical(local)


def _without_ids(text: str, ids: list[str]) -> list[str]:
    """The lines of ``text`` with every run id blanked (and the seeds do_many gives each)."""
    text = re.sub("|".join(map(re.escape, ids)), "", re.sub(r"seed=\d+", "", text))
    return text.strip().splitlines()


def _tree_lines(text: str, ids: list[str]) -> list[tuple]:
    """``runchain tree`` lines without ids, each its fields with its config keys sorted: W&B
    keeps a config as a JSON object, whose keys come back in an order of its own."""
    lines = [[field for field in line.split("  ") if field] for line in _without_ids(text, ids)]
    return sorted((*[f for f in fields if "=" not in f], *sorted(f for f in fields if "=" in f))
                  for fields in lines)


def test_tree_chain_and_report_with_project_match_the_offline_tree(online, wandb_server, tmp_path):
    path = f"{wandb_server.entity}/grown"
    remote = runchain.open_source(project=path)
    local = runchain.open_source(online["offline_dir"])
    ids = [*remote.tree.nodes, *local.tree.nodes]
    # the same tree lines (cuts, steps, checkpoints, config) but for the ids; the folder's
    # as `runchain tree --dir` prints them (formats.tree_lines)
    tree = _tree_lines(cli("tree", "--project", path).stdout, ids)
    assert len(tree) == 6 and tree == _tree_lines("\n".join(formats.tree_lines(local.tree)), ids)
    # every chain as `runchain chain --csv` writes it, the same from W&B as from the folder
    # (rows as dicts: the two readers may order the columns apart)
    remote_tables = sorted([sorted(row.items()) for row in csv.DictReader(
        _without_ids(cli("chain", leaf, "--project", path, "--csv", "-").stdout, ids))]
        for leaf in runchain.leaves(remote.tree))
    local_tables = []
    for leaf in runchain.leaves(local.tree):
        out = io.StringIO()
        formats.write_csv(local.history(leaf), out)
        local_tables.append([sorted(row.items())
                             for row in csv.DictReader(_without_ids(out.getvalue(), ids))])
    assert remote_tables == sorted(local_tables) and len(local_tables) >= 3
    report = cli("report", "--project", path, "-o", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "report: " in report.stdout and all(run_id in page for run_id in remote.tree.nodes)


def test_the_online_local_folder_says_once_that_its_checkpoints_are_on_w_and_b(online):
    """wandb writes no artifact record for an online log_artifact: the folder reader says so
    once, naming the project to read, rather than showing `checkpoints -` quietly."""
    proc = cli("tree", "--dir", online["online_dir"])
    notes = [line for line in proc.stderr.splitlines() if "logged online" in line]
    assert len(notes) == 1 and "runchain tree --project" in notes[0], proc.stderr
    assert "/grown" in notes[0]


def test_a_run_resumed_online_after_an_offline_part_has_checkpoints_on_w_and_b(tmp_path):
    """Its offline file records the checkpoints it saved then; W&B holds those of its online
    part too, which no file records: ``checkpoint_steps`` online must ask W&B."""
    offline = LocalCheckpoint("run-a-checkpoint", "checkpoint", "v0", ["step-4"], {}, {}, 4, 0)
    files = [tmp_path / "offline-run-20260101_000000-a" / "run-a.wandb",
             tmp_path / "run-20260101_000100-a-1" / "run-a.wandb"]
    assert LocalRun("a", "p", None, {}, [offline], files, False).checkpoints_on_wandb
    assert not LocalRun("a", "p", None, {}, [offline], files[:1], False).checkpoints_on_wandb
    moved = dataclasses.replace(offline, segment=1)  # recorded by the online file: an old wandb
    assert not LocalRun("a", "p", None, {}, [offline, moved], files, False).checkpoints_on_wandb


def test_a_listing_page_gives_each_run_s_raw_config_and_skips_one_it_cannot_read():
    page = {"project": {"runs": {"edges": [
        {"node": {"name": "a", "config": '{"_wandb": {"value": {"branch_point": {"run_id": "r", '
                                         '"step": 9}}}, "lr": {"value": 0.1}}'}},
        {"node": {"name": "b", "config": None}},
        {"node": {"name": "c", "config": "{not json"}},
        {"node": {"name": "d", "config": '{"x": {"value": "tab\there"}}'}}]}}}
    assert _page_configs(page) == {"a": {"_wandb": {"branch_point": {"run_id": "r", "step": 9}},
                                         "lr": 0.1},
                                   "d": {"x": "tab\there"}}
    assert _page_configs({"data": None}) == {}


def test_checkpoint_steps_of_an_online_run_ask_w_and_b(online):
    source = runchain.open_source(project="grown")
    root = source.tree.roots[0]
    assert runchain.checkpoint_steps(root, mode="online", project="grown") == [4, 9, 14, 19]
    with pytest.raises(runchain.CheckpointNotFoundError, match="--mode online"):
        runchain.checkpoint_steps(root, mode="offline")  # its local files hold none


def test_resume_in_place_online_with_must_then_rewind(wandb_server, tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path, server=wandb_server)
    common = ("--mode", "online", "--project", "inplace", "--n_metrics", 2,
              "--n_checkpoint_steps", 5)
    root = do_run(*common, "--n_steps", 10)
    # resume="must" at its last checkpoint (step 9): it goes on at step 10
    assert do_run(*common, "--n_steps", 5, "--run_id", root, "--checkpoint_artifact", f"{root}@9") == root
    api_run = runchain.open_source(project="inplace")
    assert api_run.tree.nodes[root].info.last_step == 14
    # past the checkpoint at 4 (test_resume_in_place.py: refused without --rewind)
    do_run(*common, "--n_steps", 3, "--run_id", root, "--checkpoint_artifact", f"{root}@4", "--rewind")
    source = runchain.open_source(project="inplace")
    cols = source.history(root)
    assert cols["step"].tolist() == list(range(8))  # 0-4 kept, 5-7 logged after the rewind


@pytest.fixture(scope="module")
def synced(grown, wandb_server, tmp_path_factory):
    """The offline tree (project ``synced``), copied (sync writes its state beside the
    runs) and uploaded with ``runchain sync``; then synced again."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("sync")
        isolate(mp, base, server=wandb_server)
        folder = base / "copy" / "wandb"
        shutil.copytree(grown["offline_dir"], folder)
        first = cli("sync", "--dir", folder)
        wandb_server.clear()
        again = cli("sync", "--dir", folder)
        return {"folder": folder, "first": first, "again": again,
                "again_requests": wandb_server.requests(), "env": dict(os.environ),
                "cwd": os.getcwd()}


def test_sync_uploads_the_offline_tree_with_its_ids_and_edges(synced, grown, wandb_server, monkeypatch):
    step_into(synced, monkeypatch)
    local = runchain.open_source(grown["offline_dir"])
    remote = runchain.open_source(project=f"{wandb_server.entity}/synced")
    assert {r.id for r in remote.runs} == {r.id for r in local.runs}
    assert {k: (n.parent_run, n.parent_step, n.global_offset) for k, n in remote.tree.nodes.items()} == {
        k: (n.parent_run, n.parent_step, n.global_offset) for k, n in local.tree.nodes.items()}
    assert canonical(remote) == canonical(local)
    # the edges are W&B's own now: each child used its parent's checkpoint on W&B
    api = __import__("wandb").Api()
    for run_id, node in local.tree.nodes.items():
        used = [a.name for a in api.run(f"{wandb_server.entity}/synced/{run_id}").used_artifacts()]
        if node.parent_run:
            assert used == [f"run-{node.parent_run}-checkpoint:v{node.parent_step // 5}"]
        else:
            assert used == []


def test_a_second_sync_uploads_nothing(synced):
    assert "6 runs uploaded" in synced["first"].stderr
    assert "0 runs uploaded" in synced["again"].stderr, synced["again"].stderr
    uploads = [r for r in synced["again_requests"]
               if r["operation"] in ("UpsertBucket", "CreateArtifact") or "file_stream" in r["operation"]]
    assert uploads == []


def test_sync_to_another_project_is_refused_before_any_upload(grown, wandb_server, tmp_path,
                                                             monkeypatch):
    """wandb sync --project moves a run but not its artifacts (wandb-core uploads each to
    the project its record names): the checkpoints would stay behind, so runchain refuses."""
    isolate(monkeypatch, tmp_path, server=wandb_server)
    folder = tmp_path / "copy" / "wandb"
    shutil.copytree(grown["offline_dir"], folder)
    before = sorted(p.name for p in folder.rglob("*"))
    wandb_server.clear()
    proc = cli("sync", "--dir", folder, "--to-project", "elsewhere", check=False)
    assert proc.returncode == 1 and "nothing was uploaded" in proc.stderr, proc.stderr
    assert ("to your default entity/elsewhere (its checkpoints: your default entity/synced)"
            in proc.stderr)
    # the runs recorded no entity: their checkpoints go to the key's default entity, wherever
    # --to-entity sends the runs
    proc = cli("sync", "--dir", folder, "--to-entity", "other-team", check=False)
    assert proc.returncode == 1 and "to other-team/synced (its checkpoints: your default " \
        "entity/synced)" in proc.stderr, proc.stderr
    assert not [r for r in wandb_server.requests() if r["operation"] == "UpsertBucket"]
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_publish_online_logs_the_chain_as_one_run_on_w_and_b(online, wandb_server, tmp_path):
    source = runchain.open_source(project="grown")
    leaf = max(source.tree.nodes, key=lambda r: source.tree.nodes[r].depth)
    # a W&B run: in a process of its own (helpers.runchain_process)
    proc = runchain_process("publish", leaf, "--project", "grown", "--mode", "online",
                            "--to-project", "views")
    view_id = re.search(r"as run (\S+):", proc.stdout)[1]
    run = __import__("wandb").Api().run(f"{wandb_server.entity}/views/{view_id}")
    assert run.name == f"chain-{leaf}" and run.jobType == "chain-view"
    logged = list(run.scan_history())
    chain = source.history(leaf)
    assert [r["global_step"] for r in logged] == chain["global_step"].tolist()
    assert [r["loss/00"] for r in logged] == chain["loss/00"].tolist()


def test_a_checkpoint_downloads_and_names_its_files_online(online, wandb_server, tmp_path,
                                                          monkeypatch):
    # a cache of its own: the one the runs were logged with already holds every file, and
    # wandb would copy from there without asking the server
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    root = runchain.open_source(project="grown").tree.roots[0]
    wandb_server.clear()
    checkpoint = runchain.load_checkpoint(f"{root}@9", mode="online", project="grown")
    assert checkpoint.online and checkpoint.step == 9 and checkpoint.version == "v1"
    folder = checkpoint.download(tmp_path / "ckpt")
    state = json.loads((folder / "checkpoint.json").read_text())
    assert state == checkpoint.state
    path = checkpoint.path("checkpoint.json")
    assert path.read_text() == (folder / "checkpoint.json").read_text()
    assert str(path).startswith(str(tmp_path / "artifacts"))  # wandb's artifact folder
    downloads = [r for r in wandb_server.requests() if r["operation"].startswith("GET /")]
    assert downloads, wandb_server.requests()  # from the server, into the new cache


FORK = """import sys, wandb
run = wandb.init(project="forks", fork_from=f"{sys.argv[1]}?_step=9")
for i in range(5):
    run.log({"loss/00": 1.0 + i})
run.finish()
print(run.id)
"""


def test_a_fork_from_child_is_read_back_at_its_branch_point(wandb_server, tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path, server=wandb_server)
    root = do_run("--mode", "online", "--project", "forks", "--n_steps", 20,
                  "--n_checkpoint_steps", 10, "--n_metrics", 2)
    proc = subprocess.run([sys.executable, "-c", FORK, root], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    child = proc.stdout.split()[-1]
    source = runchain.open_source(project="forks")
    node = source.tree.nodes[child]
    assert (node.parent_run, node.parent_step, node.fork) == (root, 9, True)
    monkeypatch.setattr(project_reader, "PER_PAGE", 1)  # each run on a page of its own
    paged = runchain.open_source(project="forks").tree.nodes[child]
    assert (paged.parent_run, paged.parent_step, paged.fork) == (root, 9, True)
    cols = source.history(child)
    assert cols["step"].tolist() == [*range(10), *range(10, 15)]  # W&B goes on at _step 10
    assert cols["run_id"].tolist() == [root] * 10 + [child] * 5
    assert cols["loss/00"][10:].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


AXIS = """import json, os, sys, tempfile, wandb
run = wandb.init(project="axes")
run.define_metric("trainer/step")
run.define_metric("*", step_metric="trainer/step")
for i in range(10):
    run.log({"trainer/step": 10 * (i + 1), "loss": 1.0 / (i + 1)})
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "checkpoint.json"), "w") as f:
        json.dump({"step": 50}, f)
    artifact = wandb.Artifact(f"ckpt-{run.id}", type="checkpoint")
    artifact.add_file(os.path.join(tmp, "checkpoint.json"))
    run.log_artifact(artifact)
    run.finish()
print(run.id)
"""


def test_a_define_metric_axis_is_read_from_w_and_b(wandb_server, tmp_path, monkeypatch):
    """W&B keeps define_metric in the raw config's _wandb, which a listed Run of wandb 0.31
    drops: runchain reads it from the page the listing sent."""
    isolate(monkeypatch, tmp_path, server=wandb_server)
    proc = subprocess.run([sys.executable, "-c", AXIS], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.split()[-1]
    info = runchain.open_source(project="axes").tree.nodes[run_id].info
    assert info.step_metric == "trainer/step"
    assert (info.first_step, info.last_step) == (10, 100)
    assert [c.step for c in info.checkpoints] == [50]
