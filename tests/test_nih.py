"""cxrmask.nih on the real NIH label table (shipped in torchxrayvision's wheel): parsing and curation.

The official split lists are not shipped with it, so the tests build patient-wise lists of the same
shape (about 23 % of patients in test, chosen by a fixed hash of the patient id) and curate the real
112,120-row table with them.
"""

from __future__ import annotations

import gzip
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrmask.errors import ConfigError, InputError
from cxrmask.nih import (
    NIH_LABELS,
    NO_FINDING,
    _patient_split,
    check_labels,
    curate,
    find_images,
    read_label_table,
    read_split_list,
    summarise,
)
from cxrmask.shipped import shipped_file

LABELS = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]
FULL_SET_COUNTS = {
    "No Finding": 60361,
    "Nodule": 6331,
    "Mass": 5782,
    "Edema": 2303,
    "Fibrosis": 1686,
    "Pneumonia": 1431,
}
# Written out here, not imported, so a change to the module's constant cannot pass unnoticed.
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
CONFIG_DEFAULTS = {"no_finding": 10000, "val_fraction": 0.1, "views": ["PA", "AP"], "seed": 0}


def _shipped_table() -> Path:
    """The real Data_Entry_2017_v2020.csv.gz from torchxrayvision's wheel; skipped where it lacks it."""
    path = shipped_file("data/Data_Entry_2017_v2020.csv.gz")
    if path is None:
        pytest.skip("torchxrayvision's wheel, which ships NIH's real label table, is not installed here")
    return path


def _is_test_patient(patient_ids: pd.Series) -> pd.Series:
    """A fixed, patient-wise choice of about 23 % of patients (Knuth's multiplicative hash)."""
    return (patient_ids.astype(np.uint64) * np.uint64(2654435761) % np.uint64(2**32)) % 1000 < 228


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return read_label_table(_shipped_table())


