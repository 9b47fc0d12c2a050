"""Segmentation scores from MONAI's maintained metrics: Dice, IoU, 95% Hausdorff distance.

A mean Dice hides the few masks that fail, which are the ones that hurt a
masked classifier, so summaries carry the 10th percentile too. Distances
are in pixels of the grid the masks are compared on.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric, MeanIoU

METRICS = ("dice", "iou", "hd95")


def mask_scores(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """Per-item Dice, IoU and HD95 of boolean masks (N, H, W) against their truths (N, H, W).

    An empty prediction has no boundary; its HD95 is the image diagonal (the
    worst possible), so one failure cannot vanish from a mean as NaN.
    """
    pred_t = torch.as_tensor(np.asarray(pred, dtype=bool) if isinstance(pred, np.ndarray) else pred)
    truth_t = torch.as_tensor(np.asarray(truth, dtype=bool) if isinstance(truth, np.ndarray) else truth)
    y_pred, y = pred_t.bool()[:, None].float(), truth_t.bool()[:, None].float()
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(y_pred, y)
    iou = MeanIoU(include_background=True, reduction="none", ignore_empty=False)(y_pred, y)
    with warnings.catch_warnings():
        # MONAI warns that an empty mask has no surface; the diagonal below is the answer to that.
        warnings.filterwarnings("ignore", message=".*is all 0, this may result in nan/inf distance")
        hd95 = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(y_pred, y)
    diagonal = float(np.hypot(*pred_t.shape[-2:]))
    hd95 = torch.nan_to_num(hd95, nan=diagonal, posinf=diagonal)
    return {"dice": dice[:, 0].numpy(), "iou": iou[:, 0].numpy(), "hd95": hd95[:, 0].numpy()}


def summarise(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of every metric, its bad tail (10th percentile of Dice and IoU, 90th of HD95) and its worst
    mask (min Dice and IoU, max HD95): one mask that takes in the abdomen corrupts its image for every
    masked classifier, so the worst is reported, not only the mean."""
    out = {"n": float(len(scores["dice"]))}
    for name, values in scores.items():
        out[f"{name}_mean"] = float(np.mean(values))
        tail, worst = (90, "max") if name == "hd95" else (10, "min")
        out[f"{name}_p{tail}"] = float(np.percentile(values, tail))
        out[f"{name}_{worst}"] = float(np.max(values) if name == "hd95" else np.min(values))
    return out
