"""QC without ground truth: shape statistics, ranges learned from masks, flags with reasons, prompt
agreement from a real decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.draw import ellipse
from tinysam import tiny_sam

from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.postprocess import dice
from cxrmask.segment.qc import (
    PERTURBATIONS,
    SHAPE_STATS,
    QCReference,
    map_agreement,
    prompt_agreement,
    shape_stats,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def lungs(size: int = 128, right_scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Two ellipses ("lungs"), the right one scaled by ``right_scale``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), dtype=bool)
    ry, rx = size * rng.uniform(0.26, 0.3), size * rng.uniform(0.13, 0.16)
    for centre_x, scale in ((0.3, 1.0), (0.7, right_scale)):
        rows, cols = ellipse(size * 0.5, size * centre_x, ry * scale, rx * scale, shape=mask.shape)
        mask[rows, cols] = True
    return mask


@pytest.fixture(scope="module")
def reference() -> QCReference:
    return QCReference.fit([lungs(seed=s) for s in range(20)], min_agreement=0.9)


def test_shape_statistics_of_two_lungs_and_of_one():
    two = shape_stats(lungs())
    assert two["components"] == 2 and two["balance"] == pytest.approx(1.0, abs=0.02)
    assert two["solidity"] > 0.95 and 0.1 < two["lung_fraction"] < 0.3
    one = shape_stats(lungs(right_scale=0.0))
    assert one["components"] == 1 and one["balance"] == 0.0
    notched = lungs()
    notched[40:90, 30:40] = False
    assert shape_stats(notched)["solidity"] < two["solidity"] - 0.02


def test_a_plausible_stable_mask_passes(reference):
    row = reference.assess(lungs(seed=3), lungs(seed=3), agreement=0.98)
    assert not row["flag"] and row["reason"] == "" and row["qc_score"] == pytest.approx(0.98)


def test_a_missing_lung_is_flagged_with_its_reason(reference):
    half = lungs(seed=3, right_scale=0.4)
    bad = reference.assess(half, half, agreement=0.98)
    assert bad["flag"] and "balance" in bad["reason"] and "lung_fraction" in bad["reason"]


def test_the_score_is_prompt_agreement_times_head_agreement_and_a_low_one_is_flagged(reference):
    mask = lungs(seed=3)
    row = reference.assess(mask, mask, agreement=0.98, map_agreement=0.97)
    assert row["qc_score"] == pytest.approx(0.98 * 0.97) and not row["flag"]
    low = reference.assess(mask, mask, agreement=0.98, map_agreement=0.8)
    assert low["qc_score"] == pytest.approx(0.98 * 0.8) and low["flag"] and "QC score" in low["reason"]


def test_specks_and_an_unstable_prompt_are_reasons_too(reference):
    raw = lungs(seed=3)
    raw[2:12, 2:12] = True  # a part of 0.6% of the image counts; a speck does not
    raw[120:123, 60:63] = True
    row = reference.assess(raw, lungs(seed=3), agreement=0.8)
    assert row["flag"] and "components" in row["reason"] and "unstable" in row["reason"]


def test_the_reference_travels_as_plain_values(reference):
    again = QCReference.from_dict(reference.to_dict())
    assert again == reference and set(again.ranges) == set(SHAPE_STATS)


def test_prompt_agreement_of_a_real_decoder_is_a_dice_per_image():
    model = tiny_sam(seed=0).eval()
    with torch.no_grad():
        embeddings = model.encode(torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)))
    boxes = torch.tensor([[60.0, 60.0, 200.0, 200.0], [30.0, 40.0, 120.0, 220.0]])
    agreement = prompt_agreement(model, embeddings, boxes)
    assert agreement.shape == (2,) and ((agreement >= 0) & (agreement <= 1)).all()
    # No move, no disagreement: the same box decodes to the same mask.
    assert prompt_agreement(model, embeddings, boxes, shift=0.0) == pytest.approx([1.0, 1.0])


def test_map_agreement_is_the_dice_with_the_heads_own_lungs():
    head = LungMapHead(channels=8, width=4).eval()
    with torch.no_grad():
        head.net[-1].bias.fill_(50.0)  # the head sees lung everywhere
    embeddings = torch.rand(2, 8, 16, 16)
    full = np.ones((2, 64, 64), dtype=bool)
    half = full.copy()
    half[:, :, 32:] = False
    assert map_agreement(head, embeddings, full) == pytest.approx([1.0, 1.0])
    assert map_agreement(head, embeddings, half) == pytest.approx([2 / 3, 2 / 3])


def test_prompt_agreement_is_the_mean_of_the_dice_with_each_moved_boxs_mask_computed_by_hand():
    """Each moved box decoded on its own, its Dice with the unmoved box's mask by hand, then the mean:
    not the least or the largest of them, and the moves a fraction of the input side."""
    model = tiny_sam(seed=0).eval()
    with torch.no_grad():
        embeddings = model.encode(torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)))
    boxes = torch.tensor([[60.0, 60.0, 200.0, 200.0], [2.0, 40.0, 120.0, 254.0]])
    shift = 0.05

    def mask(box: torch.Tensor, index: int) -> np.ndarray:
        with torch.no_grad():
            return (model.decode(embeddings[index : index + 1], box[None, None])[0, 0] > 0).numpy()

    for index in range(2):
        base = mask(boxes[index], index)
        dices = []
        for move in PERTURBATIONS:
            moved = (boxes[index] + torch.from_numpy(move) * shift * 256).clamp(0, 255)
            dices.append(dice(mask(moved, index), base))
        assert len(set(np.round(dices, 6))) > 1  # the moves disagree, so mean, min and max differ
        agreement = prompt_agreement(model, embeddings, boxes, shift=shift)[index]
        assert agreement == pytest.approx(np.mean(dices), abs=1e-6)


def test_every_setting_of_the_reference_travels_not_only_the_ranges(reference):
    custom = QCReference(ranges=dict(reference.ranges), min_agreement=0.8, min_score=0.7)
    again = QCReference.from_dict(custom.to_dict())
    assert (again.min_agreement, again.min_score) == (0.8, 0.7) and again == custom