@pytest.fixture(scope="module")
def lists(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    """train_val_list.txt and test_list.txt in NIH's format, read back by the module's reader."""
    folder = tmp_path_factory.mktemp("lists")
    is_test = _is_test_patient(table["patient_id"])
    for name, images in (
        ("train_val_list.txt", table["image"][~is_test]),
        ("test_list.txt", table["image"][is_test]),
    ):
        (folder / name).write_text("\n".join(images) + "\n")
    return read_split_list(folder / "train_val_list.txt"), read_split_list(folder / "test_list.txt")


@pytest.fixture(scope="module")
def subset(table: pd.DataFrame, lists: tuple[list[str], list[str]]) -> pd.DataFrame:
    """The study's subset with config/config.yaml's curation settings."""
    return curate(table, *lists, labels=LABELS, **CONFIG_DEFAULTS)


@pytest.fixture(scope="module")
def uncapped(table: pd.DataFrame, lists: tuple[list[str], list[str]]) -> pd.DataFrame:
    return curate(table, *lists, labels=LABELS, no_finding=None, val_fraction=0.1, seed=0)


def _label_sets(table: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    return dict(zip(table["image"], table["labels"], strict=True))


# ---- the label table -------------------------------------------------------------------------------


def test_real_table_every_row_parsed(table: pd.DataFrame) -> None:
    assert len(table) == 112120
    assert table["image"].is_unique
    assert table["patient_id"].nunique() == 30805
    assert set(table["view"]) == {"PA", "AP"}
    assert set(table["sex"]) == {"M", "F"}
    assert table["patient_id"].dtype == np.int64 and table["age"].dtype == np.float64


def test_bracketed_header_does_not_shift_columns(table: pd.DataFrame) -> None:
    """``OriginalImage[Width,Height]`` holds a comma: width, height and spacing must still line up."""
    first = table.iloc[0]
    assert first["image"] == "00000001_000.png"
    assert first["labels"] == ("Cardiomegaly",)
    assert (first["follow_up"], first["patient_id"], first["age"], first["sex"]) == (0, 1, 57.0, "M")
    assert (first["view"], first["width"], first["height"]) == ("PA", 2682, 2749)
    assert first["spacing_x"] == pytest.approx(0.143) and first["spacing_y"] == pytest.approx(0.143)
    assert table["width"].between(900, 5000).all() and table["height"].between(900, 5000).all()
    assert table["spacing_x"].between(0.1, 0.2).all()


def test_full_set_counts(table: pd.DataFrame) -> None:
    counts = Counter(label for labels in table["labels"] for label in labels)
    assert {label: counts[label] for label in FULL_SET_COUNTS} == FULL_SET_COUNTS
    assert set(counts) == {*NIH_LABELS, NO_FINDING}
    # No Finding is never combined with a finding.
    assert all(labels == (NO_FINDING,) for labels in table["labels"] if NO_FINDING in labels)


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


ROWS = [
    "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143",
    "00000002_000.png,No Finding,0,2,80,M,PA,2500,2048,0.171,0.171",
    "00000003_000.png,Hernia|Mass,0,3,74,F,AP,2048,2500,0.168,0.168",
]


def test_plain_csv_and_a_trailing_empty_column_read_alike(tmp_path: Path) -> None:
    plain = read_label_table(_write_csv(tmp_path / "Data_Entry_2017_v2020.csv", HEADER, ROWS))
    # The 2017 release ends every line with a comma: an empty twelfth column.
    trailing = read_label_table(
        _write_csv(tmp_path / "Data_Entry_2017.csv", HEADER + ",", [r + "," for r in ROWS])
    )
    pd.testing.assert_frame_equal(plain, trailing)
    assert plain["labels"].tolist() == [("Cardiomegaly",), ("No Finding",), ("Hernia", "Mass")]


def test_header_that_is_not_nihs(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "train.csv",
        "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Edema,Pneumonia,Lung Lesion,Fracture,Support Devices",
        ["CheXpert/train/p1/s1/view1.jpg,Male,60,Frontal,AP,,1.0,,,,"],
    )
    with pytest.raises(InputError, match=r"train\.csv: header 'Path,Sex.*is not NIH's"):
        read_label_table(path)


def test_unknown_label_is_named(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "d.csv", HEADER, [*ROWS, "00000004_000.png,Covid|Mass,0,4,50,F,PA,2000,2000,0.14,0.14"]
    )
    with pytest.raises(InputError, match=r"d\.csv: unknown finding labels \['Covid'\]"):
        read_label_table(path)


def test_text_in_a_numeric_column(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "d.csv", HEADER, ["00000001_000.png,Mass,0,1,fifty,M,PA,2682,2749,0.143,0.143"]
    )
    with pytest.raises(InputError, match=r"d\.csv: a numeric column holds text"):
        read_label_table(path)


@pytest.mark.parametrize("content", [b"", (HEADER + "\n").encode()], ids=["empty", "header-only"])
def test_empty_table_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "Data_Entry_2017_v2020.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"Data_Entry_2017_v2020\.csv: cannot parse"):
        read_label_table(path)


def test_corrupt_gzip_and_missing_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "Data_Entry_2017_v2020.csv.gz"
    corrupt.write_bytes(gzip.compress((HEADER + "\n" + "\n".join(ROWS)).encode())[:40])
    with pytest.raises(InputError, match=r"cannot parse the NIH label table .*Download it again"):
        read_label_table(corrupt)
    with pytest.raises(InputError, match=r"absent\.csv: NIH label table not found"):
        read_label_table(tmp_path / "absent.csv")


def test_split_list_reader(tmp_path: Path) -> None:
    (tmp_path / "test_list.txt").write_text("00000003_000.png\n\n  00000004_000.png \r\n")
    assert read_split_list(tmp_path / "test_list.txt") == ["00000003_000.png", "00000004_000.png"]
    with pytest.raises(InputError, match="split list not found"):
        read_split_list(tmp_path / "train_val_list.txt")


def test_find_images_searches_folders_recursively(tmp_path: Path) -> None:
    for relative in (
        "images_001/images/a.png",
        "images_002/images/b.png",
        "images_002/images/a.png",
        "x/c.txt",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    found = find_images([tmp_path / "images_001", tmp_path / "images_002", tmp_path / "x"])
    assert found == {
        "a.png": tmp_path / "images_001/images/a.png",
        "b.png": tmp_path / "images_002/images/b.png",
    }


# ---- curation on the real table --------------------------------------------------------------------


def test_summary_counts_equal_a_recount_of_the_subset(subset: pd.DataFrame) -> None:
    """The numbers the log and the report show, per split, against pandas counting the subset itself."""
    summary = summarise(subset, LABELS)
    assert summary["images"] == len(subset)
    assert summary["patients_in_two_splits"] == 0
    for split, part in subset.groupby("split"):
        counts = summary["splits"][split]
        assert counts["images"] == len(part)
        assert counts["patients"] == part["patient_id"].nunique()
        assert {label: counts[label] for label in [*LABELS, NO_FINDING]} == part[
            [*LABELS, NO_FINDING]
        ].sum().to_dict()
    assert sum(summary["splits"][s][NO_FINDING] for s in ("train", "val", "test")) == 10000


def test_summary_counts_patients_found_in_two_splits(subset: pd.DataFrame) -> None:
    """One patient moved into another split: the check that guards against leakage sees exactly one."""
    images_per_patient = subset.loc[subset["split"] == "test", "patient_id"].value_counts()
    patient = images_per_patient.index[images_per_patient >= 2][0]
    leaked = subset.copy()
    leaked.loc[leaked.index[leaked["patient_id"] == patient][0], "split"] = "train"
    assert summarise(leaked, LABELS)["patients_in_two_splits"] == 1


def test_every_patient_in_exactly_one_split(subset: pd.DataFrame, uncapped: pd.DataFrame) -> None:
    for frame in (subset, uncapped):
        assert (frame.groupby("patient_id")["split"].nunique() == 1).all()
        assert set(frame["split"]) == {"train", "val", "test"}


def test_test_split_is_the_test_list_and_val_is_carved_by_patient(
    subset: pd.DataFrame, lists: tuple[list[str], list[str]], table: pd.DataFrame
) -> None:
    train_val, test = set(lists[0]), set(lists[1])
    assert set(subset.loc[subset["split"] == "test", "image"]) <= test
    assert set(subset.loc[subset["split"] != "test", "image"]) <= train_val
    test_patients = set(table.loc[table["image"].isin(test), "patient_id"])
    val_patients = set(subset.loc[subset["split"] == "val", "patient_id"])
    train_patients = set(subset.loc[subset["split"] == "train", "patient_id"])
    assert not val_patients & test_patients
    # val_fraction is of the train_val patients in the subset, rounded.
    assert len(val_patients) == round(0.1 * (len(val_patients) + len(train_patients)))


def test_label_counts_per_split_match_the_table(
    uncapped: pd.DataFrame, table: pd.DataFrame, lists: tuple[list[str], list[str]]
) -> None:
    """Every positive and (uncapped) every No Finding image is there, in its list's split."""
    is_test = table["image"].isin(set(lists[1]))
    for label in [*LABELS, NO_FINDING]:
        in_table = table["labels"].map(lambda row, lab=label: lab in row)
        assert int(uncapped[label].sum()) == FULL_SET_COUNTS[label]
        assert int(uncapped.loc[uncapped["split"] == "test", label].sum()) == int((in_table & is_test).sum())
        assert int(uncapped.loc[uncapped["split"] != "test", label].sum()) == int((in_table & ~is_test).sum())
    assert ((uncapped[LABELS].sum(axis=1) > 0) ^ (uncapped[NO_FINDING] == 1)).all()


def test_images_with_only_other_findings_are_left_out(uncapped: pd.DataFrame, table: pd.DataFrame) -> None:
    labels = _label_sets(table)
    kept = set(uncapped["image"])
    wanted = set(LABELS)
    other_only = {name for name, row in labels.items() if not wanted & set(row) and row != (NO_FINDING,)}
    assert len(other_only) == 112120 - 60361 - sum(bool(wanted & set(row)) for row in labels.values())
    assert not kept & other_only
    assert "00000001_000.png" not in kept  # Cardiomegaly only
    # A target finding alongside others is kept, with only the target flagged.
    mixed = next(name for name, row in labels.items() if "Mass" in row and "Effusion" in row)
    row = uncapped.set_index("image").loc[mixed]
    assert row["Mass"] == 1 and row[NO_FINDING] == 0


def test_no_finding_cap_keeps_every_positive(subset: pd.DataFrame, uncapped: pd.DataFrame) -> None:
    assert int(subset[NO_FINDING].sum()) == 10000
    assert int(uncapped[NO_FINDING].sum()) == 60361
    positives = uncapped[uncapped[LABELS].sum(axis=1) > 0]
    columns = ["image", "patient_id", *LABELS]
    pd.testing.assert_frame_equal(
        subset[subset[NO_FINDING] == 0][columns].reset_index(drop=True),
        positives[columns].reset_index(drop=True),
    )


# ---- curation options and errors, on a slice of the real table (the whole one takes seconds a run) ----


Sliced = tuple[pd.DataFrame, list[str], list[str]]


@pytest.fixture(scope="module")
def sliced(table: pd.DataFrame) -> Sliced:
    """The first 2,000 patients' rows with their hash-split lists."""
    part = table[table["patient_id"] <= 2000]
    is_test = _is_test_patient(part["patient_id"])
    return part, part["image"][~is_test].tolist(), part["image"][is_test].tolist()


def test_no_finding_cap_is_deterministic_by_seed(sliced: Sliced) -> None:
    part, train_val, test = sliced
    first = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, no_finding=300, seed=0)
    again = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, no_finding=300, seed=0)
    other = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, no_finding=300, seed=1)
    pd.testing.assert_frame_equal(first, again)
    chosen = set(first.loc[first[NO_FINDING] == 1, "image"])
    chosen_other = set(other.loc[other[NO_FINDING] == 1, "image"])
    assert len(chosen) == len(chosen_other) == 300
    assert chosen != chosen_other
    assert set(first.loc[first[NO_FINDING] == 0, "image"]) == set(other.loc[other[NO_FINDING] == 0, "image"])
    # A cap above the number of No Finding images keeps them all.
    everything = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, no_finding=10**6, seed=0)
    assert int(everything[NO_FINDING].sum()) == int((part["labels"] == (NO_FINDING,)).sum())


