"""The benchmarks' own run files: ``benchmarks/bench_read.py`` writes trees in wandb's run file
format (``make_deep``, and ``bench_report.make_tree`` through it), which runchain then reads
like any other folder. Their figures are taken by running them, not here; this checks that
what they write still reads as the tree they mean, so a moved name or a changed rule fails
here first, not in the middle of a benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_read  # noqa: E402
import bench_report  # noqa: E402

from runchain import open_source  # noqa: E402


def test_a_deep_chain_written_by_bench_read_reads_as_one_chain_cut_at_each_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    folder = bench_read.make_deep(tmp_path, depth=3, steps=40, metrics=2)
    source = open_source(folder)
    segments = source.chain("deep0002")
    assert [(s.run_id, s.global_offset, s.last_step) for s in segments] == [
        ("deep0000", 0, 19), ("deep0001", 20, 19), ("deep0002", 40, None)]  # the leaf: all of it
    history = source.history("deep0002", keys=["loss/00"])
    assert np.array_equal(history["global_step"], np.arange(80))


def test_a_tree_written_by_bench_report_has_every_run_and_a_parent_for_each_but_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", "")
    bench_report.make_tree(tmp_path / "wandb", runs=6, steps=40, metrics=2)
    tree = open_source(tmp_path / "wandb").tree
    assert sorted(tree.nodes) == [f"run{i:04d}" for i in range(6)]
    assert tree.roots == ("run0000",)
    assert all(tree.nodes[r].parent_run for r in tree.nodes if r != "run0000")


@pytest.mark.slow
def test_bench_online_counts_fewer_requests_for_a_scan_per_run_than_per_key(tmp_path):
    """``bench_online.py`` on a small chain (and a do_many tree): it logs them online into
    the stand-in and prints each case's requests; one scan per run costs 2 a run (and the listing), a scan
    per key 2 a run and metric, a warm read (the disk cache filled) the listing alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_online.py"), "--runs", "2",
                           "--steps", "20", "--metrics", "3", "--latency-ms", "0", "--repeats", "1",
                           "--plain-runs", "3", "--tree-runs", "2"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    requests = {line[:30].strip(): int(line[30:].split()[1]) for line in proc.stdout.splitlines()
                if line.startswith(("chain,", "chain cold", "chain warm", "report ", "tree"))}
    listing = 2  # wandb.Api() checks the key (Viewer), then one Runs page
    assert requests == {"chain, a scan per key": listing + 2 * 2 * 3,
                        "chain, a scan per run": listing + 2 * 2,
                        "chain cold": listing + 2 * 2, "chain warm": listing,
                        "report cold": listing + 2 * 2, "report warm": listing,
                        # do_many's tree of 2 runs: each scanned once, cold
                        "report of the demo tree cold": listing + 2 * 2,
                        "report of the demo tree warm": listing,
                        # wandb checks the server's features, then one page of lineage
                        "tree of the plain runs": listing + 2, "tree warm": listing,
                        # wandb's ServerFeaturesQuery; each run's inputs and outputs, the
                        # producer of each of the 2 inputs (ArtifactCreatedBy, then Run)
                        "tree, run by run": listing + 1 + 3 * 2 + 2 * 2}
