"""Quality control of a lung mask without ground truth: an estimated Dice, and two lungs where two belong.

The decoder's own uncertainty says where its mask can be wrong: the pixels
whose logit is near zero lie along the edge it is unsure of, and a mask that
runs into the abdomen or stops short of a dense base leaves a wide band of
them. Counted per mask pixel and taken from one, that is the mask's
*certainty*, a number on Dice's scale. Calibrated on the fine-tuning
validation split (an offset, and a slope where the split has enough masks),
it becomes an estimated Dice, and a mask is flagged when that estimate,
less the estimate's own error on the same split, falls below a Dice the
study calls bad. The agreements with the lung-map head and with moved boxes,
and the shape statistics, are reported alongside for whoever reads a
flagged mask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import torch
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
# A decoder pixel is uncertain while its logit is within this distance of zero (probability 0.12 to 0.88).
UNCERTAIN_LOGIT = 2.0
# Fewer validation masks than this calibrate an offset alone: a slope fitted to a handful of masks, all of
# them good, says nothing about the bad ones.
MIN_SLOPE_MASKS = 20


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


def certainty(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """One less the decoder's uncertain pixels per mask pixel (B,), from its logits and the cleaned masks
    (B, m, m), both on the decoder's grid.

    A Dice error is the pixels a mask gets wrong over its size, and they lie
    where the decoder is unsure; so the uncertain pixels over the mask's
    pixels is a Dice-scale error, whatever the image's size. It ranks masks
    by true Dice better than the head agreement (README, "QC against the
    truth"). An empty mask counts its uncertain pixels over one pixel.
    """
    unsure = (np.abs(logits) < UNCERTAIN_LOGIT).reshape(len(logits), -1).sum(1)
    size = np.asarray(masks).reshape(len(masks), -1).sum(1)
    return 1.0 - unsure / np.maximum(size, 1)


def map_agreement(head: LungMapHead, embeddings: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """Dice (B,) between each cleaned decoder mask (B, m, m) and the lung-map head's own lungs.

    The head and the decoder are two models reading the same embedding; where
    they disagree, at least one is wrong, and it is usually the decoder that
    followed a bad box or leaked past the diaphragm.
    """
    logits = head.lung_logits(embeddings, masks.shape[-2:])
    out = []
    for lungs, mask in zip((logits > 0).cpu().numpy(), masks, strict=True):
        lungs = clean_mask(lungs)
        total = lungs.sum() + mask.sum()
        out.append(2 * (lungs & mask).sum() / total if total else 1.0)
    return np.asarray(out, dtype=np.float64)


def no_truth_signals(
    model: PromptableSegmenter,
    head: LungMapHead | None,
    embeddings: torch.Tensor,
    logits: torch.Tensor,
    boxes: torch.Tensor,
    keep_components: int = 2,
) -> list[tuple[np.ndarray, np.ndarray, float, float, float | None]]:
    """Per image of one batch, what QC reads: the raw mask and the cleaned mask on the decoder's grid,
    the certainty, the prompt agreement and the head agreement (None without a head).

    One home for the signals, so fine-tuning's calibration and mask
    generation score masks the same way.
    """
    agreement = prompt_agreement(model, embeddings, boxes)
    values = logits.float().cpu().numpy()
    raws = values > 0
    cleaned = np.stack([clean_mask(raw, keep_components) for raw in raws])
    sure = certainty(values, cleaned)
    maps = map_agreement(head, embeddings.float(), cleaned) if head is not None else [None] * len(raws)
    return [
        (raw, mask, float(c), float(a), m)
        for raw, mask, c, a, m in zip(raws, cleaned, sure, agreement, maps, strict=True)
    ]


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
    """How a mask's certainty becomes an estimated Dice, and when QC flags a mask.

    The estimate is ``dice_offset + dice_slope * certainty``, fitted on the
    fine-tuning validation masks (:meth:`calibrate`). How sure a decoder is
    at its edges is its own: one model's band of doubt is wide, another's
    narrow, so with enough validation masks the slope is fitted as well as
    the offset; with fewer, the slope is 1 (an uncertain pixel is one wrong
    pixel's worth of Dice) and the offset is the median gap. ``dice_spread``
    is how far the estimate strays from the true Dice on the same masks (the
    residuals' standard deviation). A mask is flagged once its Dice could be
    below ``bad_dice`` within that spread, not only when the estimate itself
    is below it: bad masks are few, and an estimate that lands just above
    the line misses half of those near it.
    """

    bad_dice: float
    dice_offset: float = 0.0
    dice_slope: float = 1.0
    dice_spread: float = 0.0
    n_calibration: int = 0

    @property
    def flag_below(self) -> float:
        """The estimated Dice below which a mask is flagged: ``bad_dice`` plus the estimate's spread."""
        return self.bad_dice + self.dice_spread

    def estimate(self, certainty: float) -> float:
        """The estimated Dice of a mask of this ``certainty``, kept between 0 and 1."""
        return float(np.clip(self.dice_offset + self.dice_slope * certainty, 0.0, 1.0))

    @classmethod
    def calibrate(cls, scores: np.ndarray, dice: np.ndarray, bad_dice: float) -> QCReference:
        """The line that makes ``scores`` (the validation masks' certainties) estimate ``dice`` (their true
        Dice), and the spread of its residuals (sample standard deviation; 0 where nothing is left over).

        From :data:`MIN_SLOPE_MASKS` masks on, a least-squares line; a slope
        that is not positive (the split shows no relation) is not kept. Below
        that, or then, the slope is 1 and the offset the median gap, which a
        few masks that fail badly do not move.
        """
        scores, dice = np.asarray(scores, dtype=np.float64), np.asarray(dice, dtype=np.float64)
        if len(scores) == 0 or len(scores) != len(dice):
            raise InputError(
                f"QC calibration needs the validation masks' scores and true Dice ({len(scores)} scores, "
                f"{len(dice)} Dice): set seg_data.val_fraction above 0."
            )
        slope, fitted = 1.0, 1
        if len(scores) >= MIN_SLOPE_MASKS and np.ptp(scores) > 0:
            line_slope, line_offset = np.polyfit(scores, dice, 1)
            if line_slope > 0:
                slope, offset, fitted = float(line_slope), float(line_offset), 2
        if fitted == 1:
            offset = float(np.median(dice - scores))
        residuals = dice - (offset + slope * scores)
        return cls(
            bad_dice=bad_dice,
            dice_offset=offset,
            dice_slope=slope,
            dice_spread=float(np.std(residuals, ddof=fitted)) if len(scores) > fitted else 0.0,
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
            dice_slope=float(data["dice_slope"]),
            dice_spread=float(data["dice_spread"]),
            n_calibration=int(data["n_calibration"]),
        )

    def assess(
        self,
        raw: np.ndarray,
        cleaned: np.ndarray,
        certainty: float,
        agreement: float,
        map_agreement: float | None = None,
    ) -> dict[str, float | bool | str]:
        """One QC row: the statistics, the score (an estimated Dice), the flag and its reason.

        The score is the calibrated ``certainty`` (:func:`certainty`). The
        prompt agreement and the agreement with the lung-map head (None
        without a head) are reported, not scored: on the demo's NIH-style
        images and on real X-rays both rank masks by true Dice worse than the
        certainty (README, "QC against the truth"). A mask is flagged when its
        estimated Dice is below :attr:`flag_below`, or when its lungs are one
        body (a bridge across the mediastinum, or a lung missed), counted on
        the raw mask: parts clean-up removes are doubt. The shape statistics
        are reported, not judged: ranges learned from a few fine-tuning masks
        flagged good masks far more often than bad ones.
        """
        stats = shape_stats(cleaned)
        stats["components"] = shape_stats(raw)["components"]
        score = self.estimate(certainty)
        reasons = []
        if score < self.flag_below:
            reasons.append(
                f"estimated Dice {score:.3f} < {self.bad_dice} + {self.dice_spread:.3f} (certainty "
                f"{certainty:.3f}, calibrated as {self.dice_offset:+.3f} + {self.dice_slope:.3f} x "
                f"certainty, spread {self.dice_spread:.3f})"
            )
        if stats["components"] < 2:
            reasons.append("lungs in one body (expected two)")
        return {
            **stats,
            "certainty": float(certainty),
            "agreement": float(agreement),
            "map_agreement": float("nan") if map_agreement is None else float(map_agreement),
            "qc_score": score,
            "flag": bool(reasons),
            "reason": "; ".join(reasons),
        }
