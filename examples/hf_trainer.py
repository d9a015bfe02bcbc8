"""
A Hugging Face Trainer script that reports to W&B, chained by one added callback.

Train a root run, then resume one of its checkpoints in a new run (a child), and fork
the same checkpoint again with another learning rate:

    python examples/hf_trainer.py --output_dir out-a
    python examples/hf_trainer.py --output_dir out-b --resume_from out-a/checkpoint-20
    python examples/hf_trainer.py --output_dir out-c --resume_from out-a/checkpoint-20 --data_seed 1
    runchain tree

The model is a tiny GPT-2 built from a config (nothing is downloaded), trained on random
tokens on the CPU. Without W&B credentials, set WANDB_MODE=offline.
"""

import argparse
import os

import torch
import wandb
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from runchain.integrations.transformers import RunchainCallback

# -----------------------------------------------------------------------------
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output_dir", default="out", help="where the Trainer saves checkpoint-<N>/")
parser.add_argument("--resume_from", default=None, help="a checkpoint-<N>/ folder to resume from")
parser.add_argument("--max_steps", type=int, default=40, help="optimizer steps in all (the resumed count too)")
parser.add_argument("--save_steps", type=int, default=10, help="save a checkpoint every K steps")
parser.add_argument("--logging_steps", type=int, default=5, help="log a row every K steps")
parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (a resume restores the checkpoint's schedule)")
parser.add_argument("--data_seed", type=int, default=0, help="seed of the random tokens; another one makes a fork diverge")
parser.add_argument("--project", default="runchain-hf", help="W&B project (WANDB_PROJECT)")
parser.add_argument("--upload", action="store_true", help="upload checkpoints instead of storing references")
args = parser.parse_args()
# -----------------------------------------------------------------------------

os.environ.setdefault("WANDB_PROJECT", args.project)  # WandbCallback reads its project here

torch.manual_seed(0)  # the same initial weights in every run (a resume loads the checkpoint's)
config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=100)
model = GPT2LMHeadModel(config)
tokens = torch.randint(0, config.vocab_size, (64, 16), generator=torch.Generator().manual_seed(args.data_seed))
data = [{"input_ids": t, "labels": t} for t in tokens]

training_args = TrainingArguments(
    output_dir=args.output_dir, max_steps=args.max_steps, per_device_train_batch_size=8,
    learning_rate=args.lr, logging_steps=args.logging_steps, save_steps=args.save_steps,
    report_to="wandb", use_cpu=True, seed=0, disable_tqdm=True)
trainer = Trainer(model=model, args=training_args, train_dataset=data,
                  callbacks=[RunchainCallback(upload=args.upload)])  # the one added line
trainer.train(resume_from_checkpoint=args.resume_from)
print(f"run {wandb.run.id}: trained to global step {trainer.state.global_step}")
wandb.finish()
