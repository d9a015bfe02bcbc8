"""Watching a folder: ``runchain report --watch`` and ``runchain tree --watch`` redraw when a run
logs or starts. Real offline runs, the real CLI in a subprocess (what is tested is a process
that runs until Ctrl-C or SIGTERM), started by the ``processes`` fixture, which ends it
whatever happens; every wait is a bounded number of polls, never a time limit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import cli, do_run, run_file
from runchain.commands.watch import signature, watch

POLLS = 1200  # rounds of 0.1 s at most, per wait


def _until(found, what: str):
    for _ in range(POLLS):
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never saw {what}")


def _start(processes, *args: str, out: Path) -> subprocess.Popen:
    with out.open("w") as stdout:
        return processes.start([sys.executable, "-m", "runchain", *args], stdout=stdout,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _stop(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "stopped watching", err
    return err


def _report_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="runchain-data">(.*?)</script>', text, re.S)[1])


def _report_runs(path: Path) -> list[str]:
    return [run["id"] for run in _report_data(path)["runs"]] if path.exists() else []


def test_watch_redraws_once_per_change_of_the_run_files(wandb_dir):
    root = do_run("--n_steps", "10", "--n_checkpoint_steps", "5", "--n_metrics", "2")
    path = run_file(wandb_dir, root)
    redraws: list[frozenset] = []
    grown = []

    def sleep(_):  # between looks: the run file grows once, in the second pause
        if len(grown) == 1:
            with path.open("ab") as f:
                f.write(b"\0" * 16)
        grown.append(1)

    n = watch(wandb_dir, lambda: redraws.append(signature(wandb_dir)), 0.0, rounds=4, sleep=sleep)
    assert n == 2 and len(redraws) == 2 and redraws[0] != redraws[1]


def test_report_and_tree_watch_show_a_new_run_and_end_on_ctrl_c(wandb_dir, tmp_path, processes):
    root = do_run("--n_steps", "20", "--n_checkpoint_steps", "10", "--n_metrics", "2")
    report = tmp_path / "live.html"
    reporting = _start(processes, "report", "--watch", "--interval", "0.2", "-o", str(report),
                       "--dir", str(wandb_dir), out=tmp_path / "report.out")
    tree_out = tmp_path / "tree.out"
    treeing = _start(processes, "tree", "--watch", "--interval", "0.2", "--dir", str(wandb_dir),
                     out=tree_out)
    try:
        assert _until(lambda: _report_runs(report) == [root], "the first report")
        data = _report_data(report)
        assert data["reload"] == 1.0 and data["written"]  # the page reloads itself
        assert "default-src 'none'" in report.read_text()  # and still asks nothing of the network
        _until(lambda: root in tree_out.read_text(), "the first tree")

        child = do_run("--checkpoint_artifact", f"{root}@9", "--n_steps", "5")
        assert _until(lambda: _report_runs(report) == [root, child], "the new run in the report")
        _until(lambda: re.search(rf"^\s+{child} .*from {root}@9", tree_out.read_text(), re.M),
               "the new run in the tree")
    finally:
        errors = [_stop(reporting), _stop(treeing)]
    assert tree_out.read_text().count("-- ") >= 2  # drawn again, under a new time line
    assert all("error" not in e for e in errors)
    data = _report_data(report)  # written once more as it stopped: a page that stays put
    assert data["reload"] is None and [run["id"] for run in data["runs"]] == [root, child]
    assert (tmp_path / "report.out").read_text().splitlines()[-1] == f"report: {report.resolve()}"


def test_sigterm_ends_report_watch_like_ctrl_c_with_a_page_that_stays_put(wandb_dir, tmp_path,
                                                                          processes):
    root = do_run("--n_steps", "10", "--n_checkpoint_steps", "5", "--n_metrics", "2")
    report = tmp_path / "live.html"
    proc = _start(processes, "report", "--watch", "--interval", "0.2", "-o", str(report),
                  "--dir", str(wandb_dir), out=tmp_path / "report.out")
    try:
        _until(lambda: _report_runs(report) == [root], "the first report")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "stopped watching"
    assert _report_data(report)["reload"] is None


def test_watch_refuses_a_w_and_b_project(wandb_dir):
    proc = cli("report", "--watch", "--project", "ent/proj", check=False)
    assert proc.returncode == 2 and "local folder" in proc.stderr
