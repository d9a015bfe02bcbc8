"""The CLI as a new user meets it: values of a chain's metrics, a run's summary, refusals of
what it cannot do, a closed pipe, runs named by display name, and quiet, right labels, on real
offline runs. The CLI runs in process (``helpers.cli``), but for a pipe and a W&B run it
starts, which need a process of their own."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runchain
from helpers import cli, run_file, runchain_process
from runchain.readers.record_log import read_run_file
from runchain.renderers.formats import FIGURES


def offline_run(wandb_dir: Path, project: str = "p", name: str | None = None,
                config: dict | None = None, rows: int = 0, metrics: int = 1) -> str:
    """A plain offline wandb run in a subprocess; returns its id."""
    code = ("import json, sys, wandb\n"
            "a = json.loads(sys.argv[2])\n"
            "run = wandb.init(project=a['project'], dir=sys.argv[1], mode='offline',\n"
            "                 name=a['name'], config=a['config'])\n"
            "for step in range(a['rows']):\n"
            "    run.log({f'm/{k:02d}': (step * 7919 + k) % 1000 / 7.0 for k in range(a['metrics'])},"
            " step=step)\n"
            "run.finish()\n"
            "print(run.id)\n")
    args = {"project": project, "name": name, "config": config or {}, "rows": rows,
            "metrics": metrics}
    proc = subprocess.run([sys.executable, "-c", code, str(wandb_dir.parent), json.dumps(args)],
                          capture_output=True, text=True, check=True, timeout=300)
    return proc.stdout.split()[-1]


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def expected_figures(rows: list[dict[str, str]], key: str) -> dict[str, float | None]:
    """first, last, min, max of a CSV column, computed here from the rows written."""
    values = [float(r[key]) for r in rows if r[key] != ""]
    if not values:
        return dict.fromkeys(FIGURES)
    return {"first": values[0], "last": values[-1], "min": min(values), "max": max(values)}


# -- values in the CLI --------------------------------------------------------------------

def test_chain_metric_prints_first_last_min_max_per_segment_and_for_the_chain(tree):
    child = tree["child"]
    rows = csv_rows(cli("chain", child, "--metric", "loss/00", "--csv", "-").stdout)
    out = cli("chain", child, "--metric", "loss/00").stdout.splitlines()

    table = out[out.index("") + 1:]
    assert table[0].split() == ["loss/00", *FIGURES]
    shown = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in table[1:]}
    assert list(shown) == [tree["root"], child, "chain"]
    for name in (tree["root"], child):
        want = expected_figures([r for r in rows if r["run_id"] == name], "loss/00")
        assert shown[name] == pytest.approx([want[f] for f in FIGURES], rel=1e-5), name
    want = expected_figures(rows, "loss/00")
    assert shown["chain"] == pytest.approx([want[f] for f in FIGURES], rel=1e-5)
    assert shown[tree["root"]] != shown[child]


def test_chain_json_with_metric_carries_the_figures_exactly(tree):
    child = tree["child"]
    rows = csv_rows(cli("chain", child, "--metric", "loss/*", "--csv", "-").stdout)
    got = json.loads(cli("chain", child, "--metric", "loss/*", "--json").stdout)

    keys = [k for k in rows[0] if k.startswith("loss/")]
    assert got["leaf"] == child and got["runs"] == [tree["root"], child]
    assert list(got["metrics"]) == keys and len(keys) > 1  # the glob, expanded
    for key in keys:
        assert got["metrics"][key] == expected_figures(rows, key)  # exact: the CSV is repr
        for seg in got["segments"]:
            assert seg["metrics"][key] == expected_figures(
                [r for r in rows if r["run_id"] == seg["run_id"]], key)
    assert [s["last_step"] for s in got["segments"]] == [19, 14]


def test_chain_json_without_metric_has_segments_and_no_figures(tree):
    got = json.loads(cli("chain", tree["child"], "--json").stdout)
    assert got["metrics"] == {} and all(s["metrics"] == {} for s in got["segments"])
    assert [(s["global_first"], s["global_last"]) for s in got["segments"]] == [(0, 19), (20, 34)]


def test_tree_json_gives_each_run_wandbs_own_summary_of_its_metrics(tree):
    runs = json.loads(cli("tree", "--json").stdout)
    assert len(runs) == 2
    for run in runs:  # the summary records wandb itself wrote into the run file
        own = read_run_file(run_file(tree["dir"], run["id"]), summary=True).summary
        metrics = {k: v for k, v in own.items() if not k.startswith("_") and k != "global_step"
                   and isinstance(v, float)}
        assert metrics and run["summary"] == metrics, run["id"]


@pytest.mark.parametrize("mode", [[], ["--json"], ["--csv", "out.csv"], ["--csv", "-"]],
                         ids=["text", "json", "csv-file", "csv-stdout"])
def test_a_misspelled_metric_is_an_error_in_every_chain_mode(tree, mode):
    proc = cli("chain", tree["child"], "--metric", "los/00", *mode, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "'los/00'" in proc.stderr and "loss/00" in proc.stderr  # the close match
    assert not Path("out.csv").exists()


@pytest.mark.parametrize("command", [["report", "-o", "r.html"], ["publish", "{child}"]])
def test_a_misspelled_metric_is_an_error_in_report_and_publish(tree, command):
    args = [a.format(child=tree["child"]) for a in command]
    proc = cli(*args, "--metric", "los/00", check=False)
    assert proc.returncode == 1 and "'los/00'" in proc.stderr
    assert not Path("r.html").exists()


def test_a_cut_past_the_last_step_is_an_error_naming_that_step(tree):
    proc = cli("chain", f"{tree['child']}@5000", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"{tree['child']}@5000 is past run {tree['child']}'s last logged step 14" in proc.stderr


# -- pipes --------------------------------------------------------------------------------

# In subprocesses: a pipe whose reader goes away is what is tested.

def test_a_closed_pipe_ends_quietly_with_exit_0(wandb_dir, processes):
    offline_run(wandb_dir, rows=3000, metrics=10)  # ~500 KB of CSV: past any pipe buffer
    leaf = runchain.leaves(runchain.open_source(wandb_dir).tree)[0]
    proc = processes.start([sys.executable, "-m", "runchain", "chain", leaf, "--csv", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"global_step,run_id,step,m/00")
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and err == ""


def test_a_closed_pipe_ends_tree_quietly_too(wandb_dir, processes):
    for i in range(4):
        offline_run(wandb_dir, name=f"r{i}", config={"lr": i, **{f"k{j}": "x" * 1000 for j in range(20)}})
    assert len(cli("tree", "--json").stdout) > 1 << 16  # past a pipe buffer
    proc = processes.start(["/bin/bash", "-c", f"{sys.executable} -m runchain tree --json | "
                            f"head -c 10; exit ${{PIPESTATUS[0]}}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    assert (proc.returncode, err, out) == (0, "", '[\n  {\n    ')


# -- names --------------------------------------------------------------------------------

def test_a_run_is_named_by_its_unique_display_name(tree):
    by_name = cli("chain", "root", "--json").stdout
    assert json.loads(by_name)["runs"] == [tree["root"]]
    assert cli("chain", f"{tree['root']}", "--json").stdout == by_name
    cut = json.loads(cli("chain", "root@9", "--json").stdout)  # <name>@<step> cuts it too
    assert cut["runs"] == [tree["root"]] and cut["segments"][0]["last_step"] == 9


def test_a_name_several_runs_have_lists_the_ids_it_could_mean(wandb_dir):
    ids = sorted(offline_run(wandb_dir, name="baseline", rows=2) for _ in range(2))
    proc = cli("chain", "baseline", check=False)
    assert proc.returncode == 1
    assert f"2 runs are named 'baseline': {ids[0]}, {ids[1]}; name one by its id" in proc.stderr
    assert cli("chain", ids[1], "--json").stdout  # each id still works


# -- quiet and right ----------------------------------------------------------------------

# publish starts a W&B run: in a process of its own, as a user runs it (wandb sets up once
# per process, from the environment of its first run, and its service may still write the
# run's file after finish() returns)
def _publish_into_a_copy(tree, tmp_path, monkeypatch) -> None:
    """An offline publish writes a run where WANDB_DIR points: a copy, so the shared tree stays
    as made."""
    shutil.copytree(tree["dir"].parent, tmp_path / "copy")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "copy"))


def test_publish_offline_prints_no_wandb_warning(tree, tmp_path, monkeypatch):
    _publish_into_a_copy(tree, tmp_path, monkeypatch)
    proc = runchain_process("publish", tree["child"], "--mode", "offline")
    assert proc.stdout.startswith(f"published chain-{tree['child']} as run ")
    assert "offline run in" in proc.stdout
    assert "WARNING" not in proc.stderr and "wandb:" not in proc.stderr


def test_publish_takes_a_display_name(tree, tmp_path, monkeypatch):
    _publish_into_a_copy(tree, tmp_path, monkeypatch)
    proc = runchain_process("publish", "root", "--mode", "offline")
    assert proc.stdout.startswith(f"published chain-{tree['root']} as run ")


def test_sync_dry_run_labels_a_chain_view_as_one(tree, tmp_path, monkeypatch):
    _publish_into_a_copy(tree, tmp_path, monkeypatch)
    view = runchain_process("publish", tree["child"], "--mode", "offline").stdout.split()[4].rstrip(":")
    proc = cli("sync", "--dry-run")
    lines = {line.split()[1]: line for line in proc.stdout.splitlines()}
    assert lines[view].endswith(f"chain view of {tree['child']}")
    assert lines[tree["root"]].endswith("  root")


def test_a_tree_line_shows_six_differing_config_keys_then_how_many_more(wandb_dir):
    base = {f"k{i}": i for i in range(9)}
    offline_run(wandb_dir, name="a", config=base)
    offline_run(wandb_dir, name="b", config={k: v + 100 for k, v in base.items()})
    lines = cli("tree").stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        shown = [w for w in line.split() if w.startswith("k") and "=" in w]
        assert len(shown) == 6 and line.endswith("+3 more"), line


def test_a_root_is_compared_with_the_roots_of_its_own_project_only(wandb_dir):
    offline_run(wandb_dir, project="a", name="a1", config={"lr": 1, "width": 64})
    offline_run(wandb_dir, project="a", name="a2", config={"lr": 2, "width": 64})
    offline_run(wandb_dir, project="b", name="b1", config={"lr": 1, "width": 8, "depth": 3})
    lines = {line.split()[1]: line for line in cli("tree").stdout.splitlines()}
    assert lines["'a1'"].endswith("project a  finished  root  steps no rows  global no rows  "
                                  "checkpoints -  leaf  lr=1")
    assert lines["'a2'"].endswith("lr=2")
    assert "lr=" not in lines["'b1'"] and "width" not in lines["'b1'"]  # alone in project b


def test_tree_json_is_strict_json_when_a_config_holds_nan_or_infinity(wandb_dir):
    offline_run(wandb_dir, name="odd", config={"x": math.inf, "y": -math.inf, "z": math.nan},
                rows=3)
    text = cli("tree", "--json").stdout
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text.replace(
        '"Infinity"', "").replace('"-Infinity"', "")
    (run,) = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert run["config"] == {"x": "Infinity", "y": "-Infinity", "z": None}  # wandb keeps NaN as null
    assert np.isfinite(list(run["summary"].values())).all()
