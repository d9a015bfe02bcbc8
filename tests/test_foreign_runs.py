"""Runs runchain did not write, or wrote oddly: each is read as well as it can be, and
what cannot be known is said in a note, never drawn as a wrong chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import runchain
from conftest import cli, do_run

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
    from conftest import isolate
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
