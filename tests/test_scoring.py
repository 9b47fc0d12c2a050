"""MONAI's Dice, IoU and HD95 on masks with known answers, and their summaries."""

from __future__ import annotations

import numpy as np
import pytest

from cxrmask.segment.scoring import mask_scores, summarise


def squares() -> tuple[np.ndarray, np.ndarray]:
    """Truth: a 20x20 square. Predictions: the same square; it shifted 5 px right; nothing."""
    truth = np.zeros((3, 64, 64), dtype=bool)
    truth[:, 10:30, 10:30] = True
    pred = truth.copy()
    pred[1] = False
    pred[1, 10:30, 15:35] = True
    pred[2] = False
    return pred, truth


def test_scores_match_the_geometry():
    scores = mask_scores(*squares())
    assert scores["dice"] == pytest.approx([1.0, 2 * 300 / 800, 0.0], abs=1e-6)
    assert scores["iou"] == pytest.approx([1.0, 300 / 500, 0.0], abs=1e-6)
    assert scores["hd95"][0] == 0 and scores["hd95"][1] == pytest.approx(5, abs=0.5)
    # An empty prediction has no surface: it scores the worst distance, the diagonal, not NaN.
    assert scores["hd95"][2] == pytest.approx(np.hypot(64, 64))


def test_summary_reports_means_and_the_bad_tail():
    summary = summarise(mask_scores(*squares()))
    assert summary["n"] == 3
    assert summary["dice_mean"] == pytest.approx((1 + 0.75 + 0) / 3, abs=1e-6)
    assert summary["dice_p10"] == pytest.approx(np.percentile([1, 0.75, 0], 10), abs=1e-6)
    assert summary["hd95_p90"] > summary["hd95_mean"]
    assert summary["dice_min"] == pytest.approx(0.0, abs=1e-6)
    assert summary["iou_min"] == pytest.approx(0.0, abs=1e-6)
    assert summary["hd95_max"] == pytest.approx(np.hypot(64, 64))
