"""``RunchainCallback`` for the Hugging Face ``Trainer``: its runs chain, with one line.

    trainer = Trainer(model, args, train_dataset=data, callbacks=[RunchainCallback()])  # report_to="wandb"

- Each checkpoint the Trainer saves (``checkpoint-<N>/``) gets a runchain checkpoint
  artifact ``run-<id>-checkpoint`` and a marker ``checkpoint-<N>/runchain.json``.
- ``trainer.train(resume_from_checkpoint=...)`` in a new run finds its parent from the
  marker, and records the breadcrumbs (and online the input edge).

The Trainer does not tell callbacks which folder it resumed from, so the marker also
travels in the folder's ``trainer_state.json`` (``stateful_callbacks``), which the Trainer
loads on resume. See ``docs/frameworks.md``.
"""

from __future__ import annotations

import os
from typing import Any

import wandb
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

import runchain

from . import marker as _marker

STEP_METRIC = "train/global_step"  # the x axis WandbCallback declares
MARKER_FILE = "runchain.json"


class RunchainCallback(TrainerCallback, ExportableState):
    """Chain a ``Trainer``'s runs through its checkpoints. Needs ``report_to="wandb"``
    (or a ``wandb.init`` before ``trainer.train``).

    Args:
        upload: upload each ``checkpoint-<N>/`` folder into the artifact; by default
            (False) it is stored by ``file://`` reference, a pointer with checksums.

    Example:
        >>> trainer = Trainer(model, args, train_dataset=data,
        ...                   callbacks=[RunchainCallback()])  # doctest: +SKIP
        >>> trainer.train(resume_from_checkpoint="out-a/checkpoint-20")  # doctest: +SKIP
    """

    def __init__(self, upload: bool = False):
        self.upload = upload
        self.run: Any = None  # set on the main process while training
        self.saving: dict[str, Any] | None = None  # the marker of the checkpoint being saved
        self.global_step = 0  # the Trainer's, at the last on_step_end (state() is not given it)

    def state(self) -> dict[str, Any]:
        """What the Trainer stores in ``trainer_state.json``: the marker of this checkpoint.

        The Trainer asks while it saves, after it logged the rows up to this step and
        before ``on_save``, so the last row trained into the checkpoint is known here. The
        Trainer logs step N's row before it saves at N: the checkpoint's step is N.
        """
        self.saving = None
        if self.run is not None:
            self.saving = _marker.make(self.run, framework="transformers",
                                       framework_step=self.global_step,
                                       step_metric=STEP_METRIC, step=self.global_step)
        return {"args": {"upload": self.upload}, "attributes": {"saving": self.saving}}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return  # rank != 0: the main process records everything
        if wandb.run is None:
            raise runchain.RunchainError(
                "RunchainCallback needs a W&B run: set report_to='wandb' in TrainingArguments "
                "(and keep RunchainCallback after it), or call wandb.init() before trainer.train()")
        self.run = wandb.run
        # On resume the Trainer loaded trainer_state.json from the checkpoint folder.
        saved = (state.stateful_callbacks or {}).get(type(self).__name__) or {}
        parent = saved.get("attributes", {}).get("saving") if state.global_step else None
        where = f"checkpoint-{state.global_step}" if state.global_step else ""
        _marker.attach(self.run, parent, STEP_METRIC, where)

    def on_step_end(self, args, state, control, **kwargs):
        self.global_step = state.global_step

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self.run is None:
            return
        marker = self.saving
        if marker is None or marker["framework_step"] != state.global_step:
            self.global_step = state.global_step
            self.state()  # saved without trainer_state.json (args.should_save off)
            marker = self.saving
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        _marker.save(self.run, marker, paths=[folder],
                     marker_paths=[os.path.join(folder, MARKER_FILE)], upload=self.upload)
        self.saving = None

    def on_train_end(self, args, state, control, **kwargs):
        self.run = None  # a later train() call attaches again

