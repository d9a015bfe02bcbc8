"""Runs runchain did not write, or wrote oddly: each is read as well as it can be, and
what cannot be known is said in a note, never drawn as a wrong chain."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import runchain
from helpers import cli, do_run, script


pytestmark = pytest.mark.slow  # see docs/development.md

BAD_BREADCRUMBS = {  # run name -> the field that is wrong, and its value
    "list-parent": ("parent_run", ["x"]),
    "dict-parent": ("parent_run", {"id": "x"}),
    "text-step": ("parent_step", "5"),
    "text-offset": ("global_offset", "x"),
    "huge-step": ("parent_step", 10**30),
    "float-step": ("parent_step", 6.5),
    "bool-step": ("parent_step", True),
    "negative-step": ("parent_step", -1),
}


def run_with_config(wandb_dir: Path, name: str, config: dict, steps: int = 5) -> str:
    """A plain wandb offline run with ``config``, logging ``loss`` for ``steps`` steps."""
    code = ("import json, sys, wandb\n"
            "run = wandb.init(project='p', dir=sys.argv[1], mode='offline', name=sys.argv[2],\n"
            "                 config=json.loads(sys.argv[3]))\n"
            "for step in range(int(sys.argv[4])):\n"
            "    run.log({'loss': 1.0 / (step + 1)}, step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(wandb_dir.parent), name,
                           json.dumps(config), str(steps)],
                          capture_output=True, text=True, check=True, timeout=300)
    return proc.stdout.split()[-1]


@pytest.fixture(scope="module")
def bad_crumbs(tmp_path_factory):
    """A real root from do_run.py, and one plain run per kind of malformed breadcrumbs, each
    claiming that root as its parent."""
    from helpers import isolate
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("bad_crumbs"))
        root = do_run("--n_steps", 20, "--n_checkpoint_steps", 10, "--n_metrics", 2)
        ids = {}
        for name, (field, value) in BAD_BREADCRUMBS.items():
            crumbs = {"parent_run": root, "parent_checkpoint": f"run-{root}-checkpoint:step-9",
                      "parent_step": 9, "global_offset": 10, "root_run": root, "depth": 1}
            crumbs[field] = value
            ids[name] = run_with_config(wdir, name, {"runchain": crumbs})
        yield {"dir": wdir, "root": root, "ids": ids, "env": dict(__import__("os").environ)}


def test_malformed_breadcrumbs_make_a_root_with_a_note_naming_the_field(bad_crumbs):
    source = runchain.open_source(bad_crumbs["dir"])
    for name, (field, _) in BAD_BREADCRUMBS.items():
        run_id = bad_crumbs["ids"][name]
        node = source.tree.nodes[run_id]
        assert node.parent_run is None and node.global_offset == 0, name  # a root, no guess
        assert node.info.breadcrumbs is None
        assert any(note.startswith(f"run {run_id}: ") and field in note
                   for note in source.tree.notes), (name, source.tree.notes)


@pytest.mark.parametrize("command", [["tree"], ["tree", "--json"], ["report", "-o", "r.html"]])
def test_every_command_still_reads_the_rest_of_the_folder(bad_crumbs, command, monkeypatch):
    monkeypatch.chdir(bad_crumbs["dir"].parent)
    proc = cli(*command, "--dir", bad_crumbs["dir"])
    assert "Traceback" not in proc.stderr
    for run_id in bad_crumbs["ids"].values():
        assert f"note: run {run_id}: breadcrumbs" in proc.stderr
    if command == ["tree"]:
        assert bad_crumbs["root"] in proc.stdout
        assert all(run_id in proc.stdout for run_id in bad_crumbs["ids"].values())


def test_chain_of_a_run_with_bad_breadcrumbs_is_its_own_rows(bad_crumbs):
    run_id = bad_crumbs["ids"]["huge-step"]
    proc = cli("chain", run_id, "--dir", bad_crumbs["dir"], "--csv", "-")
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("global_step,run_id,step,loss")
    assert [line.split(",")[0] for line in lines[1:]] == [str(s) for s in range(5)]


# -- the original example's runs ------------------------------------------------------------

@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A root of the original example (checkpoints v0-v2 at steps 9, 19, 29), a child of its
    v1 (step 19) as the original writes it, and a runchain child of its step 29."""
    from helpers import isolate
    from foreign import original_child, original_root
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("original"))
        root = original_root(wdir)
        child = original_child(wdir, root, "v1")
        refused = script("do_run.py", "--checkpoint_artifact", f"{root}@29", check=False)
        ours = runchain_child(wdir, f"{root}@29")
        yield {"dir": wdir, "root": root, "child": child, "ours": ours, "refused": refused}


