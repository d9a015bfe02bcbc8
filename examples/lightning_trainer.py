"""
A Lightning script that logs to W&B with WandbLogger, chained by one added callback.

Train a root run, resume one of its checkpoints in a new run (a child), and fork the
same checkpoint again on other data:

    python examples/lightning_trainer.py --ckpt_dir ckpt-a
    python examples/lightning_trainer.py --ckpt_dir ckpt-b --ckpt_path "ckpt-a/epoch=1-step=20.ckpt"
    python examples/lightning_trainer.py --ckpt_dir ckpt-c --ckpt_path "ckpt-a/epoch=1-step=20.ckpt" --data_seed 1
    runchain tree --dir wandb

The model is a two-layer MLP on random tensors, on the CPU. WandbLogger writes its runs
to ./wandb (its save_dir), so point runchain there. Without W&B credentials, set
WANDB_MODE=offline.
"""

import argparse

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from runchain.integrations.lightning import RunchainCallback

# -----------------------------------------------------------------------------
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--ckpt_dir", default="checkpoints", help="where ModelCheckpoint saves")
parser.add_argument("--ckpt_path", default=None, help="a .ckpt file to resume from")
parser.add_argument("--max_steps", type=int, default=40, help="optimizer steps in all (the resumed count too)")
parser.add_argument("--save_steps", type=int, default=10, help="save a checkpoint every K steps")
parser.add_argument("--log_steps", type=int, default=1, help="log a row every K steps")
parser.add_argument("--data_seed", type=int, default=0, help="seed of the random data; another one makes a fork diverge")
parser.add_argument("--project", default="runchain-lightning", help="W&B project")
parser.add_argument("--run_id", default=None, help="W&B run id; an existing one resumes that run in place")
parser.add_argument("--log_model", default=False, help='WandbLogger\'s log_model ("all": every checkpoint as model-<id>)')
parser.add_argument("--upload", action="store_true", help="upload checkpoints instead of storing references")
args = parser.parse_args()
# -----------------------------------------------------------------------------


class TwoLayer(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


L.seed_everything(0, verbose=False)  # the same initial weights in every run (a resume loads the checkpoint's)
model = TwoLayer()
g = torch.Generator().manual_seed(args.data_seed)
x = torch.randn(80, 8, generator=g)
data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True).sin()), batch_size=8)  # 10 batches an epoch

trainer = L.Trainer(
    max_steps=args.max_steps, logger=WandbLogger(project=args.project, id=args.run_id, log_model=args.log_model), log_every_n_steps=args.log_steps,
    callbacks=[ModelCheckpoint(dirpath=args.ckpt_dir, every_n_train_steps=args.save_steps, save_top_k=-1),
               RunchainCallback(upload=args.upload)],  # the one added line
    accelerator="cpu", enable_progress_bar=False, enable_model_summary=False)
trainer.fit(model, data, ckpt_path=args.ckpt_path)
run = trainer.logger.experiment
print(f"run {run.id}: trained to global step {trainer.global_step}")
run.finish()
