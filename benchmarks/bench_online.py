"""Requests and seconds of runchain's W&B reads, on the HTTP stand-in of W&B.

    python benchmarks/bench_online.py                       # 10 runs x 2,000 steps x 20 metrics, 100 ms
    python benchmarks/bench_online.py --runs 4 --steps 200 --latency-ms 50 --repeats 1

On W&B every request costs 100-300 ms, so the request count is the speed. The stand-in
(``tests/wandb_server.py``) holds each request ``--latency-ms`` before answering and counts
what it served (``GET /_requests``). Unheld, ``do_run.py --mode online`` logs one chain of
``--runs`` runs into it, each resumed from the last checkpoint of the one before, and one
process of plain wandb code logs ``--plain-runs`` runs into project ``plain``: each logs
30 rows and 3 checkpoints (metadata ``{"step": N}``), and each after the first
``use_artifact``s a checkpoint of a random earlier run, and ``do_many.py --mode online``
grows its demo tree of ``--tree-runs`` runs (200 steps x 20 metrics) into project
``demo``. Then, held,
interleaved and repeated (median seconds; requests of the last repeat), each read opening
the project afresh (``open_project``: the listing):

- chain, a scan per key: ``source.history(leaf, keys=every metric)`` with one keyed scan
  per run and metric (``project_history.WIDE_RATIO = 0``, runchain's only route before),
  the disk cache off;
- chain, a scan per run: the same, one scan of every column per run, the cache off (a
  running run's route);
- chain cold / warm: the same with the disk cache of W&B histories empty, then filled;
- report cold / warm: ``build_report`` of the project (every metric, and ``_timestamp``
  for its time axes), the cache empty, then filled;
- report of the demo tree cold / warm: the same of project ``demo``, a tree with branches;
- tree, run by run: ``open_project("plain").tree`` as read where the server refuses the
  paged lineage query (runchain's only route before);
- tree of the plain runs: ``open_project("plain").tree``, its lineage in pages, the cache
  empty; tree warm: the same, the walks of those runs (which ended) kept.

Targets (issue 34, at 100 ms a request): a tree of 200 plain runs: <= 12 requests, <= 3 s;
a chain of 10 runs x 20 metrics, cold: <= 2 requests per run plus the listing, warm: <= 2
requests in all and <= 1 s; a report of a 12-run do_many tree, cold: <= 40 requests, warm:
<= 2. A scan costs 2 requests a run
(wandb-core opens it, then reads a page; the last step is the listing's): docs/chains.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from wandb_server import serving  # noqa: E402


PLAIN = r"""
import json, os, random, sys, tempfile, wandb
random.seed(0)
made = []
for i in range(int(sys.argv[1])):
    run = wandb.init(project="plain", name=f"plain-{i}")
    if made:  # the input edge: a checkpoint of an earlier run
        run.use_artifact(f"ck-{random.choice(made)}:step-{random.choice([9, 19, 29])}")
    for step in range(30):
        run.log({"loss": 1.0 / (step + 1)})
        if step % 10 == 9:
            art = wandb.Artifact(f"ck-{run.id}", type="checkpoint", metadata={"step": step})
            path = os.path.join(tempfile.mkdtemp(), "weights.bin")
            with open(path, "w") as f:
                f.write(f"{run.id} {step}")
            art.add_file(path)
            run.log_artifact(art, aliases=[f"step-{step}"])
    made.append(run.id)
    run.finish()
