"""cxrmask.segment.postprocess: component clean-up, hole filling, the loose mask's dilation and Dice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.measure import label

from cxrmask.config import LooseSettings
from cxrmask.errors import ConfigError
from cxrmask.imageio import read_mask, write_png
from cxrmask.segment.postprocess import (
    clean_mask,
    dice,
    dilate,
    dilation_radius,
    fill_mask_holes,
    keep_largest,
)
from cxrmask.stages.dilate_masks import dilate_masks


def _lungs_with_noise() -> np.ndarray:
    """Two lungs (900 and 600 px), a 100 px blob, two specks, one diagonal-touching pixel pair."""
    mask = np.zeros((80, 80), dtype=bool)
    mask[10:40, 5:35] = True  # 900
    mask[10:40, 45:65] = True  # 600
    mask[60:70, 60:70] = True  # 100
    mask[2, 2] = True
    mask[75, 10] = mask[76, 11] = True  # one 8-connected component of 2
    return mask


def test_keep_largest_keeps_the_two_lungs() -> None:
    mask = _lungs_with_noise()
    kept = keep_largest(mask, 2)
    assert kept.dtype == bool
    assert kept.sum() == 1500
    assert kept[10:40, 5:35].all() and kept[10:40, 45:65].all()
    assert not kept[60:, :].any() and not kept[2, 2]


def test_keep_largest_uses_8_connectivity() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:6, 2:6] = True  # 16
    for i in range(6):  # a diagonal line of 6 pixels: one component only with diagonal neighbours
        mask[10 + i, 10 + i] = True
    mask[0, 19] = mask[1, 19] = mask[2, 19] = True  # 3
    kept = keep_largest(mask, 2)
    assert kept.sum() == 22
    assert not kept[:3, 19].any()


def test_keep_largest_zero_or_enough_keeps_everything() -> None:
    mask = _lungs_with_noise()
    assert np.array_equal(keep_largest(mask, 0), mask)
    assert np.array_equal(keep_largest(mask, 5), mask)
    empty = np.zeros((10, 10), dtype=bool)
    assert not keep_largest(empty, 2).any()


def test_clean_mask_removes_specks_and_fills_holes() -> None:
    mask = _lungs_with_noise()
    mask[20:25, 15:20] = False  # a hole in the right lung (a pacemaker, a vessel)
    mask[15:18, 50:52] = False  # a hole in the left lung
    cleaned = clean_mask(mask.astype(np.uint8) * 255, keep_components=2, fill_holes=True)
    assert cleaned.dtype == bool
    assert cleaned.sum() == 1500
    assert cleaned[20:25, 15:20].all() and cleaned[15:18, 50:52].all()


def test_clean_mask_does_not_fill_a_notch_open_to_the_outside() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:35, 5:35] = True
    mask[15:25, 0:20] = False  # a bay cut in from the left edge: not a hole
    assert np.array_equal(clean_mask(mask, keep_components=2), mask)


@pytest.mark.parametrize("seed", range(5))
def test_fill_mask_holes_matches_scipy_on_random_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        height, width = rng.integers(1, 48, size=2)
        mask = rng.random((height, width)) < rng.random()
        assert np.array_equal(fill_mask_holes(mask), ndimage.binary_fill_holes(mask))


def test_fill_mask_holes_edge_cases() -> None:
    assert fill_mask_holes(np.ones((5, 5), dtype=np.uint8)).all()
    assert not fill_mask_holes(np.zeros((5, 5), dtype=bool)).any()
    # The background is 4-connected (binary_fill_holes' default): a pixel that touches the outside
    # only diagonally is a hole and gets filled; with 8-connectivity it would stay open.
    diagonal = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=bool)
    filled = fill_mask_holes(diagonal)
    assert filled[2, 2]
    assert np.array_equal(filled, diagonal | (np.arange(16).reshape(4, 4) == 10))


def test_clean_mask_options_off_change_nothing() -> None:
    mask = _lungs_with_noise()
    mask[20:25, 15:20] = False
    assert np.array_equal(clean_mask(mask, keep_components=0, fill_holes=False), mask)


@pytest.mark.parametrize("radius", [3, 7.5, 20])
def test_dilating_a_pixel_gives_a_euclidean_disk(radius: float) -> None:
    mask = np.zeros((61, 61), dtype=bool)
    mask[30, 30] = True
    grown = dilate(mask, radius)
    ys, xs = np.mgrid[:61, :61]
    disk = (ys - 30) ** 2 + (xs - 30) ** 2 <= radius**2
    assert np.array_equal(grown, disk)
    assert abs(grown.sum() - np.pi * radius**2) / (np.pi * radius**2) < 0.05
    # Exact radius along the axes and no square corners (a square element would reach these).
    assert grown[30, 30 + int(radius)] and not grown[30, 31 + int(radius)]
    assert not grown[30 + int(radius), 30 + int(radius)]


def test_dilation_grows_a_shape_by_exactly_the_radius() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[40:60, 30:50] = True
    grown = dilate(mask, 10)
    assert grown[40:60, 20:60].all()
    assert not grown[40:60, 19].any() and not grown[40:60, 61].any()
    assert grown[mask].all()


def test_dilation_of_nothing_or_by_zero() -> None:
    mask = np.zeros((20, 20), dtype=np.uint8)
    assert not dilate(mask, 5).any() and dilate(mask, 5).dtype == bool
    mask[5:8, 5:8] = 1
    assert np.array_equal(dilate(mask, 0), mask.astype(bool))


def test_dilation_radius_units() -> None:
    assert dilation_radius(40, "px1024", 1024) == 40
    assert dilation_radius(40, "px1024", 256) == 10
    assert dilation_radius(40, "px1024", 2048) == 80
    assert dilation_radius(0.05, "fraction", 256) == pytest.approx(12.8)
    with pytest.raises(ConfigError, match=r"loose\.units: 'mm'"):
        dilation_radius(4, "mm", 256)


def test_loose_mask_keeps_its_lungs_apart_or_merges_them_as_the_radius_says() -> None:
    """The two lungs 10 px apart merge only once the radius reaches half the gap."""
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 5:25] = True
    mask[10:30, 35:55] = True
    assert label(dilate(mask, 4.9), connectivity=1).max() == 2
    assert label(dilate(mask, 5), connectivity=1).max() == 1


def test_dice_values_and_edge_cases() -> None:
    empty = np.zeros((10, 10), dtype=bool)
    half = empty.copy()
    half[:5] = True
    quarter = empty.copy()
    quarter[:5, :5] = True
    assert dice(empty, empty) == 1.0
    assert dice(half, empty) == 0.0 and dice(empty, half) == 0.0
    assert dice(half, half) == 1.0
    assert dice(half, ~half) == 0.0
    assert dice(half, quarter) == pytest.approx(2 * 25 / (50 + 25))
    assert dice(half.astype(np.uint8) * 255, half) == 1.0
    assert isinstance(dice(half, quarter), float)


def _blobs() -> np.ndarray:
    """Three separate squares of 25, 16 and 4 pixels; the largest has a one-pixel hole."""
    mask = np.zeros((20, 20), dtype=bool)
    mask[1:6, 1:6] = True
    mask[3, 3] = False
    mask[10:14, 10:14] = True
    mask[17:19, 1:3] = True
    return mask


def test_keep_largest_one_keeps_only_the_largest_component() -> None:
    kept = keep_largest(_blobs(), 1)
    assert label(kept, connectivity=2).max() == 1 and kept[1:6, 1:6].sum() == 24 and kept.sum() == 24


def test_clean_mask_by_default_keeps_two_lungs_and_fills_their_holes() -> None:
    cleaned = clean_mask(_blobs())
    assert label(cleaned, connectivity=2).max() == 2
    assert cleaned[3, 3] and cleaned.sum() == 25 + 16


def test_a_radius_of_one_pixel_grows_a_point_into_a_plus() -> None:
    point = np.zeros((5, 5), dtype=bool)
    point[2, 2] = True
    grown = dilate(point, 1)
    assert grown.sum() == 5 and grown[1, 2] and grown[2, 1] and not grown[1, 1]


@pytest.mark.parametrize(("height", "width"), [(300, 200), (200, 300), (256, 256), (410, 700)])
@pytest.mark.parametrize(("radius", "units"), [(40.0, "px1024"), (0.03, "fraction")])
def test_the_loose_stage_grows_each_mask_by_its_own_widths_radius(tmp_path, height, width, radius, units):
    """Every loose pixel lies within the radius scaled to that image's width of a tight one, and every
    pixel within it is loose; the table's radius is the same number."""

    tight = np.zeros((height, width), dtype=bool)
    tight[height // 4 : height // 2, width // 5 : width // 3] = True
    tight[height // 3 : 3 * height // 4, width // 2 : 4 * width // 5] = True
    (tmp_path / "tight").mkdir()
    write_png(tmp_path / "tight" / "a.png", tight)
    pd.DataFrame({"image": ["a.png"]}).to_csv(tmp_path / "tight.csv", index=False)
    table = dilate_masks(
        str(tmp_path / "tight"),
        str(tmp_path / "tight.csv"),
        None,
        str(tmp_path / "loose"),
        str(tmp_path / "loose.csv"),
        LooseSettings(radius=radius, units=units),
    )
    expected = radius * width / 1024 if units == "px1024" else radius * width
    assert table["radius_px"].tolist() == [pytest.approx(expected)]
    loose = read_mask(tmp_path / "loose" / "a.png")
    distance = ndimage.distance_transform_edt(~tight)
    assert np.array_equal(loose, distance <= expected)
    assert distance[loose].max() == pytest.approx(expected, abs=1.0)
