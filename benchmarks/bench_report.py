"""How long `runchain report` takes, how big its file is, and how fast the page is in Chromium.

    python benchmarks/bench_report.py                    # 200 runs x 1,000 steps x 20 metrics
    python benchmarks/bench_report.py --runs 40 --repeats 1 --no-static

The tree is written in wandb's run file format by ``bench_read.write_run`` (from wandb's
own protobuf classes): each run resumes from a random checkpoint of a random earlier
run. With the cache warm, the script times, interleaved and repeated (median):

- read: what the interactive report embeds, read alone: ``source.history(run, keys=every
  metric)`` for every leaf, and for every inner run with rows past its last child;
- report: ``build_report(source)``, which reads the same, thins each run segment and
  writes the page;
- static: ``build_report(source, static=True)``, the pictures report (old default).

Then, in headless Chromium (Playwright driving /usr/bin/chromium), over ``--loads`` loads:

- ready: ``performance.now()`` when the page's first chart has drawn (``runchain.readyAt``);
- hover: 100 mouse moves across the first chart, each followed by reading its tooltip,
  timed inside the page with ``performance.now()``.

With ``--deep N``: ``build_report`` of one chain of N runs and of 4N runs (each run 1,000
steps, cut at step 499, so every run also has rows past its child: a piece of its own),
cache warm, median of ``--repeats``; the ratio shows how the cost grows with depth.

Targets: report / read <= 2; file <= 5 MB; ready <= 1.5 s; 100 hovers <= 1 s; the 4N-run
chain <= 5x the N-run chain.
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
from bench_read import make_deep, write_run  # noqa: E402

import runchain  # noqa: E402
from runchain.core import lineage  # noqa: E402
from runchain.renderers.report import build_report  # noqa: E402

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
SWEEP = """() => {
  const u = runchain.charts.find(c => c), r = u.over.getBoundingClientRect();
  const tip = u.root.closest('.card').querySelector('.chart-tip');
  let text = 0;
  u.over.dispatchEvent(new MouseEvent('mouseenter'));  // as a real mouse does: the card is this chart's
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) {
    const x = r.left + 2 + (r.width - 4) * i / 99, y = r.top + r.height / 2;
    u.over.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
    text += tip.innerText.length;  // forces the tooltip's layout
  }
  return [performance.now() - t0, text];
}"""


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


def read_embedded(source, metrics) -> float:
    """The reads the interactive report makes (see ``report.data.read_pieces``), alone."""
    tree = source.tree
    ends = lineage.leaves(tree) + [r for r, node in tree.nodes.items() if node.children and
                                   node.info.last_step is not None and node.info.last_step >
                                   max(tree.nodes[c].parent_step for c in node.children)]
    t0 = time.perf_counter()
    for end in ends:
        source.history(end, keys=metrics)
    return time.perf_counter() - t0


def browse(path: Path, loads: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright
    ready, hover = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=CHROMIUM)
        for _ in range(loads):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready]", state="attached", timeout=60_000)
            ready.append(page.evaluate("runchain.readyAt") / 1000)
            took, text = page.evaluate(SWEEP)
            assert text > 0, "the tooltip showed nothing"
            hover.append(took / 1000)
            page.close()
        browser.close()
    return ready, hover


def deep_reports(base: Path, depth: int, metrics: int, repeats: int) -> None:
    """``build_report`` of a chain of ``depth`` and of ``4 * depth`` runs, cache warm."""
    took = {}
    for n in (depth, 4 * depth):
        source = runchain.open_source(make_deep(base / f"deep{n}", n, 1000, metrics))
        build_report(source)  # warm the cache
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            build_report(source)
            times.append(time.perf_counter() - t0)
        took[n] = statistics.median(times)
        print(f"report of a chain of {n} runs (1,000 steps each, cut at 499): {took[n]:.2f} s")
    print(f"deep: {4 * depth} runs / {depth} runs = {took[4 * depth] / took[depth]:.1f}x  "
          f"(linear: 4x; target <= 5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loads", type=int, default=5, help="page loads in Chromium")
    parser.add_argument("--no-static", action="store_true", help="skip timing the static report")
    parser.add_argument("--deep", type=int, default=0,
                        help="also time the report of a chain of N and of 4N runs")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-report-"))
    os.environ["RUNCHAIN_CACHE_DIR"] = str(base / "cache")
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        folder = base / "wandb"
        make_tree(folder, args.runs, args.steps, args.metrics)
        source = runchain.open_source(folder)
        metrics = source.metrics()
        leaves = lineage.leaves(source.tree)
        depth = max(n.depth for n in source.tree.nodes.values()) + 1
        read_embedded(source, metrics)  # warm the cache
        print(f"tree: {args.runs} runs x {args.steps} steps x {len(metrics)} metrics, "
              f"{len(leaves)} chains (deepest {depth} runs); "
              f"{runchain.parallel.workers()} cores usable")
        reads, reports, statics = [], [], []
        for _ in range(args.repeats):
            reads.append(read_embedded(source, metrics))
            t0 = time.perf_counter()
            page = build_report(source)
            reports.append(time.perf_counter() - t0)
            if not args.no_static:
                t0 = time.perf_counter()
                static = build_report(source, static=True)
                statics.append(time.perf_counter() - t0)
        read, report = statistics.median(reads), statistics.median(reports)
        out = base / "report.html"
        out.write_text(page, encoding="utf-8")
        size = out.stat().st_size
        print(f"read what the report embeds (every metric, every row): {read:.2f} s")
        print(f"build the interactive report: {report:.2f} s, {size / 1e6:.2f} MB "
              f"(target <= 5 MB)")
        print(f"report / read = {report / read:.2f}  (target <= 2)")
        if statics:
            print(f"build the static report (old default, 4 metrics as pictures): "
                  f"{statistics.median(statics):.2f} s, {len(static) / 1e6:.2f} MB")
        ready, hover = browse(out, args.loads)
        print(f"page ready (first chart drawn), median of {args.loads} loads: "
              f"{statistics.median(ready):.3f} s (max {max(ready):.3f}; target <= 1.5)")
        print(f"100-hover sweep, median of {args.loads}: {statistics.median(hover):.3f} s "
              f"(max {max(hover):.3f}; target <= 1)")
        if args.deep:
            deep_reports(base, args.deep, args.metrics, args.repeats)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
