"""cxrmask.segment.prompts: box prompts from masks, outward jitter, per-lung boxes and the learned prior."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxrmask.errors import ConfigError, InputError
from cxrmask.segment.preprocess import scale_boxes
from cxrmask.segment.prompts import BoxPrior, jitter_box, lung_boxes, mask_box


def _rect(mask: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Set the inclusive rectangle [x0..x1] x [y0..y1]."""
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def two_lungs(height: int = 100, width: int = 120) -> np.ndarray:
    """Right lung (image left) larger than the left lung (image right), plus a small speck."""
    mask = np.zeros((height, width), dtype=bool)
    _rect(mask, 10, 20, 50, 80)
    _rect(mask, 70, 25, 105, 75)
    _rect(mask, 0, 0, 2, 2)
    return mask


def test_mask_box_is_inclusive_x_then_y() -> None:
    mask = np.zeros((30, 40), dtype=bool)
    mask[5, 7] = mask[12, 31] = True
    box = mask_box(mask)
    assert box.dtype == np.float32
    assert box.tolist() == [7, 5, 31, 12]
    single = np.zeros((30, 40), dtype=bool)
    single[29, 39] = True
    assert mask_box(single).tolist() == [39, 29, 39, 29]


def test_mask_box_of_an_empty_mask_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty mask"):
        mask_box(np.zeros((8, 8), dtype=bool))


def test_jitter_moves_every_side_outward_within_the_image() -> None:
    rng = np.random.default_rng(0)
    box = np.array([20, 30, 60, 70], dtype=np.float32)
    jittered = np.stack([jitter_box(box, 8, 100, rng) for _ in range(2000)])
    assert jittered.dtype == np.float32
    assert np.all(jittered[:, :2] <= box[:2]) and np.all(jittered[:, :2] >= box[:2] - 8)
    assert np.all(jittered[:, 2:] >= box[2:]) and np.all(jittered[:, 2:] <= box[2:] + 8)
    # Uniform on [0, max]: the shifts cover the range rather than sitting at one value.
    shifts = np.abs(jittered - box)
    assert shifts.min() < 0.1 and shifts.max() > 7.9
    assert abs(shifts.mean() - 4) < 0.3


def test_jitter_is_clipped_to_0_and_size_minus_1() -> None:
    rng = np.random.default_rng(1)
    box = np.array([1, 2, 97, 98], dtype=np.float32)
    jittered = np.stack([jitter_box(box, 20, 100, rng) for _ in range(500)])
    assert jittered.min() >= 0 and jittered.max() <= 99
    assert (jittered[:, 0] == 0).mean() > 0.5 and (jittered[:, 2] == 99).mean() > 0.5


def test_zero_jitter_keeps_the_box_and_a_seed_repeats_it() -> None:
    box = np.array([5, 6, 7, 8], dtype=np.float32)
    assert np.array_equal(jitter_box(box, 0, 64, np.random.default_rng(2)), box)
    first = jitter_box(box, 5, 64, np.random.default_rng(3))
    assert np.array_equal(first, jitter_box(box, 5, 64, np.random.default_rng(3)))


def test_lung_boxes_two_components_left_to_right_ignoring_specks() -> None:
    boxes = lung_boxes(two_lungs())
    assert boxes.shape == (2, 4)
    assert boxes.tolist() == [[10, 20, 50, 80], [70, 25, 105, 75]]


def test_lung_boxes_orders_by_position_not_size() -> None:
    mask = np.zeros((60, 60), dtype=bool)
    _rect(mask, 5, 5, 15, 20)  # small, image left
    _rect(mask, 30, 5, 55, 50)  # large, image right
    assert lung_boxes(mask).tolist() == [[5, 5, 15, 20], [30, 5, 55, 50]]


def test_lung_boxes_splits_one_merged_component_at_its_midline() -> None:
    mask = np.zeros((100, 120), dtype=bool)
    _rect(mask, 10, 20, 50, 80)
    _rect(mask, 70, 25, 105, 75)
    _rect(mask, 50, 40, 70, 45)  # the lungs touch through a bridge
    boxes = lung_boxes(mask)
    mid = (10 + 105) / 2
    assert boxes.shape == (2, 4)
    left, right = boxes
    assert left[0] == 10 and right[2] == 105
    assert left[2] <= mid < right[0]
    assert right[0] - left[2] == 1  # the split loses no column
    assert left[1] == 20 and left[3] == 80 and right[1] == 25 and right[3] == 75