def test_images_restricts_to_files_present(sliced: Sliced, tmp_path: Path) -> None:
    part, train_val, test = sliced
    present = {name: tmp_path / "images_001" / "images" / name for name in part["image"].iloc[::7]}
    chosen = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, images=present, seed=0)
    assert set(chosen["image"]) <= set(present)
    assert (chosen["path"] == chosen["image"].map(lambda name: str(present[name]))).all()
    labels = _label_sets(part)
    expected = sum(bool(set(LABELS) & set(labels[n])) or labels[n] == (NO_FINDING,) for n in present)
    assert len(chosen) == expected
    assert "path" not in curate(part, train_val, test, labels=LABELS, val_fraction=0.1, seed=0)


def test_views_filter(sliced: Sliced) -> None:
    part, train_val, test = sliced
    pa = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, views=["PA"], seed=0)
    assert set(pa["view"]) == {"PA"}
    in_pa = part[part["view"] == "PA"]["labels"]
    assert int(pa["Mass"].sum()) == int(in_pa.map(lambda row: "Mass" in row).sum())
    assert int(pa[NO_FINDING].sum()) == int(in_pa.map(lambda row: row == (NO_FINDING,)).sum())
    both = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, views=["PA", "AP"], seed=0)
    assert set(both["view"]) == {"PA", "AP"} and len(both) > len(pa)