def runchain_child(wandb_dir: Path, ref: str, steps: int = 5) -> str:
    """The smallest runchain run resuming from ``ref``: load, init, start, log, finish."""
    code = ("import sys, wandb, runchain\n"
            "ckpt = runchain.load_checkpoint(sys.argv[1], mode='offline')\n"
            "run = wandb.init(project='orig')\n"
            "runchain.start(run, ckpt)\n"
            "for step in range(int(sys.argv[2])):\n"
            "    runchain.log(run, {'loss': 0.5}, step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    proc = subprocess.run([sys.executable, "-c", code, ref, str(steps)], cwd=wandb_dir.parent,
                          capture_output=True, text=True, check=True, timeout=300)
    return proc.stdout.split()[-1]


def test_do_run_names_the_state_keys_a_foreign_checkpoint_lacks(original):
    proc = original["refused"]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert 'has no "config", "optimizer", "iter_num", "rng" keys' in proc.stderr


def test_tree_lists_the_original_examples_checkpoints_and_edges(original):
    source = runchain.open_source(original["dir"])
    root = source.tree.nodes[original["root"]]
    assert [(c.step, c.alias, c.version) for c in root.info.checkpoints] == [
        (9, "v0", "v0"), (19, "v1", "v1"), (29, "v2", "v2")]
    child = source.tree.nodes[original["child"]]
    assert (child.parent_run, child.parent_step, child.global_offset) == (original["root"], 19, 20)
    ours = source.tree.nodes[original["ours"]]
    assert (ours.parent_run, ours.parent_step, ours.global_offset) == (original["root"], 29, 30)
    assert not source.tree.notes
    out = cli("tree", "--dir", original["dir"]).stdout
    assert "checkpoints 9,19,29" in out and "checkpoints -" not in out.split(original["ours"])[0]


def test_chain_through_the_original_example_cuts_at_the_used_version(original):
    source = runchain.open_source(original["dir"])
    cols = source.history(original["child"], keys=["loss"])
    assert cols["global_step"].tolist() == list(range(30))
    assert cols["run_id"].tolist() == [original["root"]] * 20 + [original["child"]] * 10
    assert cols["step"].tolist() == list(range(20)) + list(range(10))


def test_id_at_step_resolves_a_checkpoint_without_a_step_alias(original):
    ckpt = runchain.load_checkpoint(f"{original['root']}@19", mode="offline",
                                    wandb_dir=original["dir"])
    assert (ckpt.step, ckpt.version, ckpt.state["model"]["w"]) == (19, "v1", pytest.approx(2.0))
    assert ckpt.ref.short == f"run-{original['root']}-checkpoint:v1"  # a label it really has
    with pytest.raises(runchain.CheckpointNotFoundError, match=r"it has v0 \(step 9\), v1 \(step 19"):
        runchain.load_checkpoint(f"{original['root']}@18", mode="offline", wandb_dir=original["dir"])


def test_a_runchain_child_records_a_reference_that_exists(original):
    source = runchain.open_source(original["dir"])
    crumbs = source.tree.nodes[original["ours"]].info.breadcrumbs
    assert crumbs.parent_checkpoint == f"run-{original['root']}-checkpoint:v2"
    from runchain.commands import sync
    (planned,) = [p for p in sync.plan(original["dir"]) if p.run_id == original["ours"]]
    assert planned.edge.ref.alias == "v2" and planned.edge.problem is None


