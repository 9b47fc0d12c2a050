"""cxrmask.chexmask: CheXmask's CSVs read by name and streamed, its run-length strings decoded and encoded.

The real rows are 50 NIH and 50 PadChest rows of the CheXmask database as
published (``../shared/data/chexmask_sample``); the tests of the format's
edges write small files in the same format.
"""

from __future__ import annotations

import csv
import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrmask.chexmask import (
    GRID,
    LANDMARK_PARTS,
    REQUIRED,
    decode_rle,
    encode_rle,
    read_chexmask,
)
from cxrmask.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "chexmask_sample"
FILES = {"nih": "ChestX-Ray8.csv", "padchest": "Padchest.csv"}
needs_sample = pytest.mark.skipif(
    not SAMPLE.is_dir(), reason=f"the real CheXmask rows are not at {SAMPLE} (see ../shared/data)"
)


@pytest.fixture(scope="module", params=list(FILES))
def real(request) -> tuple[str, dict]:
    if not SAMPLE.is_dir():
        pytest.skip(f"the real CheXmask rows are not at {SAMPLE} (see ../shared/data)")
    return request.param, read_chexmask(SAMPLE / FILES[request.param], heart=True, landmarks=True)


def write_rows(path: Path, rows: list[dict], id_name: str = "Image Index") -> Path:
    columns = [id_name, "Dice RCA (Mean)", "Dice RCA (Max)", "Landmarks", "Left Lung", "Right Lung", "Heart"]
    columns += ["Height", "Width"]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def lung_row(image: str, height: int = 40, width: int = 30, seed: int = 0, **extra) -> dict:
    rng = np.random.default_rng(seed)
    left, right = np.zeros((height, width), bool), np.zeros((height, width), bool)
    top = int(rng.integers(2, 8))
    left[top : height - 5, 2 : width // 2 - 2] = True
    right[top + 1 : height - 4, width // 2 + 1 : width - 2] = True
    return {
        "Image Index": image,
        "Dice RCA (Mean)": "0.8",
        "Dice RCA (Max)": "0.9",
        "Left Lung": encode_rle(left),
        "Right Lung": encode_rle(right),
        "Heart": encode_rle(left[::-1]),
        "Height": str(height),
        "Width": str(width),
        **extra,
    }


# ---- the real rows -----------------------------------------------------------------------------------


def test_every_real_row_is_read_with_its_id_and_a_size(real):
    name, rows = real
    assert len(rows) == 50
    assert all(image.endswith(".png") for image in rows)
    sizes = {(row.height, row.width) for row in rows.values()}
    if name == "padchest":
        assert (GRID, GRID) in sizes  # 30 of its rows have blank sizes


def test_decoded_lungs_span_their_landmarks_extent(real):
    """Each lung's decoded extent is its outline's: within 2 px on every side, on every real row."""
    _, rows = real
    for row in rows.values():
        points = row.landmark_points()
        for column, part in (("left_lung", "left_lung"), ("right_lung", "right_lung")):
            mask = decode_rle(getattr(row, column), row.height, row.width)
            ys, xs = np.nonzero(mask)
            outline = points[LANDMARK_PARTS[part]]
            extent = [xs.min(), ys.min(), xs.max(), ys.max()]
            expected = [*outline.min(axis=0), *outline.max(axis=0)]
            np.testing.assert_allclose(extent, expected, atol=2, err_msg=f"{row.image} {column}")
        heart = row.heart_mask()
        outline = points[LANDMARK_PARTS["heart"]]
        ys, xs = np.nonzero(heart)
        np.testing.assert_allclose([xs.min(), ys.max()], [outline[:, 0].min(), outline[:, 1].max()], atol=2)


def test_the_lungs_are_the_union_of_the_patients_left_and_right_lung(real):
    _, rows = real
    row = next(iter(rows.values()))
    left = decode_rle(row.left_lung, row.height, row.width)
    right = decode_rle(row.right_lung, row.height, row.width)
    assert not (left & right).any()
    assert np.array_equal(row.lungs(), left | right)
    # The patient's right lung is on the image's left.
    assert np.nonzero(right)[1].mean() < np.nonzero(left)[1].mean()


def test_encoding_a_decoded_mask_gives_back_the_published_string(real):
    _, rows = real
    for row in rows.values():
        for runs in (row.left_lung, row.right_lung, row.heart):
            assert encode_rle(decode_rle(runs, row.height, row.width)) == runs


def test_rca_max_is_never_below_the_mean(real):
    _, rows = real
    assert all(row.rca_max >= row.rca_mean for row in rows.values())
    assert all(0 < row.rca_mean <= 1 for row in rows.values())


@needs_sample
def test_padchests_rows_with_blank_sizes_have_their_rca_swapped_and_are_counted(caplog):
    with caplog.at_level(logging.INFO, logger="cxrmask.chexmask"):
        rows = read_chexmask(SAMPLE / FILES["padchest"])
    assert "30 rows give RCA Max below Mean" in caplog.text
    raw = pd.read_csv(SAMPLE / FILES["padchest"], usecols=["ImageID", *REQUIRED], keep_default_na=False)
    for record in raw.itertuples(index=False):
        row = rows[record.ImageID]
        mean, high = (
            record[1 + REQUIRED.index("Dice RCA (Mean)")],
            record[1 + REQUIRED.index("Dice RCA (Max)")],
        )
        assert (row.rca_mean, row.rca_max) == (min(mean, high), max(mean, high))


@needs_sample
def test_only_the_asked_images_are_kept_whatever_the_chunk_size(caplog):
    path = SAMPLE / FILES["nih"]
    everything = read_chexmask(path)
    chosen = sorted(everything)[::7]
    for chunk_rows in (3, 50, 1000):
        rows = read_chexmask(path, images=chosen, chunk_rows=chunk_rows)
        assert sorted(rows) == chosen
        assert all(rows[image] == everything[image] for image in chosen)
    with caplog.at_level(logging.WARNING, logger="cxrmask.chexmask"):
        rows = read_chexmask(path, images=[*chosen, "99999999_000.png"])
    assert (
        f"has {len(chosen)} of {len(chosen) + 1} images; 1 are not in it, e.g. 99999999_000.png"
        in caplog.text
    )


# ---- the format's edges ------------------------------------------------------------------------------


def test_runs_are_one_based_pairs_in_row_major_order():
    mask = decode_rle("1 2 6 1", 2, 4)
    assert mask.tolist() == [[True, True, False, False], [False, True, False, False]]
    assert encode_rle(mask) == "1 2 6 1"
    assert not decode_rle("", 3, 3).any() and encode_rle(np.zeros((3, 3), bool)) == ""
    full = np.ones((3, 5), bool)
    assert encode_rle(full) == "1 15" and decode_rle("1 15", 3, 5).all()


@pytest.mark.parametrize("seed", range(5))
def test_encoding_and_decoding_random_masks_round_trips(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((37, 23)) < 0.4
    assert np.array_equal(decode_rle(encode_rle(mask), 37, 23), mask)


def test_a_run_past_its_grid_names_the_image_and_the_column(tmp_path):
    row = lung_row("00000001_000.png", height=40, width=30)
    row["Height"] = "20"
    rows = read_chexmask(write_rows(tmp_path / "cm.csv", [row]))
    with pytest.raises(
        InputError, match=r"00000001_000\.png: Left Lung: a run reaches pixel \d+ of a 20 x 30 grid"
    ):
        rows["00000001_000.png"].lungs()
    with pytest.raises(InputError, match="not start/length pairs"):
        decode_rle("1 2 3", 4, 4, "x")


def test_a_blank_size_means_the_databases_grid_and_a_gzipped_file_reads_the_same(tmp_path):
    row = lung_row("00000001_000.png", height=GRID, width=GRID)
    row["Height"] = row["Width"] = ""
    plain = read_chexmask(write_rows(tmp_path / "cm.csv", [row]))
    zipped = read_chexmask(write_rows(tmp_path / "cm.csv.gz", [row]))
    assert plain == zipped
    only = plain["00000001_000.png"]
    assert (only.height, only.width) == (GRID, GRID) and only.lungs().shape == (GRID, GRID)
    assert only.heart is None and only.landmarks is None
    with pytest.raises(InputError, match="pass heart=True"):
        only.heart_mask()


def test_duplicate_ids_are_refused_by_name(tmp_path):
    rows = [lung_row("00000001_000.png"), lung_row("00000002_000.png"), lung_row("00000001_000.png", seed=1)]
    with pytest.raises(
        InputError, match=r"1 image ids are listed more than once \(\['00000001_000\.png'\]\)"
    ):
        read_chexmask(write_rows(tmp_path / "cm.csv", rows))


def test_a_file_that_matches_none_of_the_images_is_an_error(tmp_path):
    path = write_rows(tmp_path / "cm.csv", [lung_row("00000001_000.png")])
    with pytest.raises(InputError, match=r"none of the 2 images .* is in this CheXmask file"):
        read_chexmask(path, images=["a.png", "b.png"])


def test_a_csv_that_is_not_chexmasks_names_what_it_lacks(tmp_path):
    other = tmp_path / "Data_Entry_2017.csv"
    pd.DataFrame({"Image Index": ["a.png"], "Finding Labels": ["Mass"]}).to_csv(other, index=False)
    with pytest.raises(InputError, match=r"not a CheXmask CSV: it lacks \['Dice RCA \(Mean\)'"):
        read_chexmask(other)
    unnamed = tmp_path / "unnamed.csv"
    write_rows(unnamed, [lung_row("a.png", **{"file": "a.png"})], id_name="file")
    with pytest.raises(InputError, match=r"lacks \[\"one of \['Image Index', 'ImageID'"):
        read_chexmask(unnamed)


def test_a_damaged_number_names_the_image(tmp_path):
    row = lung_row("00000001_000.png")
    row["Width"] = "wide"
    with pytest.raises(InputError, match=r"00000001_000\.png: could not convert string to float: 'wide'"):
        read_chexmask(write_rows(tmp_path / "cm.csv", [row]))
    row["Width"] = "30.5"
    with pytest.raises(InputError, match=r"00000001_000\.png: size 30\.5 is not a whole number"):
        read_chexmask(write_rows(tmp_path / "cm.csv", [row]))
    row["Width"] = "30.0"
    assert read_chexmask(write_rows(tmp_path / "cm.csv", [row]))["00000001_000.png"].width == 30