def test_slice_curates(sliced: Sliced) -> None:
    part, train_val, test = sliced
    chosen = curate(part, train_val, test, labels=LABELS, val_fraction=0.1, seed=0)
    assert summarise(chosen, LABELS)["patients_in_two_splits"] == 0
    assert set(chosen["split"]) == {"train", "val", "test"}


def test_patient_in_both_lists(sliced: Sliced) -> None:
    """One image of a test patient listed under train_val: the lists are no longer patient-wise."""
    part, train_val, test = sliced
    images = part["patient_id"].value_counts()
    in_test = part[part["image"].isin(set(test))]
    moved, patient = next(
        (name, pid)
        for name, pid in zip(in_test["image"], in_test["patient_id"], strict=True)
        if images[pid] > 1
    )
    with pytest.raises(InputError, match=rf"1 patients appear in both .*patient {patient}\)"):
        curate(
            part,
            [*train_val, moved],
            [name for name in test if name != moved],
            labels=LABELS,
            val_fraction=0.1,
            seed=0,
        )


def test_image_in_both_lists(sliced: Sliced) -> None:
    part, train_val, test = sliced
    with pytest.raises(InputError, match=rf"1 images are in both .*{test[0]}"):
        curate(part, [*train_val, test[0]], test, labels=LABELS, val_fraction=0.1, seed=0)


