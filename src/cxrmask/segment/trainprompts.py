"""Training prompts drawn like the prompts inference will give.

MedSAM jitters the ground-truth box outward only, which teaches a model to
trust the box's inner edge. Without ground truth the prompt is a prior or
predicted box that is wrong in both directions, so a decoder meant for
those prompts is trained on boxes moved inward and outward, and on the
prior box itself, jittered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxrmask.segment.prompts import jitter_box


@dataclass(frozen=True)
class PromptSampler:
    """Boxes for a batch: ground truth moved each side by U[-both, +both] (plus MedSAM's outward
    jitter), or with probability ``prior_share`` the prior box moved the same way. Pixels of the
    encoder input."""

    truth: np.ndarray
    prior: np.ndarray
    size: int
    outward: float
    both: float
    prior_share: float

    def __call__(self, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        boxes = []
        for i in index:
            base = self.prior if rng.uniform() < self.prior_share else self.truth[i]
            moved = base + rng.uniform(-self.both, self.both, size=4)
            boxes.append(jitter_box(moved, self.outward, self.size, rng))
        return np.stack(boxes).astype(np.float32)
