"""Early stopping, checkpoints and resume for both training loops (segmenter fine-tuning, classifier cells).

A fine-tuning or a classifier cell on the full study trains for hours; a
wall-time limit, a pre-empted node or an out-of-memory kill must cost at most
one epoch. After each epoch everything that decides what the next one does is
saved: the weights, the optimiser (and LR schedule), every random generator
the loop draws from (the loop's own, torch's, CUDA's, NumPy's and Python's
global ones), the history so far and the early-stopping state (best score,
best weights, epochs since the best). Restoring all of it makes the resumed
run take the same steps as an uninterrupted one, so on a CPU it ends with
identical weights and predictions.

One rule for both loops, so they cannot drift apart:

- **File**: :func:`resume_path`, ``<output stem>.resume.pt`` beside the job's
  main output; not a declared output, so Snakemake keeps it when a job dies,
  and the stage removes it once its outputs are written.
- **Identity**: :func:`identity` records what the checkpoint belongs to (the
  loop's settings, seed, data digest) and whether this CPU computes bf16,
  since ``amp`` means bf16 there and fp32 elsewhere: a run moved to another
  kind of CPU does not mix bf16 and fp32 epochs.
- **Mismatch policy**: a checkpoint that cannot be read or belongs to another
  identity is set aside with a warning and training starts from epoch 1. It
  can only be a stale one (Snakemake reruns the job *because* its settings or
  data changed), so refusing would only make the user delete it by hand, and
  nothing of it is ever mixed into the new run.
- **Replay**: epochs restored from a checkpoint are replayed to the loop's
  ``on_epoch`` hook, so a run record stays complete across a kill.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cxrmask.atomic import atomic_path
from cxrmask.torchutil import cpu_has_bf16

log = logging.getLogger(__name__)

FORMAT = 2
"""Bumped when the checkpoint's layout changes, so an old file is not misread (it is set aside)."""
RESUME_SUFFIX = ".resume.pt"


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


Generator = torch.Generator | np.random.Generator


def resume_path(output: str | os.PathLike[str]) -> Path:
    """The checkpoint file of the job whose main output is ``output``: ``<stem>.resume.pt`` beside it."""
    output = Path(output)
    return output.with_name(output.stem + RESUME_SUFFIX)


class EarlyStopping:
    """The best epoch so far (its history row and a copy of its weights) and whether to stop.

    Both loops keep the weights of their best epoch and stop after
    ``patience`` epochs without a strictly better score (a tie is no gain).
    """

    def __init__(self, patience: int):
        """``patience``: epochs without a gain before stopping; 0 never stops early."""
        self.patience = patience
        self.score = float("-inf")
        self.row: dict[str, Any] | None = None
        self.state: dict[str, torch.Tensor] | None = None
        self.since_best = 0

    def offer(self, score: float, row: dict[str, Any], model: torch.nn.Module) -> bool:
        """Record one epoch's ``score`` (higher is better); True when training should stop."""
        if self.state is None or score > self.score:
            self.score, self.row, self.since_best = score, dict(row), 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.since_best += 1
        if self.patience and self.since_best >= self.patience:
            log.info("no validation gain for %d epochs: stopping", self.since_best)
            return True
        return False

    def best_state(self) -> dict[str, torch.Tensor]:
        """The best epoch's weights, on the CPU."""
        if self.state is None:
            raise RuntimeError("no epoch was offered")
        return {key: value.detach().cpu() for key, value in self.state.items()}

    def as_state(self) -> dict[str, Any]:
        best = None if self.state is None else {k: v.detach().cpu() for k, v in self.state.items()}
        return {
            "patience": self.patience,
            "score": self.score,
            "row": self.row,
            "state": best,
            "since_best": self.since_best,
        }

    @classmethod
    def from_state(cls, saved: Mapping[str, Any]) -> EarlyStopping:
        stopping = cls(saved["patience"])
        stopping.score, stopping.row, stopping.since_best = saved["score"], saved["row"], saved["since_best"]
        stopping.state = saved["state"]
        return stopping


@dataclass
class Progress:
    """Where an epoch loop stands: early-stopping state, history, whether it stopped, time spent."""

    stopping: EarlyStopping
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    elapsed: float = 0.0

    def as_state(self) -> dict[str, Any]:
        """Plain data for ``torch.save`` (the best weights on the CPU)."""
        return {
            "history": self.history,
            "stopped": self.stopped,
            "elapsed": self.elapsed,
            "stopping": self.stopping.as_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Progress:
        return cls(
            EarlyStopping.from_state(state["stopping"]), state["history"], state["stopped"], state["elapsed"]
        )


def identity(**fields: Any) -> str:
    """What a checkpoint must match to be resumed, as canonical JSON: ``fields`` plus format and CPU bf16."""
    return json.dumps({"format": FORMAT, "cpu_bf16": cpu_has_bf16(), **fields}, sort_keys=True, default=str)


def _generator_state(generator: Generator) -> Any:
    if isinstance(generator, torch.Generator):
        return generator.get_state()
    return json.dumps(generator.bit_generator.state)


def _set_generator_state(generator: Generator, state: Any) -> None:
    if isinstance(generator, torch.Generator):
        generator.set_state(state)
    else:
        generator.bit_generator.state = json.loads(state)


def _global_rng_states() -> dict[str, Any]:
    """Every global generator a training step could draw from (dropout, stochastic depth, NumPy, Python)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }


def _restore_global_rngs(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_progress(
    path: str | os.PathLike[str],
    run: str,
    parts: Mapping[str, Stateful],
    generators: Mapping[str, Generator],
    progress: Progress,
) -> None:
    """Write the whole training state atomically: a kill while saving leaves the previous checkpoint."""
    state = {
        "identity": run,
        "parts": {name: part.state_dict() for name, part in parts.items()},
        "generators": {name: _generator_state(g) for name, g in generators.items()},
        "rng": _global_rng_states(),
        "progress": progress.as_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_progress(
    path: str | os.PathLike[str] | None,
    run: str,
    parts: Mapping[str, Stateful],
    generators: Mapping[str, Generator],
) -> Progress | None:
    """Restore ``parts`` and ``generators`` from a checkpoint of run ``run``; its progress, or None.

    None when there is no checkpoint, or when it is unreadable or another
    run's (logged: training starts from epoch 1, see the module's policy).
    The file is read onto the CPU: random generator states must stay there,
    and the model and optimiser copy their tensors to their own device.
    """
    if path is None or not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable checkpoint (truncated, old torch) means "start again"
        log.warning("checkpoint %s is unreadable (%s): training from epoch 1", path, exc)
        return None
    if not isinstance(state, dict) or state.get("identity") != run:
        log.warning("checkpoint %s belongs to another configuration or data: training from epoch 1", path)
        return None
    for name, part in parts.items():
        part.load_state_dict(state["parts"][name])
    for name, generator in generators.items():
        _set_generator_state(generator, state["generators"][name])
    _restore_global_rngs(state["rng"])
    progress = Progress.from_state(state["progress"])
    log.info("resuming from %s after epoch %d", path, progress.history[-1]["epoch"])
    return progress
