"""A numpy stand-in for a model being trained: plausible curves, exact resume.

Replace it with your real model. What it shows is what real training needs in a
checkpoint: parameters, optimizer/loop state, the RNG state and the
hyperparameters, so that resuming without overrides reproduces the parent's
values bit for bit, and overriding ``lr`` makes a fork diverge after the resume point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KINDS = ("loss", "accuracy", "oscillation")


def metric_names(n_metrics: int) -> list[str]:
    """``loss/00``, ``accuracy/01``, ``oscillation/02``, ``loss/03``, ..."""
    return [f"{KINDS[i % len(KINDS)]}/{i:02d}" for i in range(n_metrics)]


class FakeModel:
    """Each metric follows a latent progress ``p`` that rises towards 1 at a rate set by ``lr``."""

    def __init__(self, n_metrics: int = 20, lr: float = 0.01, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.lr = lr
        self.iter_num = 0  # iterations done so far, across every resume
        self.names = metric_names(n_metrics)
        self.rate = rng.uniform(0.4, 2.0, n_metrics)  # per-metric speed of learning
        self.scale = rng.uniform(0.5, 3.0, n_metrics)  # loss start / accuracy ceiling / amplitude
        self.period = rng.uniform(20.0, 200.0, n_metrics)  # oscillation period, in iterations
        self.noise = rng.uniform(0.005, 0.03, n_metrics)
        self.progress = np.zeros(n_metrics)
        self.rng = rng  # the noise stream continues from the template draws

    def step(self) -> dict[str, float]:
        """One training iteration; returns this step's metrics."""
        self.iter_num += 1
        drift = self.rng.normal(0.0, 0.002, self.progress.size)
        self.progress = np.clip(self.progress + self.lr * self.rate * (1.0 - self.progress) + drift,
                                0.0, 1.0)
        eps = self.rng.normal(0.0, 1.0, self.progress.size) * self.noise
        p = self.progress
        loss = self.scale * (1.0 - p) + 0.05 + eps * self.scale
        accuracy = np.clip((0.5 + 0.5 * np.tanh(2.0 * self.scale)) * p + eps, 0.0, 1.0)
        wave = np.sin(2.0 * np.pi * self.iter_num / self.period)
        oscillation = self.scale * (1.0 - 0.6 * p) * wave + eps
        kind = np.arange(p.size) % len(KINDS)
        values = np.where(kind == 0, loss, np.where(kind == 1, accuracy, oscillation))
        return dict(zip(self.names, values.tolist()))

    # what state_dict() holds, as runchain.check_state reads it: a checkpoint is data, checked first
    STATE_TYPES = {"model": {key: [float] for key in ("rate", "scale", "period", "noise", "progress")},
                   "optimizer": {"lr": float}, "iter_num": int, "rng": dict}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON-ready lists and ints."""
        return {
            "model": {"rate": self.rate.tolist(), "scale": self.scale.tolist(),
                      "period": self.period.tolist(), "noise": self.noise.tolist(),
                      "progress": self.progress.tolist()},
            "optimizer": {"lr": self.lr},
            "iter_num": self.iter_num,
            "rng": self.rng.bit_generator.state,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], lr: float | None = None) -> FakeModel:
        """Rebuild from ``state_dict()``; ``lr`` overrides the saved learning rate."""
        model = cls.__new__(cls)
        m = state["model"]
        model.rate, model.scale = np.array(m["rate"]), np.array(m["scale"])
        model.period, model.noise = np.array(m["period"]), np.array(m["noise"])
        model.progress = np.array(m["progress"])
        model.names = metric_names(model.rate.size)
        model.lr = state["optimizer"]["lr"] if lr is None else lr
        model.iter_num = state["iter_num"]
        model.rng = np.random.default_rng()
        model.rng.bit_generator.state = state["rng"]
        return model

    def reseed(self, seed: int) -> None:
        """Start a fresh noise stream, so a fork's noise differs from its parent's."""
        self.rng = np.random.default_rng(seed)
