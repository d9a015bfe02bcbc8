"""
Grow a demo tree of chained runs with fake data, by running do_run.py many times.

    python do_many.py                      # 12 runs, offline unless W&B credentials exist
    python do_many.py --n_runs 50 --workers 2
    python do_many.py --start_run_id <id> --n_runs 5   # grow an existing tree
    python do_many.py --add_tree                        # another tree beside the one there

It ends by printing the tree (runchain tree) and writing an HTML report
(runchain report, --no-report to skip).

After a root run, each new run resumes from a random checkpoint (final or not) of
an earlier run, recent runs more likely, with a varied learning rate. The same
--seed gives the same tree shape and metrics, serial or with --workers.
"""

import argparse
import os
import warnings
import random
import secrets
import string
import subprocess
import sys
from pathlib import Path

import runchain

DO_RUN = Path(__file__).resolve().parent / "do_run.py"

class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and every flag's default."""


parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
parser.add_argument("--n_runs", "--n-runs", type=int, default=12, help="runs to add to the tree")
parser.add_argument("--n_steps", "--n-steps", type=int, default=200, help="steps per run")
parser.add_argument("--n_metrics", "--n-metrics", type=int, default=20, help="metrics per run")
parser.add_argument("--n_checkpoint_steps", "--n-checkpoint-steps", type=int, default=50,
                    help="checkpoint every K steps, and at each run's last step")
parser.add_argument("--start_run_id", "--start-run-id", default=None,
                    help="grow the tree of this existing run instead of starting a new root")
parser.add_argument("--add_tree", "--add-tree", action="store_true",
                    help="start a new tree even though the wandb/ folder holds one of --project already")
parser.add_argument("--project", default="runchain-demo", help="W&B project")
parser.add_argument("--seed", type=int, default=0, help="seed of the tree shape and of every run")
parser.add_argument("--workers", type=int, default=1, help="runs in parallel; a child waits for its parent")
parser.add_argument("--mode", choices=["auto", "online", "offline"], default="auto",
                    help="auto: online when W&B credentials exist, else offline (WANDB_MODE is honoured)")
parser.add_argument("--report", default="runchain-report.html", help="HTML report to write at the end")
parser.add_argument("--no-report", "--no_report", action="store_true", help="skip the report")


def plan_tree(n_runs, seed, has_root):
    """The tree's shape from the seed alone: per run, its parent's index and its flags.

    Index 0 is the root (or the existing --start_run_id run, which is not planned to run).
    """
    rng = random.Random(seed)
    plan = [{"parent": None, "lr": 0.01, "seed": seed}]
    while len(plan) < n_runs + has_root:
        j = len(plan) - 1  # walk back from the newest run; each step back halves the odds
        while j > 0 and rng.random() < 0.5:
            j -= 1
        plan.append({"parent": j, "pick": rng.random(),  # which of the parent's checkpoints
                     "lr": round(0.01 * 2 ** rng.uniform(-1.5, 1.5), 5), "seed": rng.randrange(2**31)})
    return plan


def new_run_id():
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def do_one(args, item, parent_id, mode, log_dir):
    """Run do_run.py for one planned run, forking from a checkpoint its plan picks."""
    cmd = [sys.executable, str(DO_RUN), "--run_id", item["id"], "--project", args.project, "--mode", mode,
           "--n_steps", str(args.n_steps), "--n_checkpoint_steps", str(args.n_checkpoint_steps)]
    if parent_id is None:
        cmd += ["--n_metrics", str(args.n_metrics), "--seed", str(item["seed"])]
    else:
        steps = runchain.checkpoint_steps(parent_id, mode=mode, project=args.project)
        step = steps[int(item["pick"] * len(steps))]
        cmd += ["--checkpoint_artifact", f"{parent_id}@{step}", "--lr", str(item["lr"]), "--seed", str(item["seed"])]
    log = log_dir / f"{item['id']}.log"
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise RuntimeError(f"run {item['id']} failed (exit {proc.returncode}); log {log}:\n  " + "\n  ".join(tail))


def earlier_roots(project):
    """The roots of the trees of ``project`` already in the local wandb/ folder."""
    folder = runchain.default_wandb_dir()
    if not any(folder.glob("*run-*")):
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a damaged run there is not this script's business
        try:
            return list(runchain.open_source(folder, only_project=project).tree.roots)
        except runchain.RunchainError:
            return []


def main():
    args = parser.parse_args()
    try:
        grow(args)
    except KeyboardInterrupt:  # Ctrl-C reached every do_run.py too: each finished its run as failed
        sys.exit(f"do_many.py: interrupted; the runs that finished are kept in "
                 f"{runchain.default_wandb_dir()} (runchain tree shows them, a run cut short as "
                 f"failed); grow the tree on with --start_run_id <run>")


def grow(args):
    try:
        mode = runchain.resolve_mode(args.mode)
        if args.start_run_id:  # fail early on an unknown start run
            runchain.checkpoint_steps(args.start_run_id, mode=mode, project=args.project)
    except runchain.RunchainError as e:
        sys.exit(f"do_many.py: error: {e}")
    roots = [] if args.start_run_id or args.add_tree else earlier_roots(args.project)
    if roots:  # a rerun would silently start a second tree beside the first
        sys.exit(f"do_many.py: error: {runchain.default_wandb_dir()} already holds "
                 f"{'a tree' if len(roots) == 1 else f'{len(roots)} trees'} of project "
                 f"{args.project} (root {', '.join(roots)}); grow it with --start_run_id <run>, "
                 f"start another tree beside it with --add_tree, or pick another --project")
    has_root = args.start_run_id is not None
    plan = plan_tree(args.n_runs, args.seed, has_root)
    for i, item in enumerate(plan):
        item["id"] = args.start_run_id if (has_root and i == 0) else new_run_id()
    log_dir = runchain.default_wandb_dir() / "do_many-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def run_one(i):
        parent = plan[i]["parent"]
        do_one(args, plan[i], None if parent is None else plan[parent]["id"], mode, log_dir)

    # every run starts once its parent has finished; after a failure, what runs finishes
    todo = {i: item["parent"] for i, item in enumerate(plan) if not (has_root and i == 0)}
    try:
        runchain.parent_first(todo, run_one, args.workers, "runs")
    except runchain.ParentFirstError as e:
        sys.exit(f"do_many.py: error: {e.error}")

    # online runs keep their checkpoints on W&B (their local run files do not record them),
    # so the tree is read from the project there; offline runs from their local run files
    where = ["--project", args.project] if mode == "online" else ["--dir", str(runchain.default_wandb_dir())]
    print(f"\n{args.n_runs} new runs in project {args.project} ({mode}); runchain tree {' '.join(where)}:")
    sys.stdout.flush()
    subprocess.run([sys.executable, "-m", "runchain", "tree", *where], check=False)
    if not args.no_report:
        subprocess.run([sys.executable, "-m", "runchain", "report", *where, "-o", args.report], check=False)


if __name__ == "__main__":
    main()
