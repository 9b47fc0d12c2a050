"""cxrmask.segment.dataset: the fine-tuning arrays, boxes and masks known exactly on non-square images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from cxrmask.errors import InputError
from cxrmask.imageio import write_png
from cxrmask.segment.dataset import SegData, assign_split, load_pair, prepare
from cxrmask.segment.pairs import SegPair
from cxrmask.segment.preprocess import resize_grey, resize_mask

SIZES = [(300, 200), (200, 300), (256, 256), (410, 700)]  # (height, width)


def rectangle(height: int, width: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def write_pair(root: Path, key: str, image: np.ndarray, *masks: np.ndarray) -> SegPair:
    """An image and its mask files (one per lung when several) in the formats the pipeline reads."""
    write_png(root / f"{key}.png", image)
    paths = []
    for index, mask in enumerate(masks):
        paths.append(root / f"{key}_mask{index}.png")
        write_png(paths[-1], mask)
    return SegPair(key, root / f"{key}.png", tuple(paths))


def grey(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def test_a_pairs_lungs_are_the_union_of_its_mask_files(tmp_path):
    left = rectangle(60, 80, (10, 50), (5, 30))
    right = rectangle(60, 80, (12, 48), (45, 75))
    image, mask = load_pair(write_pair(tmp_path, "a", grey(60, 80), left, right))
    assert image.shape == (60, 80) and image.dtype == np.uint8
    assert np.array_equal(mask, left | right)


def test_a_mask_of_another_size_is_named_with_both_sizes(tmp_path):
    pair = write_pair(tmp_path, "a", grey(60, 80), rectangle(80, 60, (10, 20), (10, 20)))
    with pytest.raises(
        InputError, match=r"a_mask0\.png: mask is \(60, 80\) but its image .*a\.png is \(80, 60\)"
    ):
        load_pair(pair)


def test_an_empty_mask_is_named(tmp_path):
    pair = write_pair(tmp_path, "a", grey(60, 80), np.zeros((60, 80), dtype=bool))
    with pytest.raises(InputError, match=r"a_mask0\.png: empty mask .* for .*a\.png"):
        load_pair(pair)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_boxes_are_the_masks_box_scaled_by_each_side_to_the_input(tmp_path, height, width):
    """The box of a rectangle is known exactly: x scales by input / width, y by input / height."""
    rows, cols = (height // 5, 3 * height // 4), (width // 6, width // 2)
    pairs = [
        write_pair(tmp_path, "a", grey(height, width), rectangle(height, width, rows, cols)),
        write_pair(tmp_path, "b", grey(height, width, 1), rectangle(height, width, (1, height - 1), (2, 9))),
    ]
    data = prepare(pairs, input_size=64, mask_size=32, val_fraction=0.5, seed=0)
    x, y = 64 / width, 64 / height
    expected = [cols[0] * x, rows[0] * y, (cols[1] - 1) * x, (rows[1] - 1) * y]
    np.testing.assert_allclose(data.boxes[0], expected, rtol=1e-6)
    np.testing.assert_allclose(data.boxes[1], [2 * x, 1 * y, 8 * x, (height - 2) * y], rtol=1e-6)
    assert data.boxes.dtype == np.float32
    assert data.images.shape == (2, 64, 64) and data.images.dtype == np.uint8
    assert np.array_equal(data.images[0], resize_grey(grey(height, width), 64))
    assert data.masks.shape == (2, 32, 32)
    assert np.array_equal(data.masks[0], resize_mask(rectangle(height, width, rows, cols), 32))
    assert data.keys.tolist() == ["a", "b"] and sorted(data.split.tolist()) == ["train", "val"]


def test_a_bad_pair_fails_by_default_and_is_skipped_and_counted_on_request(tmp_path, caplog):
    good = [write_pair(tmp_path, k, grey(40, 40), rectangle(40, 40, (5, 30), (5, 30))) for k in "abc"]
    bad = write_pair(tmp_path, "bad", grey(40, 40), np.zeros((40, 40), dtype=bool))
    with pytest.raises(InputError, match=r"bad_mask0\.png: empty mask.*set data\.on_bad_image: skip"):
        prepare([*good, bad], 32, 16, 0.34, seed=0)
    with caplog.at_level(logging.WARNING, logger="cxrmask.segment.dataset"):
        data = prepare([*good, bad], 32, 16, 0.34, seed=0, on_bad="skip")
    assert data.keys.tolist() == ["a", "b", "c"]
    assert "1 of 4 pairs skipped" in caplog.text


def test_fewer_than_two_usable_pairs_is_an_error_saying_why(tmp_path):
    one = write_pair(tmp_path, "a", grey(40, 40), rectangle(40, 40, (5, 30), (5, 30)))
    bad = write_pair(tmp_path, "bad", grey(40, 40), np.zeros((40, 40), dtype=bool))
    with pytest.raises(
        InputError, match="only 1 usable image/mask pairs: fine-tuning needs a train and a val"
    ):
        prepare([one, bad], 32, 16, 0.5, seed=0, on_bad="skip")


@pytest.mark.parametrize(
    ("n", "fraction", "n_val"), [(10, 0.2, 2), (10, 0.0, 1), (2, 0.9, 1), (5, 0.5, 2), (1, 0.5, 0)]
)
def test_the_two_way_split_takes_its_share_and_leaves_one_of_each(n, fraction, n_val):
    split = assign_split(n, fraction, seed=3)
    assert (split == "val").sum() == n_val and (split == "train").sum() == n - n_val
    assert np.array_equal(split, assign_split(n, fraction, seed=3))


def test_grouped_pairs_split_three_ways_keeping_each_patient_on_one_side(tmp_path):
    pairs = [
        write_pair(tmp_path, f"k{i}", grey(40, 40, i), rectangle(40, 40, (5, 30), (5, 30))) for i in range(12)
    ]
    groups = {f"k{i}": f"p{i // 2}" for i in range(12)}
    data = prepare(pairs, 32, 16, 0.25, seed=0, test_fraction=0.25, groups=groups)
    assert set(data.split) == {"train", "val", "test"}
    for patient in set(groups.values()):
        assert len({s for k, s in zip(data.keys, data.split, strict=True) if groups[k] == patient}) == 1
    # A test fraction alone also splits three ways, each image its own patient.
    assert set(prepare(pairs, 32, 16, 0.25, seed=0, test_fraction=0.25).split) == {"train", "val", "test"}


def test_subsets_and_the_file_keep_every_array_aligned(tmp_path):
    n = 6
    data = SegData(
        keys=np.array([f"k{i}" for i in range(n)]),
        images=np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2),
        masks=np.arange(n * 4).reshape(n, 2, 2) % 3 == 0,
        boxes=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        split=np.array(["train", "val", "train", "test", "val", "train"]),
    )
    val = data.subset("val")
    assert val.keys.tolist() == ["k1", "k4"] and len(val) == 2
    for name in ("images", "masks", "boxes"):
        assert np.array_equal(getattr(val, name), getattr(data, name)[[1, 4]])
    part = data.subset_range(2, 5)
    assert part.keys.tolist() == ["k2", "k3", "k4"] and part.split.tolist() == ["train", "test", "val"]
    for name in ("images", "masks", "boxes"):
        assert np.array_equal(getattr(part, name), getattr(data, name)[2:5])
    data.save(tmp_path / "set.npz")
    again = SegData.load(tmp_path / "set.npz")
    for name in ("keys", "images", "masks", "boxes", "split"):
        assert np.array_equal(getattr(again, name), getattr(data, name))
        assert getattr(again, name).dtype == getattr(data, name).dtype


def test_a_file_holding_a_pickled_array_is_refused(tmp_path):
    planted = tmp_path / "planted.npz"
    np.savez(planted, keys=np.array([object()], dtype=object), images=np.zeros((1, 2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="allow_pickle"):
        SegData.load(planted)


def test_a_skipped_pair_is_named_and_the_pairs_after_it_are_kept(tmp_path, caplog):
    bad = write_pair(tmp_path, "bad", grey(40, 40), np.zeros((40, 40), dtype=bool))
    good = [write_pair(tmp_path, k, grey(40, 40), rectangle(40, 40, (5, 30), (5, 30))) for k in "ab"]
    with caplog.at_level(logging.WARNING, logger="cxrmask.segment.dataset"):
        data = prepare([bad, *good], 32, 16, 0.5, seed=0, on_bad="skip")
    assert data.keys.tolist() == ["a", "b"]
    assert caplog.messages == [
        f"skipped: {tmp_path / 'bad_mask0.png'}: empty mask (no foreground pixel) for "
        f"{tmp_path / 'bad.png'}.",
        "1 of 3 pairs skipped as unreadable or empty",
    ]


def test_without_patients_or_a_test_share_the_split_is_the_two_way_one(tmp_path):
    pairs = [
        write_pair(tmp_path, f"k{i}", grey(40, 40, i), rectangle(40, 40, (5, 30), (5, 30))) for i in range(9)
    ]
    data = prepare(pairs, 32, 16, 0.3, seed=4)
    assert np.array_equal(data.split, assign_split(9, 0.3, seed=4))
