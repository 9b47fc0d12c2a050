"""Quality control of a lung mask without ground truth: an estimated Dice, and two lungs where two belong.

The decoder and the lung-map head are two models reading one embedding;
where their lungs disagree, at least one is wrong, so their Dice bounds the
decoder mask's error. Calibrated on the fine-tuning validation split (the
median gap between that agreement and the true Dice), it becomes an
estimated Dice, and a mask is flagged when that estimate, less the estimate's
own error on the same split, falls below a Dice the study calls bad. The
prompt agreement (the mask against the masks of moved boxes) and the shape
statistics are reported alongside for whoever reads a flagged mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import label, regionprops

from cxrmask.errors import InputError
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.postprocess import clean_mask

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


def flag_precision_recall(
    flags: np.ndarray, dice: np.ndarray, bad_dice: float
) -> tuple[float | None, float | None]:
    """How right a QC flag is, judged by true Dice: the share of flagged masks below ``bad_dice``
    (precision) and the share of those masks flagged (recall); None where a group is empty."""
    flags, bad = np.asarray(flags, dtype=bool), np.asarray(dice) < bad_dice
    caught = (bad & flags).sum()
    precision = float(caught / flags.sum()) if flags.any() else None
    recall = float(caught / bad.sum()) if bad.any() else None
    return precision, recall


@dataclasses.dataclass(frozen=True)
class QCReference:
    """How the agreement with the lung-map head becomes an estimated Dice, and when QC flags a mask.

    ``dice_offset`` is the median of (true Dice - agreement) over the
    fine-tuning validation masks (:meth:`calibrate`): the two models' masks
    differ by both their errors, so the raw agreement sits below the
    decoder's own Dice by a margin that the validation split measures.
    ``dice_spread`` is the standard deviation of the same gaps: how far an
    estimate strays from the true Dice. A mask is flagged once its Dice
    could be below ``bad_dice`` within that spread, not only when the
    estimate itself is below it: bad masks are few, and an estimate that
    lands just above the line misses half of those near it.
    """

    bad_dice: float
    dice_offset: float = 0.0
    dice_spread: float = 0.0
    n_calibration: int = 0

    @property
    def flag_below(self) -> float:
        """The estimated Dice below which a mask is flagged: ``bad_dice`` plus the estimate's spread."""
        return self.bad_dice + self.dice_spread

    @classmethod
    def calibrate(cls, scores: np.ndarray, dice: np.ndarray, bad_dice: float) -> QCReference:
        """The offset that makes ``scores`` (uncalibrated QC scores) estimate ``dice`` (their masks' true
        Dice), as the median difference: a few masks that fail badly do not move it; and the spread of
        the differences (sample standard deviation; 0 from a single mask)."""
        scores, dice = np.asarray(scores, dtype=np.float64), np.asarray(dice, dtype=np.float64)
        if len(scores) == 0 or len(scores) != len(dice):
            raise InputError(
                f"QC calibration needs the validation masks' scores and true Dice ({len(scores)} scores, "
                f"{len(dice)} Dice): set seg_data.val_fraction above 0."
            )
        gaps = dice - scores
        return cls(
            bad_dice=bad_dice,
            dice_offset=float(np.median(gaps)),
            dice_spread=float(np.std(gaps, ddof=1)) if len(gaps) > 1 else 0.0,
            n_calibration=len(scores),
        )

    def to_dict(self) -> dict:
        """Plain values, to travel inside a model file."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> QCReference:
        """Inverse of :meth:`to_dict`."""
        return cls(
            bad_dice=float(data["bad_dice"]),
            dice_offset=float(data["dice_offset"]),
            dice_spread=float(data["dice_spread"]),
            n_calibration=int(data["n_calibration"]),
        )

    def assess(
        self, raw: np.ndarray, cleaned: np.ndarray, agreement: float, map_agreement: float | None = None
    ) -> dict[str, float | bool | str]:
        """One QC row: the statistics, the score (an estimated Dice), the flag and its reason.

        The score is the agreement with the lung-map head, where the model has
        one, plus the calibrated offset; without a head, the prompt agreement
        stands in. On the demo's NIH-style images the head agreement ranks
        masks by true Dice better than its product with the prompt agreement
        (README, "QC against the truth"). A mask is flagged when its estimated
        Dice is below :attr:`flag_below`, or when its lungs are one body (a bridge
        across the mediastinum, or a lung missed), counted on the raw mask:
        parts clean-up removes are doubt. The shape statistics are reported,
        not judged: ranges learned from a few fine-tuning masks flagged good
        masks far more often than bad ones.
        """
        stats = shape_stats(cleaned)
        stats["components"] = shape_stats(raw)["components"]
        signal = agreement if map_agreement is None else map_agreement
        score = float(np.clip(signal + self.dice_offset, 0.0, 1.0))
        reasons = []
        if score < self.flag_below:
            source = "prompt agreement" if map_agreement is None else "head agreement"
            reasons.append(
                f"estimated Dice {score:.3f} < {self.bad_dice} + {self.dice_spread:.3f} ({source} "
                f"{signal:.3f}, calibration offset {self.dice_offset:+.3f}, spread {self.dice_spread:.3f})"
            )
        if stats["components"] < 2:
            reasons.append("lungs in one body (expected two)")
        return {
            **stats,
            "agreement": float(agreement),
            "map_agreement": float("nan") if map_agreement is None else float(map_agreement),
            "qc_score": score,
            "flag": bool(reasons),
            "reason": "; ".join(reasons),
        }
