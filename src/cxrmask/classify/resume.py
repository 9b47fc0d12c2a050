"""Checkpoint and resume of one classifier cell, so a killed job loses at most one epoch.

A cell on the full study trains for hours; a wall-time limit, a pre-empted
node or an out-of-memory kill used to restart it from epoch 1. Everything that
decides what the next epoch does is saved after each epoch: weights,
optimiser and LR-schedule state, every random generator the loop draws from,
the history so far and the early-stopping state (best score, best weights,
epochs since the best). Restoring all of it makes the resumed run take the
same steps as an uninterrupted one, so on a CPU it ends with identical
predictions.

A checkpoint records what it belongs to (backbone, labels, settings, seed and
the data's shape and labels); one written for anything else is ignored with a
warning, never resumed into a different experiment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxrmask.atomic import atomic_path
from cxrmask.early_stopping import EarlyStopping
from cxrmask.torchutil import cpu_has_bf16

log = logging.getLogger(__name__)

#: Bumped when the checkpoint's layout changes, so an old file is not misread.
FORMAT = 1


@dataclass
class TrainingParts:
    """The live objects whose state a checkpoint holds."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator


@dataclass
class Progress:
    """Where the epoch loop stands: early-stopping state, history, whether it stopped, time spent."""

    stopping: EarlyStopping
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False
    elapsed: float = 0.0

    def as_state(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (the best weights on the CPU)."""
        stopping = self.stopping
        best = None if stopping.state is None else {k: v.detach().cpu() for k, v in stopping.state.items()}
        return {
            "history": self.history,
            "stopped": self.stopped,
            "elapsed": self.elapsed,
            "stopping": {
                "patience": stopping.patience,
                "score": stopping.score,
                "row": stopping.row,
                "state": best,
                "since_best": stopping.since_best,
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        saved = state["stopping"]
        stopping = EarlyStopping(saved["patience"])
        stopping.score, stopping.row, stopping.since_best = saved["score"], saved["row"], saved["since_best"]
        stopping.state = saved["state"]
        return cls(stopping, state["history"], state["stopped"], state["elapsed"])


def run_identity(
    backbone: str, labels: Sequence[str], settings: Any, seed: int, splits: Sequence[Any]
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the cell, its settings and a digest of its data.

    The digest covers each split's image shape and targets (not every pixel,
    which would take seconds on the full cache); a changed subset changes them.
    Whether this CPU computes bf16 is part of it, since ``amp`` means bf16 there
    and fp32 elsewhere.
    """
    digest = hashlib.sha256()
    for split in splits:
        digest.update(str(tuple(split.images.shape)).encode())
        digest.update(split.targets.numpy().tobytes())
        if split.masks is not None:
            digest.update(str(tuple(split.masks.shape)).encode())
    return {
        "format": FORMAT,
        "backbone": backbone,
        "labels": list(labels),
        "settings": settings.model_dump(mode="json"),
        "seed": int(seed),
        "data": digest.hexdigest(),
        # amp's effect on a CPU depends on the host: a checkpoint from another kind of CPU is not resumed
        "cpu_bf16": cpu_has_bf16(),
    }


def _rng_states() -> dict[str, Any]:
    """Every global generator a training step could draw from (dropout, stochastic depth, NumPy)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_progress(
    path: str | os.PathLike[str], identity: dict[str, Any], parts: TrainingParts, progress: Progress
) -> None:
    """Write the full training state atomically: a kill while saving leaves the previous checkpoint."""
    state = {
        "identity": identity,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "generator": parts.generator.get_state(),
        "rng": _rng_states(),
        "progress": progress.as_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_progress(
    path: str | os.PathLike[str], identity: dict[str, Any], parts: TrainingParts, device: torch.device
) -> Progress | None:
    """Restore ``parts`` from a matching checkpoint and return its progress; None when there is none.

    A checkpoint that cannot be read or belongs to another run is set aside
    (logged) and training starts from scratch.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unreadable checkpoint (truncated, old torch) means "start again"
        log.warning("checkpoint %s is unreadable (%s): training from epoch 1", path, exc)
        return None
    if state.get("identity") != identity:
        log.warning("checkpoint %s belongs to another configuration or data: training from epoch 1", path)
        return None
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    parts.generator.set_state(state["generator"].cpu())
    _restore_rng(state["rng"])
    progress = Progress.from_state(state["progress"])
    log.info("resuming from %s after epoch %d", path, len(progress.history))
    return progress