def test_unlisted_images_are_left_out_with_a_warning(
    sliced: Sliced, caplog: pytest.LogCaptureFixture
) -> None:
    part, train_val, test = sliced
    with caplog.at_level(logging.WARNING, logger="cxrmask.nih"):
        chosen = curate(part, train_val[10:], test, labels=LABELS, no_finding=None, val_fraction=0.1, seed=0)
    assert "10 images are in no split list" in caplog.text
    assert not set(chosen["image"]) & set(train_val[:10])


def test_empty_subset(sliced: Sliced) -> None:
    part, train_val, test = sliced
    only_other = part[part["labels"].map(lambda row: row == ("Cardiomegaly",))]
    with pytest.raises(InputError, match="curated NIH subset is empty"):
        curate(only_other, only_other["image"].tolist(), [], labels=LABELS, val_fraction=0.1, seed=0)
    with pytest.raises(InputError, match="curated NIH subset is empty"):
        curate(part, train_val, test, labels=LABELS, val_fraction=0.1, images={}, seed=0)


@pytest.mark.parametrize(
    "labels", [["Mass", "Nodle"], [], ["No Finding"]], ids=["typo", "empty", "no-finding"]
)
def test_bad_config_label(sliced: Sliced, labels: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"nih\.labels"):
        check_labels(labels)
    part, train_val, test = sliced
    with pytest.raises(ConfigError, match=r"nih\.labels"):
        curate(part, train_val, test, labels=labels, val_fraction=0.1, seed=0)


# ---- a shifted test set -----------------------------------------------------------------------------


def test_a_shifted_list_becomes_its_own_held_out_split(
    table: pd.DataFrame, lists: tuple[list[str], list[str]]
) -> None:
    """Half the test patients' images moved to a shifted list: they are curated like test images, under
    their own split, never trained on, and the summary counts them without calling it a leak."""
    train_val, test = lists
    test_rows = table[table["image"].isin(test)]
    moved_patients = set(test_rows["patient_id"].unique()[::2])
    shifted = test_rows.loc[test_rows["patient_id"].isin(moved_patients), "image"].tolist()
    rest = sorted(set(test) - set(shifted))
    curated = curate(
        table, train_val, rest, shifted=shifted, labels=LABELS, no_finding=None, seed=0, val_fraction=0.1
    )
    assert set(curated.loc[curated["split"] == "shifted", "image"]) <= set(shifted)
    assert set(curated.loc[curated["split"] == "shifted", "patient_id"]) <= moved_patients
    assert set(curated["split"]) == {"train", "val", "test", "shifted"}
    counts = summarise(curated, LABELS)
    assert counts["splits"]["shifted"]["images"] == int((curated["split"] == "shifted").sum())
    assert counts["patients_in_two_splits"] == 0


def test_a_shifted_list_may_share_test_patients_but_not_train_ones(
    table: pd.DataFrame, lists: tuple[list[str], list[str]]
) -> None:
    train_val, test = lists
    # the demo's case: a shifted set made of the test patients' other images shares their patients
    test_patient_images = table[table["image"].isin(test)].groupby("patient_id")["image"].apply(list)
    pairs = [images for images in test_patient_images if len(images) >= 2][:50]
    kept, moved = [i[0] for i in pairs], [i[1] for i in pairs]
    curated = curate(
        table, train_val, kept, shifted=moved, labels=LABELS, no_finding=None, seed=0, val_fraction=0.1
    )
    assert summarise(curated, LABELS)["patients_in_two_splits"] == 0
    # a train_val patient's image in the shifted list is a leak, named with its source
    with pytest.raises(
        InputError, match=r"patients appear in both the train_val list and the nih\.shifted_list"
    ):
        curate(table, train_val[1:], test, shifted=train_val[:1], labels=LABELS, seed=0, val_fraction=0.1)
    with pytest.raises(InputError, match=r"in both test_list and nih\.shifted_list"):
        curate(table, train_val, test, shifted=test[:3], labels=LABELS, seed=0, val_fraction=0.1)


