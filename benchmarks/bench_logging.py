"""Overhead of runchain's logging helpers against a plain wandb loop, offline.

    python benchmarks/bench_logging.py [--steps 10000] [--metrics 20] [--repeats 6]

Both loops train the same FakeModel and log the same rows (metrics + global_step)
and the same checkpoints. One goes through runchain.start/log/save_checkpoint as
do_run.py does; the other calls run.log and wandb.Artifact directly. Timed: the
loop plus run.finish() (which flushes). Loops alternate (ABBA), and the ratio of medians
is printed, so machine noise hits both sides alike. Target: ratio <= 1.05.

wandb's service process makes whole-loop wall-clock times noisy on a shared
machine, so the script also times the helper's own per-row work (runchain.log on
a run whose log() does nothing) against a real run.log call, in the same process.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import wandb

import runchain

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # fake_model.py, beside do_run.py
from fake_model import FakeModel  # noqa: E402


def helper_loop(steps, n_metrics, every):
    run = wandb.init(project="bench", mode="offline", config={"n_metrics": n_metrics})
    t0 = time.perf_counter()
    runchain.start(run)
    model = FakeModel(n_metrics)
    for step in range(steps):
        runchain.log(run, model.step(), step=step)
        if (step + 1) % every == 0:
            runchain.save_checkpoint(run, model.state_dict(), step=step)
    run.finish()
    return time.perf_counter() - t0


def plain_loop(steps, n_metrics, every):
    run = wandb.init(project="bench", mode="offline", config={"n_metrics": n_metrics})
    t0 = time.perf_counter()
    run.define_metric("global_step")
    run.define_metric("*", step_metric="global_step")
    model = FakeModel(n_metrics)
    for step in range(steps):
        run.log({**model.step(), "global_step": step}, step=step)
        if (step + 1) % every == 0:
            artifact = wandb.Artifact(f"run-{run.id}-checkpoint", type="checkpoint", metadata={"step": step})
            with artifact.new_file("checkpoint.json") as f:
                f.write(json.dumps({**model.state_dict(), "step": step}))
            run.log_artifact(artifact, aliases=[f"step-{step}", "latest"])
    run.finish()
    return time.perf_counter() - t0


class _NoLogRun:
    """A real run's config and id, with a log() that does nothing: isolates the helper's own cost."""

    def __init__(self, run):
        self.id, self._run = run.id, run

    @property
    def config(self):  # through the real run's property, as runchain.log pays for it
        return self._run.config

    def log(self, data, step=None):
        pass


def per_call_overhead(n_metrics, calls=20_000):
    """(helper's own seconds per call, a real run.log's seconds per call), measured in one run."""
    run = wandb.init(project="bench", mode="offline")
    runchain.start(run)
    rows = [FakeModel(n_metrics).step() for _ in range(100)]
    shell = _NoLogRun(run)
    t0 = time.perf_counter()
    for i in range(calls):
        runchain.log(shell, rows[i % 100], step=i)
    helper_only = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for i in range(calls // 4):
        run.log({**rows[i % 100], "global_step": i}, step=i)
    real_log = (time.perf_counter() - t0) / (calls // 4)
    run.finish()
    return helper_only, real_log


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--checkpoint_every", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
            os.environ[name] = os.path.join(tmp, name.lower())
            os.makedirs(os.environ[name])
        os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
        plain_loop(200, args.metrics, 100)  # warm up wandb's service and imports
        helper, plain = [], []
        for i in range(args.repeats):
            order = (helper_loop, plain_loop) if i % 2 == 0 else (plain_loop, helper_loop)  # ABBA
            for loop in order:
                (helper if loop is helper_loop else plain).append(
                    loop(args.steps, args.metrics, args.checkpoint_every))
            print(f"repeat {i + 1}: helpers {helper[-1]:.2f}s  plain {plain[-1]:.2f}s  "
                  f"ratio {helper[-1] / plain[-1]:.3f}", file=sys.stderr)
        helper_only, real_log = per_call_overhead(args.metrics)
    ratio = statistics.median(helper) / statistics.median(plain)
    print(f"{args.steps} steps x {args.metrics} metrics, {args.repeats} repeats: "
          f"helpers/plain = {ratio:.3f} (median {statistics.median(helper):.2f}s vs "
          f"{statistics.median(plain):.2f}s; target <= 1.05)")
    print(f"per row: runchain.log's own work {helper_only * 1e6:.1f} us vs run.log {real_log * 1e6:.1f} us "
          f"-> {1 + helper_only / real_log:.3f}x (a steadier figure than the wall-clock ratio above)")


if __name__ == "__main__":
    main()
