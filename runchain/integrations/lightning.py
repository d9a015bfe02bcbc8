"""``RunchainCallback`` for Lightning: a ``Trainer`` logging to W&B chains, with one line.

    trainer = L.Trainer(logger=WandbLogger(), callbacks=[ModelCheckpoint(...), RunchainCallback()])

- Each checkpoint file a ``ModelCheckpoint`` saves (``epoch=0-step=20.ckpt``) gets a
  runchain checkpoint artifact ``run-<id>-checkpoint`` and a marker beside it,
  ``epoch=0-step=20.ckpt.runchain.json``.
- ``trainer.fit(model, ckpt_path=...)`` in a new run finds its parent from the marker,
  and records the breadcrumbs (and online the input edge).

Lightning saves a checkpoint in ``on_train_batch_end`` and logs that batch's row just
after, at ``trainer/global_step`` 19 for checkpoint ``step=20``: the checkpoint's step on
the run's axis is 19. The artifact is logged at the next hook, once that row is in, so it
records the row's ``_step`` too; see ``docs/frameworks.md``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import wandb
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger

import runchain

from . import marker as _marker

STEP_METRIC = "trainer/global_step"  # the x axis WandbLogger declares
MARKER_SUFFIX = ".runchain.json"


def _wandb_run(trainer: Any) -> Any:
    """The W&B run the trainer logs to: its ``WandbLogger``'s, else ``wandb.run``."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return wandb.run


class RunchainCallback(Callback):
    """Chain a Lightning ``Trainer``'s runs through its checkpoints. Needs a ``WandbLogger``
    (or a ``wandb.init`` before ``trainer.fit``).

    Args:
        upload: upload each checkpoint file into the artifact; by default (False) it is
            stored by ``file://`` reference, a pointer with a checksum.

    Example:
        >>> trainer = L.Trainer(logger=WandbLogger(), callbacks=[
        ...     ModelCheckpoint(every_n_train_steps=10, save_top_k=-1), RunchainCallback()])  # doctest: +SKIP
        >>> trainer.fit(model, data, ckpt_path="checkpoints/epoch=0-step=20.ckpt")  # doctest: +SKIP
    """

    def __init__(self, upload: bool = False):
        self.upload = upload
        self.run: Any = None  # set on the main process while fitting
        self.pending: int | None = None  # global step of a checkpoint saved, not yet logged

    def on_fit_start(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return  # rank != 0: the main process records everything
        self.run = _wandb_run(trainer)
        if self.run is None:
            raise runchain.RunchainError(
                "RunchainCallback needs a W&B run: pass logger=WandbLogger(...) to the Trainer, "
                "or call wandb.init() before trainer.fit()")
        path = trainer.ckpt_path
        parent = _marker.read_marker(f"{path}{MARKER_SUFFIX}") if path else None
        _marker.attach(self.run, parent, STEP_METRIC, str(path or ""))

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        if self.run is None or not trainer.is_global_zero:
            return
        if self.pending is not None and self.pending != trainer.global_step:
            self._log_pending(trainer)
        self.pending = trainer.global_step  # the file is written after this hook returns

    # The rows of the checkpoint's last batch are in by the next of these hooks.
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._log_pending(trainer)

    def on_train_end(self, trainer, pl_module):
        self._log_pending(trainer)

    def on_exception(self, trainer, pl_module, exception):
        self._log_pending(trainer)

    def teardown(self, trainer, pl_module, stage):
        self._log_pending(trainer)
        self.run = None  # a later fit() attaches again

    def _log_pending(self, trainer) -> None:
        if self.pending is None or self.run is None:
            return
        global_step, self.pending = self.pending, None
        files = _saved_files(trainer, global_step)
        if not files:
            warnings.warn(f"RunchainCallback: no ModelCheckpoint file for global step "
                          f"{global_step}; its runchain checkpoint records the step only")
        if global_step == 0:
            warnings.warn("RunchainCallback: a checkpoint at global step 0 holds no trained "
                          "row; it gets no runchain checkpoint")
            return
        marker = _marker.make(self.run, framework="lightning", framework_step=global_step,
                              step_metric=STEP_METRIC,
                              step=global_step - 1)  # step=20 holds the rows up to 19
        markers = [f"{f}{MARKER_SUFFIX}" for f in files]
        _marker.save(self.run, marker, paths=files + markers, marker_paths=markers,
                     upload=self.upload)


def _saved_files(trainer: Any, global_step: int) -> list[str]:
    """The checkpoint files the trainer's ``ModelCheckpoint`` callbacks saved at ``global_step``.

    ModelCheckpoint keeps the path of its newest file only in ``_last_checkpoint_saved``
    (its loggers get it through ``after_save_checkpoint``, callbacks are not told).
    """
    files = []
    for callback in trainer.checkpoint_callbacks:
        path = getattr(callback, "_last_checkpoint_saved", "")
        if path and getattr(callback, "_last_global_step_saved", None) == global_step \
                and os.path.isfile(path):
            files.append(str(Path(path)))
    return list(dict.fromkeys(files))
