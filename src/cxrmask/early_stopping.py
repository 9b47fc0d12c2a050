"""Early stopping on a validation score, shared by segmenter fine-tuning and classifier training.

Both loops keep the weights of their best epoch and stop after ``patience``
epochs without a strictly better score; keeping that rule in one place means
the two cannot drift apart (say, one counting ties as gains).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


class EarlyStopping:
    """The best epoch so far (its history row and a copy of its weights) and whether to stop."""

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