def test_lung_boxes_of_an_empty_mask_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty mask"):
        lung_boxes(np.zeros((8, 8), dtype=bool))


def test_box_prior_averages_normalised_boxes_over_sizes() -> None:
    small = np.zeros((100, 100), dtype=bool)
    _rect(small, 10, 20, 79, 89)
    large = np.zeros((200, 400), dtype=bool)
    _rect(large, 80, 20, 239, 179)
    prior = BoxPrior.fit([small, large], margin=0.0)
    assert prior.n_masks == 2
    expected = np.mean([[0.10, 0.20, 0.79, 0.89], [0.20, 0.10, 239 / 400, 179 / 200]], axis=0)
    assert np.allclose(prior.whole, expected)
    assert len(prior.lungs) == 2


def test_box_prior_gives_back_the_training_box_at_any_size() -> None:
    """Fitted on one mask, with no margin, the prompt is the box fine-tuning fed the model."""
    mask = two_lungs(128, 128)
    prior = BoxPrior.fit([mask], margin=0.0)
    box = prior.boxes("box_prior", 128, 128)
    assert box.shape == (1, 4)
    assert np.allclose(box[0], mask_box(mask), atol=1e-6)
    assert np.allclose(prior.boxes("per_lung", 128, 128), lung_boxes(mask), atol=1e-6)
    # At the encoder's size the prior matches scale_boxes, which makes the fine-tuning boxes.
    assert np.allclose(prior.boxes("box_prior", 1024, 1024)[0], scale_boxes(mask_box(mask), 128, 128, 1024))
    assert np.allclose(
        prior.boxes("per_lung", 1024, 1024), scale_boxes(lung_boxes(mask), 128, 128, 1024), atol=1e-4
    )


def test_box_prior_margin_widens_each_side_by_a_fraction_of_the_side() -> None:
    mask = np.zeros((100, 200), dtype=bool)
    _rect(mask, 40, 30, 159, 69)
    tight = BoxPrior.fit([mask], margin=0.0).boxes("box_prior", 100, 200)[0]
    wide = BoxPrior.fit([mask], margin=0.05).boxes("box_prior", 100, 200)[0]
    assert np.allclose(wide - tight, [-0.05 * 200, -0.05 * 100, 0.05 * 200, 0.05 * 100])


def test_box_prior_boxes_stay_inside_the_image() -> None:
    mask = np.zeros((50, 50), dtype=bool)
    _rect(mask, 1, 1, 48, 48)
    boxes = BoxPrior.fit([mask], margin=0.3).boxes("box_prior", 64, 80)
    assert boxes.tolist() == [[0, 0, 79, 63]]


def test_box_prior_per_lung_gives_two_boxes_left_then_right() -> None:
    prior = BoxPrior.fit([two_lungs(), np.fliplr(two_lungs())], margin=0.01)
    boxes = prior.boxes("per_lung", 1024, 1024)
    assert boxes.shape == (2, 4)
    assert boxes[0, 0] < boxes[1, 0] and boxes[0, 2] < boxes[1, 2]
    assert np.all(boxes[:, :2] < boxes[:, 2:])


def test_box_prior_unknown_prompt_is_a_config_error() -> None:
    prior = BoxPrior.fit([two_lungs()], margin=0.0)
    with pytest.raises(ConfigError, match=r"segment\.prompt: 'centre'"):
        prior.boxes("centre", 64, 64)


def test_box_prior_needs_masks_and_rejects_an_empty_one() -> None:
    with pytest.raises(InputError, match="no masks"):
        BoxPrior.fit([], margin=0.0)
    with pytest.raises(InputError, match="empty mask"):
        BoxPrior.fit([two_lungs(), np.zeros((100, 120), dtype=bool)], margin=0.0)


def test_box_prior_save_load_round_trip(tmp_path: Path) -> None:
    prior = BoxPrior.fit([two_lungs(), two_lungs(90, 150)], margin=0.03)
    path = tmp_path / "prior" / "box_prior.json"
    prior.save(path)
    assert set(json.loads(path.read_text())) == {"whole", "lungs", "margin", "n_masks"}
    loaded = BoxPrior.load(path)
    assert loaded == prior
    for prompt in ("box_prior", "per_lung"):
        assert np.array_equal(loaded.boxes(prompt, 1024, 1024), prior.boxes(prompt, 1024, 1024))