# -- W&B's own forks ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def forked(tmp_path_factory):
    """A plain run A (loss 0..29 at _step 0..29) and B = wandb.init(fork_from=f"{A}?_step=15")
    (loss 100..109), made with the installed wandb's own fork_from."""
    from helpers import isolate
    from foreign import plain
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("forked"))
        a = plain(wdir, 30, 0.0, project="orig")
        b = plain(wdir, 10, 100.0, project="orig", fork_from=f"{a}?_step=15")
        yield {"dir": wdir, "a": a, "b": b}


def test_a_wandb_fork_is_an_edge_on_its_parents_axis(forked):
    source = runchain.open_source(forked["dir"])
    node = source.tree.nodes[forked["b"]]
    assert (node.parent_run, node.parent_step, node.fork, node.global_offset) == (
        forked["a"], 15, True, 0)
    out = cli("tree", "--dir", forked["dir"]).stdout
    assert f"forked from {forked['a']}@15" in out


def test_a_forks_chain_is_its_parents_rows_to_the_fork_then_its_own(forked):
    """Row by row: A's rows 0-15, then B's rows 16-25, on one gapless axis."""
    cols = runchain.open_source(forked["dir"]).history(forked["b"], keys=["loss"])
    assert cols["global_step"].tolist() == list(range(26))
    assert cols["step"].tolist() == list(range(26))
    assert cols["run_id"].tolist() == [forked["a"]] * 16 + [forked["b"]] * 10
    assert cols["loss"].tolist() == [float(i) for i in range(16)] + [100.0 + i for i in range(10)]


def test_the_w_and_b_reader_sees_the_same_fork(forked):
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir
    remote = open_project("ent/orig", api=StandinApi(project_from_dir(forked["dir"])))
    node = remote.tree.nodes[forked["b"]]
    assert (node.parent_run, node.parent_step, node.fork, node.global_offset) == (
        forked["a"], 15, True, 0)
    local = runchain.open_source(forked["dir"]).history(forked["b"])
    for key, column in remote.history(forked["b"]).items():
        assert column.tolist() == local[key].tolist(), key


# -- timelines: rewinds, resumes in place, restarted counters --------------------------------

@pytest.fixture(scope="module")
def rewound(tmp_path_factory):
    """A of the original example (checkpoints at 9, 19, 29), rewound with W&B's own
    resume_from to step 15 (10 rows, 16-25), and a runchain child of A@29, the checkpoint
    the rewind abandoned."""
    from helpers import isolate
    from foreign import original_root, plain
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("rewound"))
        a = original_root(wdir)
        plain(wdir, 10, 200.0, project="orig", id=a, resume_from=f"{a}?_step=15")
        child = runchain_child(wdir, f"{a}@29")
        yield {"dir": wdir, "a": a, "child": child}


def test_a_rewound_run_reads_its_newest_timeline(rewound):
    source = runchain.open_source(rewound["dir"])
    node = source.tree.nodes[rewound["a"]]
    assert node.info.last_step == 25
    assert [(c.step, c.timeline is not None) for c in node.info.checkpoints] == [
        (9, False), (19, True), (29, True)]  # 19 and 29 were saved after step 15
    cols = source.history(rewound["a"], keys=["loss"])
    assert cols["step"].tolist() == list(range(26))
    assert cols["loss"].tolist()[:16] == [1.0 / (s + 1) for s in range(16)]
    assert cols["loss"].tolist()[16:] == [200.0 + i for i in range(10)]


