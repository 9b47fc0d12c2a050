"""Lesion-aware augmentation: opacities inside the lungs only, never darker; masks and held-out kept."""

from __future__ import annotations

import numpy as np
import pytest

from cxrmask.segment.dataset import SegData
from cxrmask.segment.opacities import (
    SOFT_TISSUE_PERCENTILE,
    opacity_field,
    paint_opacities,
    with_opacities,
)
from cxrmask.segment.preprocess import resize_mask


def chest(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Dark lungs (grey 40) in brighter tissue (a gradient from 150 to 210), and the lungs' mask."""
    image = np.tile(np.linspace(150, 210, size), (size, 1)).astype(np.uint8)
    lungs = np.zeros((size, size), bool)
    lungs[size // 6 : -size // 6, size // 8 : size // 2 - 3] = True
    lungs[size // 6 : -size // 6, size // 2 + 3 : -size // 8] = True
    image[lungs] = 40
    return image, lungs


def test_the_field_lies_inside_the_lungs_in_zero_to_one_and_is_not_empty():
    _, lungs = chest()
    for seed in range(20):
        field = opacity_field(lungs, np.random.default_rng(seed))
        assert field.min() >= 0 and field.max() <= 1
        assert not field[~lungs].any()
        assert field[lungs].max() > 0.5


def test_painting_brightens_inside_toward_the_tissue_and_leaves_outside_alone():
    image, lungs = chest()
    tissue = np.percentile(image[~lungs], SOFT_TISSUE_PERCENTILE)
    for seed in range(20):
        painted = paint_opacities(image, lungs, np.random.default_rng(seed))
        assert painted.dtype == np.uint8
        np.testing.assert_array_equal(painted[~lungs], image[~lungs])
        assert (painted >= image).all()
        assert painted[lungs].max() <= round(tissue)
        assert (painted[lungs] > image[lungs]).sum() > 10


def test_a_mask_on_a_coarser_grid_is_brought_to_the_image_grid():
    image, lungs = chest(128)
    coarse = lungs[::2, ::2]
    upsampled = resize_mask(coarse, 128)
    assert (upsampled != lungs).mean() < 0.02
    painted = paint_opacities(image, coarse, np.random.default_rng(0))
    np.testing.assert_array_equal(painted[~upsampled], image[~upsampled])
    assert (painted[upsampled] > image[upsampled]).any()


def test_a_mask_with_no_lung_changes_nothing():
    image, lungs = chest()
    np.testing.assert_array_equal(
        paint_opacities(image, np.zeros_like(lungs), np.random.default_rng(0)), image
    )


@pytest.fixture
def data() -> SegData:
    image, lungs = chest()
    n = 5
    return SegData(
        keys=np.array([f"img{i}" for i in range(n)]),
        images=np.stack([np.roll(image, i, axis=1) for i in range(n)]),
        masks=np.stack([np.roll(lungs, i, axis=1) for i in range(n)]),
        boxes=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        split=np.array(["train", "val", "train", "test", "train"]),
    )


def test_copies_are_appended_to_train_with_their_masks_and_boxes(data):
    out = with_opacities(data, 2, seed=0)
    assert len(out) == len(data) + 3 * 2
    np.testing.assert_array_equal(out.images[: len(data)], data.images)
    added = slice(len(data), None)
    assert out.keys[added].tolist() == [
        "img0+opacity1",
        "img0+opacity2",
        "img2+opacity1",
        "img2+opacity2",
        "img4+opacity1",
        "img4+opacity2",
    ]
    source = [0, 0, 2, 2, 4, 4]
    np.testing.assert_array_equal(out.masks[added], data.masks[source])
    np.testing.assert_array_equal(out.boxes[added], data.boxes[source])
    assert set(out.split[added]) == {"train"}
    for painted, original, lungs in zip(
        out.images[added], data.images[source], data.masks[source], strict=True
    ):
        np.testing.assert_array_equal(painted[~lungs], original[~lungs])
        assert (painted[lungs] > original[lungs]).any()
    assert not np.array_equal(out.images[len(data)], out.images[len(data) + 1])
    np.testing.assert_array_equal(out.subset("val").images, data.subset("val").images)
    np.testing.assert_array_equal(out.subset("test").images, data.subset("test").images)


def test_copies_are_the_same_for_a_seed_and_none_for_zero(data):
    np.testing.assert_array_equal(with_opacities(data, 1, 3).images, with_opacities(data, 1, 3).images)
    assert not np.array_equal(with_opacities(data, 1, 3).images, with_opacities(data, 1, 4).images)
    assert with_opacities(data, 0, 0) is data
