"""QC without ground truth: the decoder's certainty, an estimated Dice calibrated on held-out masks,
flags with reasons, shape statistics, prompt and head agreement from real models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.draw import ellipse
from tinysam import tiny_sam

from cxrmask.errors import InputError
from cxrmask.segment.boxhead import LungMapHead
from cxrmask.segment.postprocess import dice
from cxrmask.segment.qc import (
    PERTURBATIONS,
    QCReference,
    certainty,
    flag_precision_recall,
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
    return QCReference(bad_dice=0.93, dice_offset=0.02, n_calibration=5)


def test_shape_statistics_of_two_lungs_and_of_one():
    two = shape_stats(lungs())
    assert two["components"] == 2 and two["balance"] == pytest.approx(1.0, abs=0.02)
    assert two["solidity"] > 0.95 and 0.1 < two["lung_fraction"] < 0.3
    one = shape_stats(lungs(right_scale=0.0))
    assert one["components"] == 1 and one["balance"] == 0.0
    notched = lungs()
    notched[40:90, 30:40] = False
    assert shape_stats(notched)["solidity"] < two["solidity"] - 0.02


def test_calibration_from_few_masks_is_the_median_gap_between_true_dice_and_the_certainty():
    scores = np.array([0.90, 0.93, 0.95, 0.60, 0.94])
    dice = np.array([0.93, 0.95, 0.98, 0.95, 0.96])  # gaps 0.03, 0.02, 0.03, 0.35, 0.02
    calibrated = QCReference.calibrate(scores, dice, bad_dice=0.9)
    assert calibrated.dice_offset == pytest.approx(0.03) and calibrated.n_calibration == 5
    assert calibrated.dice_slope == 1.0 and calibrated.bad_dice == 0.9
    # The spread is the gaps' sample standard deviation: mean 0.09, squared deviations summing to 0.0846.
    assert calibrated.dice_spread == pytest.approx(np.sqrt(0.0846 / 4))
    assert calibrated.flag_below == pytest.approx(0.9 + np.sqrt(0.0846 / 4))
    assert QCReference.calibrate(np.array([0.9]), np.array([0.95]), bad_dice=0.9).dice_spread == 0.0
    with pytest.raises(InputError, match=r"seg_data\.val_fraction"):
        QCReference.calibrate(np.array([]), np.array([]), bad_dice=0.9)


def test_from_twenty_masks_the_calibration_is_a_least_squares_line_and_its_residuals_spread():
    """Dice = 0.8 + 0.2 x certainty, moved by +-0.01 in turn: the line is found exactly (the moves
    cancel on every side of the mean), the spread is the residuals' deviation with two parameters
    fitted; one mask fewer and the slope is 1 again."""
    scores = np.linspace(0.5, 1.0, 20)
    moves = np.tile([0.01, -0.01, -0.01, 0.01], 5)
    dice = 0.8 + 0.2 * scores + moves
    slope, offset = np.polyfit(scores, dice, 1)
    calibrated = QCReference.calibrate(scores, dice, bad_dice=0.93)
    assert calibrated.dice_slope == pytest.approx(slope) and calibrated.dice_offset == pytest.approx(offset)
    assert slope == pytest.approx(0.2, abs=0.01) and calibrated.n_calibration == 20
    residuals = dice - (offset + slope * scores)
    assert calibrated.dice_spread == pytest.approx(np.sqrt((residuals**2).sum() / 18))
    assert QCReference.from_dict(calibrated.to_dict()) == calibrated  # the slope travels too
    fewer = QCReference.calibrate(scores[:19], dice[:19], bad_dice=0.93)
    assert fewer.dice_slope == 1.0 and fewer.dice_offset == pytest.approx(np.median(dice[:19] - scores[:19]))


def test_a_line_that_falls_or_scores_that_do_not_vary_keep_the_slope_of_one():
    scores = np.linspace(0.5, 1.0, 25)
    falling = QCReference.calibrate(scores, 1.2 - 0.3 * scores, bad_dice=0.93)
    assert falling.dice_slope == 1.0
    assert falling.dice_offset == pytest.approx(np.median(1.2 - 1.3 * scores))
    flat = QCReference.calibrate(np.full(25, 0.9), np.linspace(0.9, 1.0, 25), bad_dice=0.93)
    assert flat.dice_slope == 1.0 and flat.dice_offset == pytest.approx(0.05)
    assert flat.dice_spread == pytest.approx(np.std(np.linspace(0.9, 1.0, 25), ddof=1))


def test_certainty_is_one_less_the_uncertain_pixels_per_mask_pixel():
    """On a 10 x 10 grid: a mask of 20 sure pixels plus 4 unsure ones (24 in all), 3 unsure pixels
    outside it, and pixels at exactly +-2 counted sure: 1 - 7 / 24. An empty mask counts over one pixel."""
    logits = np.full((2, 10, 10), -9.0, dtype=np.float32)
    logits[0, :2] = 5.0
    logits[0, 2, :4] = 1.0
    logits[0, 3, :3] = -1.0
    logits[0, 4, :2] = 2.0
    logits[0, 5, :2] = -2.0
    masks = logits > 0
    assert masks[0].sum() == 26  # the two pixels at +2 are lung
    masks[0, 4, :2] = False  # a mask the cleaning trimmed: 24 pixels
    logits[1, 0, :3] = 0.5
    masks[1] = False
    np.testing.assert_allclose(certainty(logits, masks), [1 - 7 / 24, 1 - 3])


def test_the_score_is_the_calibrated_certainty_and_below_bad_dice_it_flags():
    mask = lungs(seed=3)
    reference = QCReference(bad_dice=0.93, dice_offset=0.5, dice_slope=0.5, n_calibration=30)
    good = reference.assess(mask, mask, certainty=0.88, agreement=0.5, map_agreement=0.2)
    assert good["qc_score"] == pytest.approx(0.94) and not good["flag"] and good["reason"] == ""
    assert good["certainty"] == 0.88 and good["agreement"] == 0.5 and good["map_agreement"] == 0.2
    low = reference.assess(mask, mask, certainty=0.84, agreement=0.99, map_agreement=0.99)
    assert low["qc_score"] == pytest.approx(0.92) and low["flag"]
    assert low["reason"] == (
        "estimated Dice 0.920 < 0.93 + 0.000 (certainty 0.840, calibrated as +0.500 + 0.500 x certainty, "
        "spread 0.000)"
    )
    assert reference.assess(mask, mask, 1.2, 0.9)["qc_score"] == 1.0  # a Dice, at most 1
    assert np.isnan(reference.assess(mask, mask, 0.9, 0.9)["map_agreement"])  # no head


def test_a_mask_is_flagged_while_its_dice_may_be_bad_within_the_estimates_spread():
    """Estimated 0.94 and 0.95 with a spread of 0.015: the first may be below 0.93, the second not."""
    mask = lungs(seed=3)
    reference = QCReference(bad_dice=0.93, dice_offset=0.02, dice_spread=0.015, n_calibration=5)
    near = reference.assess(mask, mask, certainty=0.92, agreement=0.99)
    assert near["qc_score"] == pytest.approx(0.94) and near["flag"]
    assert near["reason"] == (
        "estimated Dice 0.940 < 0.93 + 0.015 (certainty 0.920, calibrated as +0.020 + 1.000 x certainty, "
        "spread 0.015)"
    )
    clear = reference.assess(mask, mask, certainty=0.93, agreement=0.99)
    assert clear["qc_score"] == pytest.approx(0.95) and not clear["flag"] and clear["reason"] == ""


def test_lungs_in_one_body_are_flagged_whatever_the_score(reference):
    one = lungs(seed=3, right_scale=0.0)
    row = reference.assess(one, one, certainty=0.99, agreement=0.99, map_agreement=0.99)
    assert row["flag"] and row["reason"] == "lungs in one body (expected two)"
    # Counted on the raw mask: a part of 0.6% of the image is a body, a speck is not.
    raw = lungs(seed=3)
    raw[2:12, 2:12] = True
    raw[120:123, 60:63] = True
    assert reference.assess(raw, lungs(seed=3), 0.99, 0.99, 0.99)["components"] == 3


def test_the_reference_travels_as_plain_values(reference):
    again = QCReference.from_dict(reference.to_dict())
    assert again == reference
    assert again.to_dict() == {
        "bad_dice": 0.93,
        "dice_offset": 0.02,
        "dice_slope": 1.0,
        "dice_spread": 0.0,
        "n_calibration": 5,
    }


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


def test_the_flags_precision_and_recall_are_counted_against_true_dice_below_the_bar():
    """Six masks, three flagged; four below 0.93 (one at exactly 0.93 is not): 2 of 3 flags are right and 2
    of the 4 bad masks are flagged."""
    flags = [1, 1, 0, 0, 1, 0, 1]
    dice = [0.90, 0.95, 0.80, 0.99, 0.92, 0.85, 0.93]
    assert flag_precision_recall(flags[:6], dice[:6], 0.93) == (2 / 3, 2 / 4)
    assert flag_precision_recall(flags, dice, 0.93) == (2 / 4, 2 / 4)
    assert flag_precision_recall([0, 0], [0.5, 0.99], 0.93) == (None, 0.0)  # nothing flagged
    assert flag_precision_recall([1, 0], [0.95, 0.99], 0.93) == (0.0, None)  # nothing bad


def test_shape_statistics_of_the_two_largest_bodies_wherever_they_are_labelled():
    """A speck labelled first and three bodies: the two largest are the lungs, a body of exactly 0.5% of the
    image counts as a part, and an empty mask has no parts, balance or solidity."""
    mask = np.zeros((100, 100), dtype=bool)
    mask[0:2, 0:2] = True  # a speck, labelled first
    mask[10:15, 0:10] = True  # 50 pixels: exactly 0.5% of the image
    mask[20:80, 20:40] = True  # 1200 pixels
    mask[20:80, 60:90] = True  # 1800 pixels, the largest
    stats = shape_stats(mask)
    assert stats["components"] == 3
    assert stats["balance"] == pytest.approx(1200 / 1800)
    assert stats["solidity"] == pytest.approx(1.0)
    assert shape_stats(np.zeros((20, 20), dtype=bool)) == {
        "lung_fraction": 0.0,
        "components": 0.0,
        "balance": 0.0,
        "solidity": 0.0,
    }


def test_a_head_logit_above_zero_is_lung_and_no_lungs_on_either_side_agree():
    head = LungMapHead(channels=8, width=4).eval()
    embeddings = torch.rand(1, 8, 16, 16)
    full = np.ones((1, 64, 64), dtype=bool)
    with torch.no_grad():
        head.net[-1].weight.zero_()
        head.net[-1].bias.fill_(0.5)
    assert map_agreement(head, embeddings, full) == pytest.approx([1.0])
    with torch.no_grad():
        head.net[-1].bias.fill_(-1.0)
    assert map_agreement(head, embeddings, ~full) == pytest.approx([1.0])


def test_the_default_box_move_is_three_percent_of_the_side():
    model = tiny_sam(seed=0).eval()
    with torch.no_grad():
        embeddings = model.encode(torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0)))
    boxes = torch.tensor([[60.0, 60.0, 200.0, 200.0]])
    assert prompt_agreement(model, embeddings, boxes) == pytest.approx(
        prompt_agreement(model, embeddings, boxes, shift=0.03)
    )
    assert prompt_agreement(model, embeddings, boxes) != pytest.approx(
        prompt_agreement(model, embeddings, boxes, shift=0.2)
    )


def test_two_validation_masks_give_a_spread_and_it_travels_with_the_reference():
    calibrated = QCReference.calibrate(np.array([0.90, 0.92]), np.array([0.95, 0.96]), bad_dice=0.93)
    assert calibrated.dice_spread == pytest.approx(np.std([0.05, 0.04], ddof=1))
    assert QCReference.from_dict(calibrated.to_dict()) == calibrated


def test_the_estimate_is_a_dice_between_0_and_1_and_one_at_the_bar_is_not_flagged():
    mask = lungs(seed=3)
    floor = QCReference(bad_dice=0.5, dice_offset=-0.2).assess(mask, mask, certainty=0.1, agreement=0.9)
    assert floor["qc_score"] == 0.0
    at_bar = QCReference(bad_dice=0.75, dice_offset=0.25).assess(mask, mask, certainty=0.5, agreement=0.9)
    assert at_bar["qc_score"] == 0.75 and not at_bar["flag"]


def test_two_reasons_are_joined_by_a_semicolon():
    one = lungs(seed=3, right_scale=0.0)
    row = QCReference(bad_dice=0.93).assess(one, one, certainty=0.5, agreement=0.99)
    assert row["reason"] == (
        "estimated Dice 0.500 < 0.93 + 0.000 (certainty 0.500, calibrated as +0.000 + 1.000 x certainty, "
        "spread 0.000); lungs in one body (expected two)"
    )


def test_the_heads_logits_are_resized_bilinearly_before_the_threshold():
    """A head whose logits are the ramp i - 7.3 over 16 columns: resized bilinearly to 64 columns it crosses
    zero at column 30.7, so its lungs are columns 31 and on, exactly the mask's (a nearest resize starts
    them at column 32)."""
    head = LungMapHead(channels=1, width=1).eval()
    with torch.no_grad():
        for layer in head.net:
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
                layer.bias.zero_()
                layer.weight[0, 0, layer.weight.shape[2] // 2, layer.weight.shape[3] // 2] = 1.0
        head.net[-1].bias.fill_(-17.3)
    # Values of 10 and more pass GELU unchanged (to 1e-20), so the head's output is the ramp less 17.3.
    embeddings = (torch.arange(16.0) + 10.0).expand(1, 1, 16, 16).clone()
    mask = np.zeros((1, 64, 64), dtype=bool)
    mask[:, :, 31:] = True
    assert map_agreement(head, embeddings, mask) == pytest.approx([1.0])
