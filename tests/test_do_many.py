"""do_many.py: a seeded demo tree, the same serial or in parallel."""

import pytest

from helpers import isolate, rows, script
from runchain.readers.local_runs import run_folders
from runchain.readers.record_log import read_run_file


pytestmark = pytest.mark.slow  # see docs/development.md


def _canonical_tree(wandb_dir):
    """The tree as nested tuples, independent of run ids: (from step, lr, metrics, children)."""
    runs = {}
    for run_id, (path,) in run_folders(wandb_dir).items():
        run = read_run_file(path)
        logged = tuple(tuple(sorted((k, v) for k, v in r.items() if not k.startswith("_")))
                       for r in rows(run.history))
        runs[run_id] = (run.config["runchain"], run.config["lr"], logged)

    def node(run_id):
        crumbs, lr, logged = runs[run_id]
        kids = sorted(node(k) for k, (c, *_) in runs.items() if c["parent_run"] == run_id)
        return (crumbs["parent_step"], lr, logged, tuple(kids))

    (root,) = [k for k, (c, *_) in runs.items() if c["parent_run"] is None]
    return node(root), runs


def _grow(base, *args):
    with pytest.MonkeyPatch.context() as mp:
        wandb_dir = isolate(mp, base)
        proc = script("do_many.py", "--n_runs", 6, "--n_steps", 20, "--n_checkpoint_steps", 5,
                      "--n_metrics", 4, *args)
        return wandb_dir, proc


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return _grow(tmp_path_factory.mktemp("serial"), "--seed", 1)


def test_fixed_seed_gives_this_tree_shape(serial):
    wandb_dir, proc = serial
    tree, runs = _canonical_tree(wandb_dir)
    assert len(runs) == 6

    def shape(node):
        step, _, _, kids = node
        return (step, [shape(k) for k in kids])

    # Pinned for --seed 1: parents and cut steps (checkpoints at 4, 9, 14, 19).
    assert shape(tree) == (None, [(4, []), (9, [(4, []), (4, [(4, [])])])])
    by_id = {rid: c for rid, (c, *_) in runs.items()}
    for crumbs in by_id.values():  # offsets follow the contract's formula
        if crumbs["parent_run"]:
            parent = by_id[crumbs["parent_run"]]
            assert crumbs["global_offset"] == parent["global_offset"] + crumbs["parent_step"] + 1
            assert crumbs["depth"] == parent["depth"] + 1
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("6 new runs in project runchain-demo (offline); runchain tree")
    assert lines[-1].startswith("report: ") and lines[-1].endswith("runchain-report.html")
    printed = {line.split()[0]: len(line) - len(line.lstrip()) for line in lines[1:-1]}
    assert printed == {rid: 2 * c["depth"] for rid, c in by_id.items()}  # indented by depth


def test_same_seed_same_tree_and_metrics_with_two_workers(serial, tmp_path):
    parallel_dir, _ = _grow(tmp_path, "--seed", 1, "--workers", 2)
    assert _canonical_tree(parallel_dir)[0] == _canonical_tree(serial[0])[0]


def test_start_run_id_grows_an_existing_tree(serial):
    wandb_dir, _ = serial
    _, runs = _canonical_tree(wandb_dir)
    leaf = next(rid for rid, (c, *_) in runs.items() if c["depth"] == 3)
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, wandb_dir.parent.parent)  # the same folders the tree was made in
        script("do_many.py", "--start_run_id", leaf, "--n_runs", 2, "--n_steps", 10,
               "--n_checkpoint_steps", 5)
    _, grown = _canonical_tree(wandb_dir)
    new = {rid: c for rid, (c, *_) in grown.items() if rid not in runs}
    assert len(new) == 2
    assert any(c["parent_run"] == leaf for c in new.values())
    assert all(c["root_run"] == runs[leaf][0]["root_run"] for c in new.values())


def test_unknown_start_run_fails_before_running_anything(wandb_dir):
    proc = script("do_many.py", "--start_run_id", "nosuchrun", "--n_runs", 1, check=False)
    assert proc.returncode != 0 and "nosuchrun" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(wandb_dir.glob("*run-*"))