def test_a_child_of_an_abandoned_checkpoint_gets_exactly_that_timeline(rewound):
    source = runchain.open_source(rewound["dir"])
    cols = source.history(rewound["child"], keys=["loss"])
    assert cols["global_step"].tolist() == list(range(35))  # no gap, no mix
    assert cols["run_id"].tolist() == [rewound["a"]] * 30 + [rewound["child"]] * 5
    assert cols["loss"].tolist()[:30] == [1.0 / (s + 1) for s in range(30)]
    out = cli("tree", "--dir", rewound["dir"]).stdout
    assert "checkpoints 9  abandoned 19,29" in out
    segments = json.loads(cli("chain", rewound["child"], "--dir", rewound["dir"],
                              "--json").stdout)["segments"]
    assert [(s["run_id"], s["last_step"]) for s in segments][0] == (rewound["a"], 29)


def test_runchains_resume_in_place_abandons_the_checkpoints_after_its_resume_point(wandb_dir):
    """do_run.py killed after step 39, resumed in place from its step 19: the new file takes
    over from step 20, and a child of the old step 39 reads the old file alone."""
    run = do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--n_metrics", 2, "--run_id", "rip00001")
    do_run("--n_steps", 5, "--n_checkpoint_steps", 10, "--run_id", run, "--checkpoint_artifact", f"{run}@19")
    child = do_run("--n_steps", 3, "--checkpoint_artifact", f"{run}@39")
    source = runchain.open_source(wandb_dir)
    info = source.tree.nodes[run].info
    assert info.last_step == 24
    assert [(c.step, c.timeline) for c in info.checkpoints] == [
        (9, None), (19, None), (24, None), (29, 0), (39, 0)]
    cols = source.history(child, keys=["loss/00"])
    assert cols["step"].tolist() == list(range(40)) + list(range(3))
    assert cols["global_step"].tolist() == list(range(43))
    whole = source.history(run, keys=["loss/00"])
    assert whole["step"].tolist() == list(range(25))


def test_a_restarted_counter_keeps_every_row_after_the_earlier_ones_with_a_note(wandb_dir):
    from foreign import plain
    import time
    run = plain(wandb_dir, 30, 0.0, project="orig", id="restart1", resume="allow")
    time.sleep(1.1)  # folders are named by the second
    plain(wandb_dir, 10, 300.0, project="orig", id=run, resume="allow")
    source = runchain.open_source(wandb_dir)
    assert source.tree.nodes[run].info.last_step == 39
    cols = source.history(run, keys=["loss"])
    assert cols["step"].tolist() == list(range(40))
    assert cols["loss"].tolist() == [float(i) for i in range(30)] + [300.0 + i for i in range(10)]
    (note,) = source.tree.notes
    assert note.startswith(f"run {run}: its file ") and "restarts _step at 0" in note
    assert "placed after step 29, at 30-39" in note


# -- steps that would leave a gap ----------------------------------------------------------

