"""The benchmarks' own run files: ``benchmarks/bench_read.py`` writes trees in wandb's run file
format (``make_deep``, and ``bench_report.make_tree`` through it), which runchain then reads
like any other folder. Their figures are taken by running them, not here; this checks that
what they write still reads as the tree they mean, so a moved name or a changed rule fails
here first, not in the middle of a benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

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
