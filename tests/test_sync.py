"""``runchain sync``: the plan on real offline trees, upload and linking against stand-ins.

The plan is made from real offline runs grown by ``do_many.py``. W&B cannot be reached
from here, so the upload boundary (``runchain.commands.sync.upload_run``, which runs ``wandb sync``)
is replaced by ``FakeWandbSync``, which puts the uploaded runs on the in-memory stand-in
W&B of ``tests/wandb_standin.py``; linking then talks to that stand-in through the same
method names as wandb's public API. ``tests/test_wandb_contract.py`` checks those names,
and the ``wandb sync`` flags and ``.synced`` marker, against the installed wandb.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import wandb

import runchain
from runchain.commands import sync as syncing
from runchain.errors import CredentialsError, SourceError, SyncError
from runchain.readers.local_runs import run_folders

from helpers import cli, do_run, isolate, plain_run, runchain_process, script
from wandb_standin import RunData, StandinApi, StandinArtifact, uploaded_runs


pytestmark = pytest.mark.slow  # see docs/development.md

FAKE_KEY = "x" * 40  # credentials are only checked for presence; the stand-in takes no key


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A real offline tree from do_many.py (6 runs, 3 levels), whose root was then resumed
    in place (two folders). ``crumbs`` maps run id -> its breadcrumbs."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("sync_tree")
        wdir = isolate(mp, base)
        script("do_many.py", "--n_runs", 6, "--n_steps", 20, "--n_checkpoint_steps", 10,
               "--n_metrics", 2, "--workers", 3, "--seed", 1, "--no-report")
        source = runchain.open_source(wdir)
        (root,) = source.tree.roots
        do_run("--run_id", root, "--checkpoint_artifact", f"{root}@19", "--n_steps", 10)
        crumbs = {info.id: info.breadcrumbs for info in source.runs}
        yield {"dir": wdir, "root": root, "crumbs": crumbs, "env": dict(os.environ),
               "depth": max(node.depth for node in source.tree.nodes.values())}


# Hand-written breadcrumbs: parents elsewhere on W&B, and one that exists nowhere.
ODD = {
    "xent0001": ("far00001", "other-team/upstream/run-far00001-checkpoint:step-9", 9),
    "xprj0001": ("far00002", "upstream/run-far00002-checkpoint:step-19", 19),
    "orph0001": ("gone0001", "run-gone0001-checkpoint:step-9", 9),
}


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """Real offline runs whose breadcrumbs name parents that are not local (``ODD``)."""
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("sync_odd"))
        specs = [[run_id, {"parent_run": parent, "parent_checkpoint": ref, "parent_step": step,
                           "global_offset": step + 1, "root_run": parent, "depth": 1}]
                 for run_id, (parent, ref, step) in ODD.items()]
        code = ("import json, sys, wandb\n"
                "for run_id, crumbs in json.loads(sys.argv[2]):\n"
                "    run = wandb.init(project='runchain-demo', id=run_id, dir=sys.argv[1],\n"
                "                     mode='offline', config={'runchain': crumbs})\n"
                "    for step in range(5):\n"
                "        run.log({'loss': 1.0 / (step + 1)}, step=step)\n"
                "    run.finish()\n")
        subprocess.run([sys.executable, "-c", code, str(wdir.parent), json.dumps(specs)],
                       check=True, capture_output=True, timeout=300)
        yield {"dir": wdir}


def elsewhere(run_id: str, entity: str, project: str, step: int) -> RunData:
    """A run already on W&B (logged online elsewhere) with a checkpoint at ``step``."""
    checkpoint = StandinArtifact(f"run-{run_id}-checkpoint:v0", "checkpoint", "v0",
                                 [f"step-{step}", "latest"], {"step": step}, {}, run_id)
    return RunData(run_id, project, entity, None, "finished", {}, {},
                   {"_step": np.arange(step + 1)}, logged=[checkpoint])


def _fresh_copy(source: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of a wandb folder, in an isolated setup with fake credentials set."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    target = tmp_path / "wandb"
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture
def copy(grown, tmp_path, monkeypatch):
    """A fresh copy of the grown tree, with fake credentials set."""
    return _fresh_copy(grown["dir"], tmp_path, monkeypatch)


@pytest.fixture
def odd_copy(odd, tmp_path, monkeypatch):
    """A fresh copy of the ``odd`` runs, with fake credentials set."""
    return _fresh_copy(odd["dir"], tmp_path, monkeypatch)


class FakeWandbSync:
    """Stands in for ``wandb sync`` at ``runchain.commands.sync.upload_run``: it puts the runs of the
    folders on the stand-in W&B, as a plain ``wandb sync`` would (no input edges)."""

    def __init__(self, api: StandinApi, fail_at: int | None = None, delay: float = 0.0):
        self.api, self.fail_at, self.delay = api, fail_at, delay
        self.calls: list[tuple[str, list[str], str, str]] = []  # run id, folders, entity, project
        self.events: list[tuple[str, str]] = []  # ("start" | "end", run id), in time order
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, folders, entity: str, project: str, timeout: float) -> None:
        (run,) = uploaded_runs(list(folders), entity, project)
        with self.lock:
            self.calls.append((run.id, [f.name for f in folders], entity, project))
            self.events.append(("start", run.id))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            n = len(self.calls)
        try:
            if n == self.fail_at:
                raise SyncError("`wandb sync` exited 1: connection reset (injected)")
            time.sleep(self.delay)
            self.api.add([run])
        finally:
            with self.lock:
                self.in_flight -= 1
                self.events.append(("end", run.id))

    @property
    def uploaded(self) -> list[str]:
        return [run_id for run_id, *_ in self.calls]


@pytest.fixture
def fake(monkeypatch):
    """``make(api, **kw)`` installs a ``FakeWandbSync`` at the upload boundary."""
    def make(api, **kwargs):
        boundary = FakeWandbSync(api, **kwargs)
        monkeypatch.setattr(syncing, "upload_run", boundary)
        return boundary
    return make


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (symlinks as their target) -> its sha256."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def edges(grown) -> dict[str, tuple[str, int]]:
    """child -> (parent, parent_step), from the breadcrumbs."""
    return {run_id: (c.parent_run, c.parent_step) for run_id, c in grown["crumbs"].items()
            if c.parent_run is not None}


def used(api: StandinApi, run_id: str) -> list[tuple[str, list[str]]]:
    return [(a.name.split(":")[0], a.aliases) for a in api.data[run_id].used]


# -- the plan, on real offline trees ------------------------------------------------------

def test_plan_orders_parents_before_children_and_keeps_every_folder_of_a_resumed_run(grown):
    runs = syncing.plan(grown["dir"])

    ids = [item.run_id for item in runs]
    assert sorted(ids) == sorted(run_folders(grown["dir"])) and grown["depth"] >= 2
    for i, item in enumerate(runs):
        assert item.skipped == () and item.pending == item.folders  # all offline, none synced
        assert (item.entity, item.project) == (None, "runchain-demo")  # default entity: later
        if item.run_id in edges(grown):
            assert (item.edge.parent_run, item.edge.parent_step) == edges(grown)[item.run_id]
            assert item.edge.local and item.edge.problem is None
            assert ids.index(item.parent) < i
        else:
            assert item.edge is None and item.parent is None
    root = runs[ids.index(grown["root"])]
    assert len(root.folders) == 2 and list(root.folders) == sorted(root.folders)  # oldest first


def test_dry_run_prints_the_plan_without_credentials_and_changes_nothing(grown, tmp_path,
                                                                         monkeypatch):
    isolate(monkeypatch, tmp_path)  # no credentials
    target = tmp_path / "wandb"
    shutil.copytree(grown["dir"], target, symlinks=True)
    before = digest(target)

    proc = cli("sync", "--dry-run", "--dir", target)

    lines = proc.stdout.splitlines()
    printed = [line.split()[1] for line in lines]
    assert sorted(printed) == sorted(run_folders(target))
    for child, (parent, step) in edges(grown).items():
        line = lines[printed.index(child)]
        assert line.startswith(f"upload {child}  project runchain-demo  parent {parent}@{step}")
        assert printed.index(parent) < printed.index(child)
    assert lines[printed.index(grown["root"])] == (
        f"upload {grown['root']} (2 folders)  project runchain-demo  root")
    assert "nothing was changed" in proc.stderr
    assert digest(target) == before and not (target / syncing.STATE_FILE).exists()


def test_a_run_wandb_marked_synced_is_not_uploaded_but_its_edge_is_linked(copy, grown, fake):
    child = next(iter(edges(grown)))
    (run_file,) = copy.glob(f"offline-run-*-{child}/run-{child}.wandb")
    run_file.with_name(run_file.name + ".synced").touch()  # what `wandb sync` leaves
    api = StandinApi([], default_entity="ent")
    api.add(uploaded_runs([run_file.parent], "ent"))  # it is on W&B, without its edge
    boundary = fake(api)

    (item,) = [r for r in syncing.plan(copy) if r.run_id == child]
    assert item.pending == () and item.skipped == ("synced",) and item.edge is not None
    result = syncing.sync(copy, api=api)

    assert child not in boundary.uploaded and len(boundary.uploaded) == len(grown["crumbs"]) - 1
    assert {link.run_id: link.status for link in result.links}[child] == "linked"
    parent, step = edges(grown)[child]
    assert [name for name, aliases in used(api, child) if f"step-{step}" in aliases] == [
        f"run-{parent}-checkpoint"]


def test_flags_that_would_part_runs_from_their_checkpoints_are_refused_before_any_upload(
        copy, grown, fake):
    """wandb sync --project moves a run but uploads its artifacts to the project their records
    name (tests/test_online.py shows it with the real SDK): the runs with checkpoints are
    refused by name before anything is uploaded; a root already on W&B is not among them."""
    root = grown["root"]
    run_files = sorted(copy.glob(f"offline-run-*-{root}*/run-{root}.wandb"))
    for run_file in run_files:  # both folders: the root was resumed in place
        run_file.with_name(run_file.name + ".synced").touch()
    api = StandinApi([], default_entity="ent")
    boundary = fake(api)
    with pytest.raises(SyncError, match="nothing was uploaded") as refused:
        syncing.plan(copy, project="elsewhere")
    assert root not in str(refused.value) and "5 run(s) with checkpoints" in str(refused.value)
    with pytest.raises(SyncError):
        syncing.sync(copy, project="elsewhere", api=api)
    assert boundary.uploaded == []


# -- upload and linking, against stand-ins ------------------------------------------------

def test_sync_uploads_each_run_once_links_each_edge_and_leaves_the_run_files_as_they_were(
        copy, grown, fake):
    api = StandinApi([], default_entity="ent")
    boundary = fake(api)
    before = digest(copy)

    result = syncing.sync(copy, jobs=2, api=api)

    assert sorted(boundary.uploaded) == sorted(grown["crumbs"])
    assert {(entity, project) for _, _, entity, project in boundary.calls} == {
        ("ent", "runchain-demo")}
    (root_call,) = [c for c in boundary.calls if c[0] == grown["root"]]
    assert root_call[1] == sorted(root_call[1]) and len(root_call[1]) == 2  # in order, one call
    assert [link.status for link in result.links] == ["linked"] * len(edges(grown))
    for child, (parent, step) in edges(grown).items():
        names = [name for name, aliases in used(api, child) if f"step-{step}" in aliases]
        assert names == [f"run-{parent}-checkpoint"], child
        assert (f"ent/runchain-demo/{child}", ) == tuple(
            path for path, _ in api.use_calls if path.endswith(child))
    assert api.requests["default entity"] == 1
    after = digest(copy)
    assert json.loads((copy / syncing.STATE_FILE).read_text())["linked"]
    del after[syncing.STATE_FILE]
    assert after == before  # wandb's run folders untouched; only the state file is new


def test_syncing_twice_attaches_each_edge_once(copy, grown, fake):
    api = StandinApi([], default_entity="ent")
    boundary = fake(api)
    syncing.sync(copy, api=api)
    uploads, requests = len(boundary.calls), dict(api.requests)

    again = syncing.sync(copy, api=api)  # the state file says everything is done

    assert len(boundary.calls) == uploads
    assert {link.status for link in again.links} == {"already linked"}
    assert api.requests["artifact"] == requests["artifact"]  # not even asked
    (copy / syncing.STATE_FILE).unlink()  # without the state, W&B's used_artifacts decide
    third = syncing.sync(copy, api=api)

    assert {link.status for link in third.links} == {"already linked"}
    assert len(api.use_calls) == len(edges(grown))  # each edge attached exactly once
    assert api.requests["used artifacts page"] == 2 * len(edges(grown))


def test_an_interrupted_sync_continues_from_its_state_file(copy, grown, fake):
    api = StandinApi([], default_entity="ent")
    failing = fake(api, fail_at=3)

    with pytest.raises(SyncError) as info:
        syncing.sync(copy, jobs=1, api=api)

    message = str(info.value)
    broken = failing.uploaded[2]
    assert f"uploading run {broken} failed" in message and "connection reset" in message
    assert syncing.STATE_FILE in message and "runchain sync" in message
    state = json.loads((copy / syncing.STATE_FILE).read_text())
    done = failing.uploaded[:2]
    assert {path.rsplit("/", 1)[1] for path in state["uploaded"].values()} == set(done)
    assert state["linked"] == [] and api.use_calls == []  # stopped before linking

    healthy = fake(api)
    result = syncing.sync(copy, jobs=1, api=api)

    assert broken in healthy.uploaded and not set(done) & set(healthy.uploaded)
    assert sorted(done + healthy.uploaded) == sorted(grown["crumbs"])  # each run once
    assert [link.status for link in result.links] == ["linked"] * len(edges(grown))


def test_a_child_starts_uploading_only_after_its_parent_finished(copy, grown, fake):
    api = StandinApi([], default_entity="ent")
    boundary = fake(api, delay=0.05)

    syncing.sync(copy, jobs=3, api=api)

    order = boundary.events
    for child, (parent, _) in edges(grown).items():
        assert order.index(("end", parent)) < order.index(("start", child)), (child, parent)
    assert boundary.max_in_flight >= 2  # siblings went up side by side


def test_parents_in_another_entity_or_project_are_linked_where_they_live(odd_copy, fake):
    api = StandinApi([elsewhere("far00001", "other-team", "upstream", 9),
                      elsewhere("far00002", "ent", "upstream", 19)], default_entity="ent")
    boundary = fake(api)

    result = syncing.sync(odd_copy, api=api)

    links = {link.run_id: link for link in result.links}
    assert sorted(boundary.uploaded) == sorted(ODD)  # every run uploaded, the orphan too
    assert links["xent0001"].ref == "other-team/upstream/run-far00001-checkpoint:step-9"
    assert links["xprj0001"].ref == "ent/upstream/run-far00002-checkpoint:step-19"
    assert links["xent0001"].status == links["xprj0001"].status == "linked"
    assert used(api, "xent0001") == [("run-far00001-checkpoint", ["step-9", "latest"])]
    assert used(api, "xprj0001") == [("run-far00002-checkpoint", ["step-19", "latest"])]
    assert api.data["xent0001"].entity == "ent"  # the child goes to the default entity


def test_entity_and_project_flags_move_the_uploads_not_a_parent_elsewhere(odd_copy, fake):
    api = StandinApi([elsewhere("far00001", "other-team", "upstream", 9),
                      elsewhere("far00002", "team2", "upstream", 19)], default_entity="ent")
    boundary = fake(api)

    result = syncing.sync(odd_copy, entity="team2", project="llm", api=api)

    assert {(e, p) for _, _, e, p in boundary.calls} == {("team2", "llm")}
    links = {link.run_id: link for link in result.links}
    assert links["xent0001"].path == "team2/llm/xent0001"
    assert links["xent0001"].ref == "other-team/upstream/run-far00001-checkpoint:step-9"
    assert links["xprj0001"].ref == "team2/upstream/run-far00002-checkpoint:step-19"
    assert api.requests["default entity"] == 0  # --entity given: not asked


def test_a_parent_neither_local_nor_on_wandb_is_unlinkable_and_the_rest_carries_on(
        odd_copy, fake, monkeypatch):
    api = StandinApi([elsewhere("far00001", "other-team", "upstream", 9),
                      elsewhere("far00002", "ent", "upstream", 19)], default_entity="ent")
    boundary = fake(api)
    monkeypatch.setattr(syncing, "sync", functools.partial(syncing.sync, api=api))

    proc = cli("sync", "--dir", odd_copy, check=False)

    assert proc.returncode == 1, proc.stderr
    assert "orph0001" in boundary.uploaded  # the run itself is uploaded
    assert "linked xent0001 <- other-team/upstream/run-far00001-checkpoint:step-9" in proc.stdout
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("unlinkable")]
    assert line.startswith("unlinkable orph0001 <- ent/runchain-demo/run-gone0001-checkpoint:step-9")
    assert "gone0001 is neither in this folder nor on W&B" in line
    assert "1 edge(s) could not be linked" in proc.stderr
    assert api.data["orph0001"].used == []


@pytest.mark.parametrize("where", ["logged online", "not local"])
def test_a_parent_already_on_wandb_is_linked_without_uploading_it(copy, grown, fake, where):
    child, (parent, step) = next((c, e) for c, e in edges(grown).items()
                                 if e[0] != grown["root"])  # a parent with one folder
    (folder,) = copy.glob(f"offline-run-*-{parent}")
    api = StandinApi([], default_entity="ent")
    api.add(uploaded_runs([folder], "ent"))
    if where == "logged online":  # an online run's folder is run-*, not offline-run-*
        folder.rename(folder.with_name(folder.name.removeprefix("offline-")))
    else:
        shutil.rmtree(folder)
    boundary = fake(api)

    result = syncing.sync(copy, api=api)

    assert parent not in boundary.uploaded and child in boundary.uploaded
    assert {link.run_id: link.status for link in result.links}[child] == "linked"
    assert [name for name, aliases in used(api, child) if f"step-{step}" in aliases] == [
        f"run-{parent}-checkpoint"]
    assert not result.unlinkable


# -- errors -------------------------------------------------------------------------------

def test_without_credentials_sync_fails_before_any_upload(copy, grown, monkeypatch, fake):
    monkeypatch.delenv("WANDB_API_KEY")
    boundary = fake(StandinApi([]))
    before = digest(copy)

    with pytest.raises(CredentialsError) as info:
        syncing.sync(copy)

    assert "wandb login" in str(info.value) and "--dry-run" in str(info.value)
    assert boundary.calls == []
    proc = cli("sync", "--dir", copy, check=False)
    assert proc.returncode == 1 and "wandb login" in proc.stderr
    assert boundary.calls == [] and digest(copy) == before  # not even a state file


def test_a_failed_request_while_linking_raises_source_error_and_keeps_the_uploads(
        copy, grown, fake, monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.com")
    api = StandinApi([], default_entity="ent")
    api.fail["use artifact"] = wandb.errors.CommError("HTTP 502: bad gateway")
    boundary = fake(api)

    with pytest.raises(SourceError) as info:
        syncing.sync(copy, api=api)

    assert "https://wandb.example.com" in str(info.value) and "HTTP 502" in str(info.value)
    state = json.loads((copy / syncing.STATE_FILE).read_text())
    assert len(state["uploaded"]) == len(boundary.calls) + 1  # the root has two folders
    del api.fail["use artifact"]
    result = syncing.sync(copy, api=api)  # continues: links only
    assert len(boundary.calls) == len(grown["crumbs"])
    assert {link.status for link in result.links} == {"linked"}


def test_an_unreadable_state_file_is_an_error_saying_how_to_start_over(copy):
    (copy / syncing.STATE_FILE).write_text("[1, 2")

    with pytest.raises(SyncError, match="delete it to start over"):
        syncing.plan(copy)


def test_the_real_boundary_raises_sync_error_with_wandb_syncs_own_words(tmp_path, monkeypatch):
    """The real ``wandb sync``, given a folder that does not exist: click refuses it before
    any upload, so this runs offline."""
    isolate(monkeypatch, tmp_path)

    with pytest.raises(SyncError) as info:
        syncing.upload_run([tmp_path / "offline-run-20260101_000000-gone0001"], "ent", "proj")

    assert "`wandb sync` exited 2" in str(info.value) and "does not exist" in str(info.value)


# -- one bad run is that run's problem ---------------------------------------------------------

def _garbage(copy: Path) -> dict[str, Path]:
    """Add an empty run file and one that is not a run file at all."""
    made = {}
    for run_id, data in (("empty001", b""), ("garbage1", b"not a W&B run file")):
        folder = copy / f"offline-run-20260101_000000-{run_id}"
        folder.mkdir()
        (folder / f"run-{run_id}.wandb").write_bytes(data)
        made[run_id] = folder
    return made


def test_unreadable_run_files_are_left_alone_and_the_rest_is_synced(copy, grown, fake):
    bad = _garbage(copy)
    (copy / "offline-run-20260101_000000-norunfil").mkdir()  # a wandb.init that never started
    before = digest(copy)
    proc = cli("sync", "--dry-run", "--dir", copy, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (f"warning: run folder {copy / 'offline-run-20260101_000000-norunfil'} holds no run "
            f"(a wandb.init that never started?); left out; not synced") in proc.stderr
    for run_id in bad:
        assert f"skip {run_id} (left alone: its run file holds no run record" in proc.stdout
    assert sum(line.startswith("upload ") for line in proc.stdout.splitlines()) == len(grown["crumbs"])
    assert "project None" not in proc.stdout and "2 run(s) left alone" in proc.stderr

    api = StandinApi([], default_entity="ent")
    boundary = fake(api)
    result = syncing.sync(copy, api=api)
    assert sorted(boundary.uploaded) == sorted(grown["crumbs"])
    assert sorted(item.run_id for item in result.problems) == sorted(bad)
    assert not result.unlinkable
    after = digest(copy)
    assert {k: v for k, v in after.items() if k in before} == before  # only state was added


@pytest.mark.parametrize("value", [5, "ent", "ent/proj", None])
def test_a_damaged_state_entry_leaves_its_run_alone_and_is_kept(copy, grown, fake, value):
    root_folder = next(copy.glob(f"offline-run-*-{grown['root']}"))
    state = {"uploaded": {root_folder.name: value}, "linked": []}
    (copy / syncing.STATE_FILE).write_text(json.dumps(state))
    api = StandinApi([], default_entity="ent")
    boundary = fake(api)

    result = syncing.sync(copy, api=api)

    (left,) = result.problems
    assert left.run_id == grown["root"] and "not entity/project/run" in left.problem
    assert grown["root"] not in boundary.uploaded
    assert len(boundary.uploaded) == len(grown["crumbs"]) - 1
    saved = json.loads((copy / syncing.STATE_FILE).read_text())
    assert saved["uploaded"][root_folder.name] == value  # kept as found, for a person to look


def test_wandb_sync_that_hangs_is_stopped_at_the_timeout(tmp_path, monkeypatch):
    """An unreachable server makes `wandb sync` retry for minutes; the timeout stops it."""
    wdir = isolate(monkeypatch, tmp_path)
    run_file = plain_run(wdir, [{"loss": 1.0}])
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing there
    monkeypatch.setenv("WANDB_MODE", "online")
    with pytest.raises(SyncError, match=r"took more than 3 s .* and was stopped"):
        syncing.upload_run([run_file.parent], "ent", "proj", timeout=3)
    assert not is_synced_marker(run_file)


def is_synced_marker(run_file: Path) -> bool:
    return run_file.with_name(run_file.name + ".synced").exists()


def test_a_chain_view_is_uploaded_after_the_runs_it_shows(copy, grown, monkeypatch):
    leaf = next(iter(edges(grown)))
    monkeypatch.setenv("WANDB_DIR", str(copy.parent))  # the view lands beside the runs
    runchain_process("publish", leaf, "--dir", copy, "--mode", "offline")  # a W&B run
    runs = syncing.plan(copy)
    ids = [item.run_id for item in runs]
    (view,) = [item for item in runs if item.run_id not in grown["crumbs"]]
    assert view.parent == leaf and ids.index(view.run_id) > ids.index(leaf)
    assert view.pending and view.edge is None and view.problem is None
    dry = cli("sync", "--dry-run", "--dir", copy)
    assert f"upload {view.run_id}  project runchain-demo" in dry.stdout
    assert f"of {len(grown['crumbs']) + 1} runs to upload" in dry.stderr
