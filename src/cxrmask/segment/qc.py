"""Quality control of a lung mask without ground truth: prompt stability and lung-shape plausibility.

Two signals that need no truth. A mask the decoder is sure of barely changes
when its box moves a few pixels; a bad one (a box that cut a lung, a mask
spilling under the diaphragm) swings, so the mean Dice between the mask and
the masks of perturbed boxes measures confidence, at the cost of a few
decoder passes. And lungs have a shape: their share of the image, two
bodies of similar size, convex-ish outlines. Each statistic's plausible
range is learned from the fine-tuning masks; every one out of range
lowers the score and is named in the flag's reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import label, regionprops

from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.postprocess import clean_mask

SHAPE_STATS = ("lung_fraction", "components", "balance", "solidity")
# Box moves as fractions of the side: all sides out, all in, the box shifted diagonally both ways.
PERTURBATIONS = np.array(
    [[-1, -1, 1, 1], [1, 1, -1, -1], [-1, -1, -1, -1], [1, 1, 1, 1], [-1, 1, -1, 1], [1, -1, 1, -1]],
    dtype=np.float32,
)


def shape_stats(mask: np.ndarray) -> dict[str, float]:
    """Lung fraction, count of parts (of at least 0.5% of the image), size balance of the two largest
    bodies and their mean solidity.

    All four are unchanged by stretching an image's axes, so a mask on the
    decoder's square grid gives the same numbers as at the image's own size.
    Specks below 0.5% are left out of the count: clean-up removes them, and
    raw decoder masks have a few.
    """
    regions = sorted(regionprops(label(mask, connectivity=2)), key=lambda r: r.area, reverse=True)
    two = regions[:2]
    return {
        "lung_fraction": float(mask.mean()),
        "components": float(sum(r.area >= 0.005 * mask.size for r in regions)),
        "balance": float(two[1].area / two[0].area) if len(two) == 2 else 0.0,
        "solidity": float(np.mean([r.solidity for r in two])) if two else 0.0,
    }


def prompt_agreement(
    model: PromptableSegmenter, embeddings: torch.Tensor, boxes: torch.Tensor, shift: float = 0.03
) -> np.ndarray:
    """Mean Dice (B,) between each image's mask from ``boxes`` (B, 4) and its masks from moved boxes."""
    size = model.input_size
    moves = torch.from_numpy(PERTURBATIONS * shift * size).to(boxes.device)
    batch = len(boxes)
    prompts = torch.cat([boxes[:, None], (boxes[:, None] + moves[None]).clamp(0, size - 1)], dim=1)
    with torch.no_grad():
        logits = torch.stack(
            [model.decode(embeddings, prompts[:, k : k + 1])[:, 0] for k in range(len(moves) + 1)], 1
        )
    masks = (logits > 0).flatten(2).float()
    base, moved = masks[:, :1], masks[:, 1:]
    inter = (base * moved).sum(-1)
    total = base.sum(-1) + moved.sum(-1)
    dice = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
    return dice.mean(1).reshape(batch).cpu().numpy()


def map_agreement(head: LungMapHead, embeddings: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """Dice (B,) between each cleaned decoder mask (B, m, m) and the lung-map head's own lungs.

    The head and the decoder are two models reading the same embedding; where
    they disagree, at least one is wrong, and it is usually the decoder that
    followed a bad box or leaked past the diaphragm.
    """
    with torch.no_grad():
        logits = F.interpolate(head(embeddings), size=masks.shape[-2:], mode="bilinear")[:, 0]
    out = []
    for lungs, mask in zip((logits > 0).cpu().numpy(), masks, strict=True):
        lungs = clean_mask(lungs)
        total = lungs.sum() + mask.sum()
        out.append(2 * (lungs & mask).sum() / total if total else 1.0)
    return np.asarray(out, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class QCReference:
    """Plausible ranges (low, high) per shape statistic, and the least acceptable prompt agreement."""

    ranges: Mapping[str, tuple[float, float]]
    min_agreement: float = 0.95
    min_score: float = 0.9

    @classmethod
    def fit(
        cls, masks: Iterable[np.ndarray], quantile: float = 0.01, widen: float = 0.1, **kwargs
    ) -> QCReference:
        """Ranges from the 1st to the 99th percentile of the fine-tuning masks' statistics, widened
        by ``widen`` of their width each way, so a mask at the edge of the training masks passes."""
        stats = [shape_stats(mask) for mask in masks]
        ranges = {}
        for name in SHAPE_STATS:
            values = np.array([row[name] for row in stats])
            low, high = np.quantile(values, quantile), np.quantile(values, 1 - quantile)
            pad = widen * (high - low)
            ranges[name] = (float(low - pad), float(high + pad))
        return cls(ranges=ranges, **kwargs)

    def to_dict(self) -> dict:
        """Plain values, to travel inside a model file."""
        return {
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            **{k: getattr(self, k) for k in ("min_agreement", "min_score")},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> QCReference:
        """Inverse of :meth:`to_dict`."""
        return cls(
            ranges={k: (float(v[0]), float(v[1])) for k, v in data["ranges"].items()},
            min_agreement=float(data["min_agreement"]),
            min_score=float(data["min_score"]),
        )

    def assess(
        self, raw: np.ndarray, cleaned: np.ndarray, agreement: float, map_agreement: float | None = None
    ) -> dict[str, float | bool | str]:
        """One QC row: the statistics, the score in [0, 1], the flag and its reason.

        The score is the prompt agreement times the agreement with the
        lung-map head (where the model has one): on real held-out X-rays
        each ranks masks by true Dice and their product best
        (benchmarks/bench_qc.py). Shape statistics outside their range flag a
        mask and name the reason; they do not enter the score, since masks
        within the range differ in shape for reasons other than error.
        Components are counted on the raw mask: parts clean-up removes are doubt.
        """
        stats = shape_stats(cleaned)
        stats["components"] = shape_stats(raw)["components"]
        reasons = []
        for name, (low, high) in self.ranges.items():
            if not low <= stats[name] <= high:
                side = "low" if stats[name] < low else "high"
                reasons.append(f"{name} {stats[name]:.3g} {side} (range {low:.3g}-{high:.3g})")
        if agreement < self.min_agreement:
            reasons.append(f"unstable under moved prompts (agreement {agreement:.3f} < {self.min_agreement})")
        score = agreement * (1.0 if map_agreement is None else map_agreement)
        if score < self.min_score:
            reasons.append(f"QC score {score:.3f} < {self.min_score}")
        flag = bool(reasons)
        return {
            **stats,
            "agreement": float(agreement),
            "map_agreement": float("nan") if map_agreement is None else float(map_agreement),
            "qc_score": float(score),
            "flag": flag,
            "reason": "; ".join(reasons),
        }
