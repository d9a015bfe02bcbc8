"""
A training run that W&B can chain: it can resume or fork from any checkpoint of
an earlier run, and every piece lines up on one global step axis.

Start a root run, then fork it from its checkpoint at step 99 with another lr:

    python do_run.py --n_steps 200
    python do_run.py --checkpoint_artifact <run_id>@99 --lr 0.03
    python do_run.py --run_id <run_id> --checkpoint_artifact <run_id>@99   # resume it in place

To chain your own training, copy this file and swap FakeModel for your model.
Each runchain call is one line; its comment names the chaining rule it satisfies.
Offline (no W&B credentials, or --mode offline) it writes real runs under ./wandb.
"""

import argparse
import sys

import wandb
from tqdm import tqdm

import runchain
from fake_model import FakeModel  # the numpy stand-in beside this file: swap in your model

# -----------------------------------------------------------------------------
# config: defaults first; on resume the checkpoint overwrites them, then explicit flags win
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--project", default="runchain-demo", help="W&B project")
parser.add_argument("--n_steps", "--n-steps", type=int, default=200, help="steps this run trains for")
parser.add_argument("--n_checkpoint_steps", "--n-checkpoint-steps", type=int, default=50,
                    help="save a checkpoint every K steps, and at the last step")
parser.add_argument("--checkpoint_artifact", "--resume-from", default=None,
                    help="resume from: <run_id>@<step>, <run_id> (latest), "
                         "run-<id>-checkpoint:<alias|vN>, or entity/project/run-<id>-checkpoint:<alias|vN>")
parser.add_argument("--n_metrics", "--n-metrics", type=int, default=None,
                    help="metrics to log (default 20; a resumed run keeps its checkpoint's)")
parser.add_argument("--lr", type=float, default=None,
                    help="learning rate (default 0.01; a resumed run keeps its checkpoint's unless given)")
parser.add_argument("--seed", type=int, default=None,
                    help="seed (default 0; a resumed run continues its checkpoint's RNG unless given)")
parser.add_argument("--mode", choices=["auto", "online", "offline"], default="auto",
                    help="auto: online when W&B credentials exist, else offline (WANDB_MODE is honoured)")
parser.add_argument("--run_id", "--run-id", default=None, help="W&B run id (default: a new random one)")
parser.add_argument("--name", default=None,
                    help="run name shown by W&B (default: 'root', '<parent>@<step>' for a fork, "
                         "the run's own name when resumed in place)")
parser.add_argument("--tags", nargs="*", default=[], help="W&B tags of the run")
parser.add_argument("--rewind", action="store_true",
                    help="resuming in place (--run_id = the checkpoint's run) a run that logged past "
                         "the checkpoint: rewind it on W&B (resume_from, if your server offers it) "
                         "instead of stopping")
args = parser.parse_args()
defaults = {"n_metrics": 20, "lr": 0.01, "seed": 0}
STATE_TYPES = {"config": {"n_metrics": int, "lr": float, "seed": int}, **FakeModel.STATE_TYPES}  # to resume from
# -----------------------------------------------------------------------------

try:
    mode = runchain.resolve_mode(args.mode)
    checkpoint = None
    if args.checkpoint_artifact is not None:  # "" too (an unset $CKPT): an error, not a new root
        # input edge, part 1: resolve the checkpoint before wandb.init, so a bad reference fails before any run exists
        checkpoint = runchain.load_checkpoint(args.checkpoint_artifact, mode=mode, project=args.project)
        # checkpoint.json is data from another run: check it holds the state we restore, before any run starts
        runchain.check_state(checkpoint, STATE_TYPES, hint="do_run.py resumes only from checkpoints do_run.py saved")
    # resume in place (--run_id is the checkpoint's run): W&B's resume="must", a rewind, or a stop that loses no row
    init_args = runchain.resume_args(checkpoint, args.run_id, mode=mode, rewind=args.rewind)
except runchain.RunchainError as e:
    sys.exit(f"do_run.py: error: {e}")

if checkpoint is None:
    config = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in defaults.items()}
    model = FakeModel(config["n_metrics"], lr=config["lr"], seed=config["seed"])
else:
    # exact resume: hyperparameters, parameters and RNG all come from the checkpoint
    config = dict(checkpoint.state["config"])
    if args.n_metrics not in (None, config["n_metrics"]):
        sys.exit(f"do_run.py: error: --n_metrics {args.n_metrics} differs from the checkpoint's "
                 f"{config['n_metrics']}; a resumed model keeps its shape, so drop the flag")
    try:
        model = FakeModel.from_state_dict(checkpoint.state, lr=args.lr)
    except (TypeError, ValueError) as e:  # the right types, but not a state FakeModel can take
        sys.exit(f"do_run.py: error: checkpoint {checkpoint.ref} holds a model state do_run.py "
                 f"cannot restore ({e}); resume from a checkpoint do_run.py saved")
    config["lr"] = model.lr
    if args.seed is not None:  # a new seed gives the fork its own noise
        model.reseed(args.seed)
        config["seed"] = args.seed
config.update(n_steps=args.n_steps, n_checkpoint_steps=args.n_checkpoint_steps)
in_place = checkpoint is not None and args.run_id == checkpoint.run_id
# a run resumed in place keeps its name (a name given to wandb.init would rename it on W&B)
name = args.name or ("root" if checkpoint is None else None if in_place else f"{checkpoint.run_id}@{checkpoint.step}")

try:
    run = wandb.init(project=args.project, name=name, tags=args.tags, config=config, mode=mode,
                     job_type="train", **init_args)
except wandb.errors.Error as e:  # W&B unreachable, a bad key, a rewind the server does not offer
    sys.exit(f"do_run.py: error: wandb.init failed: {' '.join(str(e).split())}")
try:
    crumbs = runchain.start(run, checkpoint)  # input edge: use_artifact after wandb.init (online) + breadcrumbs in run.config
except runchain.RunchainError as e:
    sys.exit(f"do_run.py: error: {e}")  # start() already finished the run as failed
print(f"run {run.id}: mode {mode}, global steps from {crumbs.global_offset}"
      + (f", resumed from {checkpoint.ref}" if checkpoint else ", a root run"))

saved = []
first = checkpoint.step + 1 if in_place else 0  # resumed in place: local steps go on
for step in tqdm(range(first, first + args.n_steps), desc=f"run {run.id}", unit="step", file=sys.stderr):
    metrics = model.step()
    runchain.log(run, metrics, step=step)  # every row carries global_step = global_offset + local step
    if (step + 1) % args.n_checkpoint_steps == 0 or step == first + args.n_steps - 1:
        state = {**model.state_dict(), "config": config}
        runchain.save_checkpoint(run, state, step=step)  # output edge: run-<id>-checkpoint, aliases step-<step> and latest
        saved.append(step)

print(f"run {run.id}: saved checkpoints at steps {saved} (resume with --checkpoint_artifact {run.id}@<step>)")
run.finish()