print(json.dumps(made))
"""


def asked(base_url: str) -> dict:
    with urllib.request.urlopen(base_url + "/_requests") as response:
        return json.load(response)


def since(before: dict, after: dict) -> tuple[int, dict[str, int]]:
    ops = {k: v - before["by_operation"].get(k, 0) for k, v in after["by_operation"].items()}
    return after["total"] - before["total"], {k: v for k, v in sorted(ops.items()) if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--plain-runs", type=int, default=200, help="runs of the plain tree (0: none)")
    parser.add_argument("--tree-runs", type=int, default=12, help="runs of the demo tree (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench_online_"))
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        (base / name.lower()).mkdir()
        os.environ[name] = str(base / name.lower())
    os.environ.update(WANDB_SILENT="true", TQDM_DISABLE="1", NETRC=str(base / "no-netrc"),
                      RUNCHAIN_CACHE_DIR=str(base / "runchain_cache"), WANDB_ERROR_REPORTING="false")
    os.environ.pop("WANDB_SERVICE", None)
    os.chdir(base)
    with serving(base / "server") as server:  # unheld while the runs are logged
        os.environ.update(server.env({}))
        t0, parent = time.perf_counter(), None
        for i in range(args.runs):  # one chain, each run from the last checkpoint of the one before
            run_id = f"bench{i:04d}"
            subprocess.run([sys.executable, str(ROOT / "do_run.py"), "--mode", "online",
                            "--project", "bench", "--run_id", run_id, "--n_steps", str(args.steps),
                            "--n_checkpoint_steps", str(args.steps), "--n_metrics", str(args.metrics),
                            "--seed", str(i), *(["--checkpoint_artifact", f"{parent}@{args.steps - 1}"]
                                                if parent else [])],
                           check=True, capture_output=True, timeout=1800)
            parent = run_id
        print(f"logged {args.runs} runs x {args.steps} steps x {args.metrics} metrics online in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        if args.plain_runs:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", PLAIN, str(args.plain_runs)], check=True,
                           capture_output=True, timeout=7200)
            print(f"logged {args.plain_runs} plain runs online in {time.perf_counter() - t0:.0f} s",
                  flush=True)
        if args.tree_runs:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "do_many.py"), "--mode", "online",
                            "--project", "demo", "--n_runs", str(args.tree_runs), "--workers", "2",
                            "--no-report"], check=True, capture_output=True, timeout=3600)
            print(f"logged a demo tree of {args.tree_runs} runs online in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        server.hold(args.latency_ms)
        print(f"{args.latency_ms:g} ms a request from now on")

        from runchain.readers import from_project, project_history
        from runchain.readers.from_project import open_project
        from runchain.renderers.report import build_report

        def read_chain() -> None:
            source = open_project("bench")
            source.history(parent, keys=source.metrics())

        def case(read, cache: str, ratio: int | None = None, empty: bool = False):
            def run_case():
                if empty:
                    shutil.rmtree(cache, ignore_errors=True)
                os.environ["RUNCHAIN_CACHE_DIR"] = cache
                project_history.WIDE_RATIO = wide if ratio is None else ratio
                try:
                    read()
                finally:
                    project_history.WIDE_RATIO = wide
            return run_case

        wide, chains, reports = project_history.WIDE_RATIO, str(base / "chains"), str(base / "reports")
        cases = {"chain, a scan per key": case(read_chain, "", ratio=0),
                 "chain, a scan per run": case(read_chain, ""),
                 "chain cold": case(read_chain, chains, empty=True),
                 "chain warm": case(read_chain, chains),
                 "report cold": case(lambda: build_report(open_project("bench")), reports, empty=True),
                 "report warm": case(lambda: build_report(open_project("bench")), reports)}
        if args.tree_runs:
            demos = str(base / "demo_reports")
            cases["report of the demo tree cold"] = case(
                lambda: build_report(open_project("demo")), demos, empty=True)
            cases["report of the demo tree warm"] = case(
                lambda: build_report(open_project("demo")), demos)
        if args.plain_runs:
            def run_by_run():  # as a server that refuses the paged lineage is read
                def refuse(*_):
                    raise from_project.LineageRefused("the run-by-run route, measured")
                paged, from_project.lineage_pages = from_project.lineage_pages, refuse
                try:
                    return open_project("plain").tree
                finally:
                    from_project.lineage_pages = paged
            trees = str(base / "trees")
            cases["tree, run by run"] = case(run_by_run, "")
            cases["tree of the plain runs"] = case(lambda: open_project("plain").tree, trees, empty=True)
            cases["tree warm"] = case(lambda: open_project("plain").tree, trees)
        times: dict[str, list[float]] = {name: [] for name in cases}
        counts: dict[str, tuple[int, dict[str, int]]] = {}
        for _ in range(args.repeats):
            for name, case in cases.items():
                before = asked(server.base_url)
                start = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - start)
                counts[name] = since(before, asked(server.base_url))
        print(f"{'case':30} {'seconds':>8} {'requests':>9}  by operation")
        for name in cases:
            total, ops = counts[name]
            print(f"{name:30} {statistics.median(times[name]):8.2f} {total:9d}  {ops}")
        per_key, per_run = counts["chain, a scan per key"][0], counts["chain, a scan per run"][0]
        med = {name: statistics.median(t) for name, t in times.items()}
        print(f"chain: requests, a scan per key / a scan per run = {per_key / per_run:.1f}x; "
              f"seconds {med['chain, a scan per key'] / med['chain, a scan per run']:.1f}x; "
              f"cold / warm {med['chain cold'] / med['chain warm']:.1f}x")


if __name__ == "__main__":
    main()