def test_a_shifted_list_leaves_the_no_finding_cap_of_the_study_splits_as_it_was(
    table: pd.DataFrame, lists: tuple[list[str], list[str]]
) -> None:
    """Half the test list moved to a shifted list: train, val and the other half of test keep exactly the
    images a run without the shifted list keeps, with the same No Finding draw."""
    train_val, test = lists
    kept_test, shifted = test[len(test) // 2 :], test[: len(test) // 2]
    base = curate(table, train_val, kept_test, labels=LABELS, no_finding=500, seed=0, val_fraction=0.1)
    with_shift = curate(
        table, train_val, kept_test, shifted=shifted, labels=LABELS, no_finding=500, seed=0, val_fraction=0.1
    )
    study = with_shift[with_shift["split"] != "shifted"].reset_index(drop=True)
    pd.testing.assert_frame_equal(study, base)
    assert (with_shift["split"] == "shifted").any()
    # every No Finding image of the shifted list is kept: the cap draws from the study's splits only
    listed = table[table["image"].isin(shifted)]
    kept = with_shift[with_shift["split"] == "shifted"]
    assert int(kept[NO_FINDING].sum()) == int((listed["labels"] == (NO_FINDING,)).sum()) > 0
    # and a run without a shifted list has no shifted split in its summary
    assert set(summarise(base, LABELS)["splits"]) == {"train", "val", "test"}


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [(50, 0.2, 10), (7, 0.5, 4), (50, 0.0, 0), (50, 0.001, 1), (2, 0.1, 1), (50, 0.999, 49), (1, 0.999, 0)],
)
def test_validation_takes_its_share_of_patients_at_least_one_and_never_all(n, fraction, expected) -> None:
    patients = np.arange(100, 100 + n).repeat(3)  # each patient with three images
    chosen = _patient_split(patients, fraction, seed=3)
    assert len(chosen) == expected
    assert chosen <= set(patients.tolist())
    assert _patient_split(patients, fraction, seed=3) == chosen


def test_curation_logs_what_it_keeps_and_leaves_out(sliced: Sliced, tmp_path: Path, caplog) -> None:
    part, train_val, test = sliced
    present = {name: tmp_path / name for name in part["image"].iloc[::3]}
    with caplog.at_level(logging.INFO, logger="cxrmask.nih"):
        curate(part, train_val, test, labels=LABELS, images=present, val_fraction=0.1, seed=0)
    labels = [set(row) for row in part.loc[part["image"].isin(present), "labels"]]
    positive = sum(bool(set(LABELS) & row) for row in labels)
    clean = sum(row == {NO_FINDING} for row in labels)
    assert f"{len(part) - len(present)} listed images are not present on disk" in caplog.text
    assert (
        f"{positive} images with a target finding, {clean} No Finding, "
        f"{len(labels) - positive - clean} with other findings only (left out)"
    ) in caplog.text
    assert positive > 0 and clean > 0 and positive + clean < len(labels)


def test_an_unknown_label_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match=r"nih\.labels: \['Pnemonia'\] not among"):
        check_labels(["Mass", "Pnemonia"])
    with pytest.raises(ConfigError, match="empty"):
        check_labels([])


def test_a_label_table_with_a_missing_column_names_the_field_count(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    source = _shipped_table()
    with gzip.open(source, "rt") as handle:
        header, *rows = [next(handle) for _ in range(4)]
    cut = tmp_path / "Data_Entry_2017_v2020.csv"
    cut.write_text(header + "".join(row.rsplit(",", 1)[0] + "\n" for row in rows))
    with pytest.raises(InputError, match=r"fields per row, found \d+"):
        read_label_table(cut)
