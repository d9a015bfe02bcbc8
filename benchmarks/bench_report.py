"""How long `runchain report` takes against reading the stitched histories it draws.

    python benchmarks/bench_report.py                    # 200 runs x 1,000 steps x 20 metrics
    python benchmarks/bench_report.py --runs 40 --repeats 1

The tree is written in wandb's run file format by ``bench_read.write_run`` (from wandb's
own protobuf classes): each run resumes from a random checkpoint of a random earlier
run. With the cache warm, the script times, interleaved and repeated (median):

- read: ``source.history(leaf, keys=metrics, samples=...)`` for every chain the report
  draws, which is what the report reads (and, for scale, every chain read whole);
- report: ``build_report(source)``, which reads the same and draws every picture.

Target: report / read <= 3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_read import write_run  # noqa: E402

import runchain  # noqa: E402
from runchain import lineage  # noqa: E402
from runchain.report import SAMPLES, build_report, default_metrics  # noqa: E402


def make_tree(folder: Path, runs: int, steps: int, metrics: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    every = steps // 4
    crumbs = {}
    for i in range(runs):
        run_id = f"run{i:04d}"
        parent = None
        if i:
            p = f"run{int(rng.integers(max(0, i - 8), i)):04d}"  # recent runs, so chains get deep
            cut = int(rng.integers(1, 5)) * every - 1
            parent = (p, cut, crumbs[p])
        crumbs[run_id] = write_run(folder, run_id, parent, steps, metrics, every, rng)


def read_all(source, leaves, metrics, samples=SAMPLES) -> float:
    t0 = time.perf_counter()
    for leaf in leaves:
        source.history(leaf, keys=metrics, samples=samples)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-report-"))
    os.environ["RUNCHAIN_CACHE_DIR"] = str(base / "cache")
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        folder = base / "wandb"
        make_tree(folder, args.runs, args.steps, args.metrics)
        source = runchain.open_source(folder)
        leaves = lineage.leaves(source.tree)
        metrics = default_metrics(source, leaves[0])
        wanted = leaves  # the report draws every leaf's chain, and the fans reuse them
        depth = max(n.depth for n in source.tree.nodes.values()) + 1
        read_all(source, wanted, metrics)  # warm the cache
        print(f"tree: {args.runs} runs x {args.steps} steps x {args.metrics} metrics, "
              f"{len(leaves)} chains (deepest {depth} runs), metrics drawn {metrics}; "
              f"{runchain.parallel.workers()} cores usable")
        reads, fulls, reports = [], [], []
        for _ in range(args.repeats):
            reads.append(read_all(source, wanted, metrics))
            fulls.append(read_all(source, wanted, None, None))
            t0 = time.perf_counter()
            page = build_report(source)
            reports.append(time.perf_counter() - t0)
        read, full = statistics.median(reads), statistics.median(fulls)
        report = statistics.median(reports)
        print(f"read what the report draws (4 metrics, {SAMPLES} samples): {read:.2f} s")
        print(f"read every chain whole (all metrics, all rows):    {full:.2f} s")
        print(f"build the report:  {report:.2f} s  ({len(page) / 1e6:.1f} MB of HTML)")
        print(f"report / read what it draws = {report / read:.2f}  (target <= 3)")
        print(f"report / read every chain whole = {report / full:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