def test_a_child_going_on_with_its_parents_counter_is_warned_and_noted(tree, tmp_path):
    """The most common resume bug: a new run logs from checkpoint.step + 1 instead of 0."""
    code = ("import sys, wandb, runchain\n"
            "ckpt = runchain.load_checkpoint(sys.argv[1], mode='offline')\n"
            "run = wandb.init(project='runchain-demo')\n"
            "runchain.start(run, ckpt)\n"
            "for step in range(ckpt.step + 1, ckpt.step + 6):\n"
            "    runchain.log(run, {'loss': 0.5}, step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    folder = tmp_path / "wandb_dir" / "wandb"  # a copy: the demo tree is shared, read-only
    shutil.copytree(tree["dir"], folder)
    env = {**tree["env"], "WANDB_DIR": str(folder.parent)}
    proc = subprocess.run([sys.executable, "-c", code, f"{tree['root']}@19"], env=env,
                          cwd=folder.parent, capture_output=True, text=True, check=True)
    child = proc.stdout.split()[-1]
    assert proc.stderr.count("logs its first row at local step 20, not 0") == 1
    assert "gap of 20 steps" in proc.stderr
    out = cli("tree", "--dir", folder)
    assert f"run {child}: its first row is at local step 20, not 0" in out.stderr
    line = next(line for line in out.stdout.splitlines() if child in line)
    assert "steps 20-24  global 40-44" in line


def test_cuts_and_checkpoints_past_the_logged_rows_get_a_note(bad_crumbs, tmp_path, monkeypatch):
    from helpers import isolate
    wdir = isolate(monkeypatch, tmp_path)
    root = do_run("--n_steps", 10, "--n_checkpoint_steps", 10, "--n_metrics", 2)
    crumbs = {"parent_run": root, "parent_checkpoint": f"run-{root}-checkpoint:step-500",
              "parent_step": 500, "global_offset": 501, "root_run": root, "depth": 1}
    child = run_with_config(wdir, "late", {"runchain": crumbs})
    source = runchain.open_source(wdir)
    assert (f"run {child}: starts from {root}@500, past {root}'s last logged step 9"
            in "\n".join(source.tree.notes))


# -- one run id in two projects ----------------------------------------------------------------

@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Run id twinid01 in project projA (20 rows) and in projB (12 rows), in one folder."""
    from helpers import isolate
    from foreign import plain
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("twins"))
        plain(wdir, 20, 0.0, project="projA", id="twinid01")
        plain(wdir, 12, 500.0, project="projB", id="twinid01")
        yield {"dir": wdir}


def test_one_id_in_two_projects_is_two_runs(twins):
    source = runchain.open_source(twins["dir"])
    assert set(source.tree.nodes) == {"projA/twinid01", "projB/twinid01"}
    a, b = source.tree.nodes["projA/twinid01"].info, source.tree.nodes["projB/twinid01"].info
    assert (a.project, a.last_step, b.project, b.last_step) == ("projA", 19, "projB", 11)
    assert source.history("projB/twinid01", keys=["loss"])["loss"].tolist() == [
        500.0 + i for i in range(12)]
    out = cli("tree", "--dir", twins["dir"]).stdout
    assert "projA/twinid01  finished  project projA" not in out  # the key already says it
    assert "project projA" in out and "project projB" in out
    proc = cli("chain", "twinid01", "--dir", twins["dir"], check=False)
    assert proc.returncode == 1 and "projA/twinid01" in proc.stderr  # close matches
    assert "projB" in proc.stderr and "--only-project" in proc.stderr  # and how to pick one


def test_only_project_limits_a_folder_to_one_project(twins):
    source = runchain.open_source(twins["dir"], only_project="projB")
    assert set(source.tree.nodes) == {"twinid01"}  # one project: the bare id is the key
    assert source.tree.nodes["twinid01"].info.last_step == 11
    out = cli("tree", "--dir", twins["dir"], "--only-project", "projA").stdout
    assert out.startswith("twinid01  ") and "steps 0-19" in out and "projB" not in out
    out = cli("chain", "twinid01", "--dir", twins["dir"], "--only-project", "projB").stdout
    assert "keeps steps 0-11" in out
    proc = cli("tree", "--dir", twins["dir"], "--only-project", "nosuch", check=False)
    assert proc.returncode == 1 and "holds projA, projB" in proc.stderr
    plan = cli("sync", "--dir", twins["dir"], "--dry-run", "--only-project", "projB").stdout
    assert "upload twinid01  project projB" in plan and "projA" not in plan


def test_the_w_and_b_reader_reads_the_original_examples_runs_alike(original):
    """On W&B the step comes from downloading checkpoint.json (once per artifact), and the
    child's use_artifact record is the edge; both readers give the same tree and chains."""
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir
    runs = [d for d in project_from_dir(original["dir"]) if d.project == "orig"]
    api = StandinApi(runs)
    remote = open_project("ent/orig", api=api)
    local = runchain.open_source(original["dir"])
    def facts(source):
        return {k: (n.parent_run, n.parent_step, n.global_offset,
                    [(c.step, c.alias) for c in n.info.checkpoints])
                for k, n in source.tree.nodes.items()}
    assert facts(remote) == facts(local)
    assert api.requests["file download"] == sum(
        1 for d in runs for a in d.logged if "step" not in a.metadata)
    for key, column in remote.history(original["child"]).items():
        assert column.tolist() == local.history(original["child"])[key].tolist(), key
