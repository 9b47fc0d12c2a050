"""cxrmask.datasets on the real label tables of PadChest, CheXpert and VinDr-CXR (shipped in
torchxrayvision's wheel), with images generated to match their file names."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrmask.config import ExternalSetSettings, load_config
from cxrmask.datasets import chexpert, mimic, padchest, plain, vindr
from cxrmask.datasets.manifest import find_images, summarise
from cxrmask.datasets.read import read_test_set
from cxrmask.errors import ConfigError, InputError
from cxrmask.shipped import shipped_file
from cxrmask.stages.curate_test_set import curate_test_set
from cxrmask.vocabulary import NO_FINDING, STUDY_LABELS

LABELS = list(STUDY_LABELS)
# Written out here, not imported, so a change to the maps cannot pass unnoticed.
PADCHEST_POSITIVE = {
    "Mass": {"mass", "pulmonary mass"},
    "Nodule": {"nodule", "multiple nodules"},
    "Pneumonia": {"pneumonia", "atypical pneumonia"},
    "Edema": {"pulmonary edema"},
    "Fibrosis": {"pulmonary fibrosis"},
}
PADCHEST_TABLE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"


def _shipped(name: str) -> Path:
    """A real table in torchxrayvision's wheel; the test is skipped where the wheel lacks it."""
    path = shipped_file(f"data/{name}")
    if path is None:
        pytest.skip(f"torchxrayvision's wheel, which ships the real label tables, has no data/{name} here")
    return path


def _write_images(folder: Path, names) -> None:
    """A small real PNG or JPEG at each relative path."""
    pixels = Image.fromarray(np.full((8, 8), 128, dtype=np.uint8))
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels.save(path)


def _strings(text: object) -> set[str]:
    return {s.strip() for s in ast.literal_eval(text)} - {"", "unchanged"} if isinstance(text, str) else set()


@pytest.fixture(scope="module")
def padchest_table() -> pd.DataFrame:
    return pd.read_csv(_shipped(PADCHEST_TABLE), dtype=str, index_col=0)


@pytest.fixture(scope="module")
def padchest_sample(padchest_table: pd.DataFrame) -> pd.DataFrame:
    """Real rows of every kind: each finding, normal, other findings only, excluded, unlabelled,
    lateral and AP_horizontal views, physicians' and the model's labels."""
    strings = padchest_table["Labels"].map(_strings)
    frontal = padchest_table["Projection"].isin(["PA", "AP"])
    picks = [strings.map(lambda s, w=w: w in s) & frontal for w in set().union(*PADCHEST_POSITIVE.values())]
    picks += [
        strings.map(lambda s: s == {"normal"}) & frontal,
        strings.map(lambda s: s == {"cardiomegaly"}) & frontal,
        strings.map(lambda s: "exclude" in s) & frontal,
        padchest_table["Labels"].isna() & frontal,
        strings.map(lambda s: s == {"normal"}) & (padchest_table["Projection"] == "L"),
        strings.map(lambda s: "pneumonia" in s) & (padchest_table["Projection"] == "AP_horizontal"),
    ]
    rows = [
        padchest_table[pick & (padchest_table["MethodLabel"] == method)].head(3)
        for pick in picks
        for method in ("Physician", "RNN_model")
    ]
    return pd.concat(rows).drop_duplicates("ImageID")


@pytest.fixture
def padchest_files(padchest_sample: pd.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    """The sample as a table in the release's format, and its images in the release's numbered folders."""
    table = tmp_path / PADCHEST_TABLE
    padchest_sample.to_csv(table)
    images = tmp_path / "padchest"
    _write_images(
        images,
        [f"{d}/{i}" for d, i in zip(padchest_sample["ImageDir"], padchest_sample["ImageID"], strict=True)],
    )
    return table, images


def _padchest(table: Path, images: Path, **options) -> pd.DataFrame:
    return padchest.read(
        table,
        images,
        LABELS,
        **{"views": ["PA", "AP"], "physician_only": False, "max_missing": 0.05, **options},
    )


def test_the_padchest_map_knows_every_string_of_the_release_and_no_other(
    padchest_table: pd.DataFrame,
) -> None:
    used = set().union(*padchest_table["Labels"].map(_strings)) | {"", "unchanged"}
    assert used == padchest.KNOWN
    assert len(used) == 194


def test_padchest_findings_follow_their_label_strings(padchest_files, padchest_sample: pd.DataFrame) -> None:
    manifest = _padchest(*padchest_files)
    source = padchest_sample.set_index("ImageID").loc[manifest["image"]]
    strings = source["Labels"].map(_strings)
    for label, words in PADCHEST_POSITIVE.items():
        assert manifest[label].tolist() == [float(bool(s & words)) for s in strings], label
    assert manifest[NO_FINDING].tolist() == [float(s == {"normal"}) for s in strings]
    # Kept: a study finding, or normal alone; never excluded, unlabelled or of another view.
    assert all(bool(s & set().union(*PADCHEST_POSITIVE.values())) or s == {"normal"} for s in strings)
    assert set(source["Projection"]) == {"PA", "AP"}
    assert not any("exclude" in s or "suboptimal study" in s for s in strings)
    assert manifest["patient_id"].tolist() == ("padchest:" + source["PatientID"]).tolist()
    assert all(
        Path(p).is_file() and Path(p).name == i
        for p, i in zip(manifest["path"], manifest["image"], strict=True)
    )
    assert manifest[LABELS].notna().all().all()
    left_out = padchest_sample[~padchest_sample["ImageID"].isin(manifest["image"])]
    assert (left_out["Labels"].map(_strings) == {"cardiomegaly"}).any()


def test_padchest_options_keep_physicians_and_other_views(padchest_files, padchest_sample) -> None:
    physicians = _padchest(*padchest_files, physician_only=True)
    by_id = padchest_sample.set_index("ImageID")
    assert set(by_id.loc[physicians["image"], "MethodLabel"]) == {"Physician"}
    supine = _padchest(*padchest_files, views=["AP_horizontal"])
    assert len(supine) and set(by_id.loc[supine["image"], "Projection"]) == {"AP_horizontal"}
    assert (supine["Pneumonia"] == 1).all()


def test_a_flat_padchest_folder_is_read_too(padchest_files, padchest_sample, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    _write_images(flat, padchest_sample["ImageID"])
    assert (
        _padchest(padchest_files[0], flat)["image"].tolist() == _padchest(*padchest_files)["image"].tolist()
    )


def test_a_label_string_no_map_knows_is_named_with_the_map_to_edit(padchest_files, padchest_sample) -> None:
    table, images = padchest_files
    changed = padchest_sample.copy()
    changed.iloc[0, changed.columns.get_loc("Labels")] = "['pulmonary nodul', 'normal']"
    changed.to_csv(table)
    with pytest.raises(InputError, match=r"'pulmonary nodul'.*cxrmask/datasets/labelmaps.py"):
        _padchest(table, images)


def test_missing_images_are_named_and_past_the_threshold_stop_the_run(padchest_files, caplog) -> None:
    table, images = padchest_files
    full = _padchest(table, images)
    Path(full["path"][0]).unlink()
    with caplog.at_level(logging.WARNING):
        fewer = _padchest(table, images, max_missing=0.5)
    assert len(fewer) == len(full) - 1 and full["image"][0] in caplog.text
    with pytest.raises(
        InputError, match=rf"1 of {len(full)} listed images.*{full['image'][0][:20]}.*max_missing"
    ):
        _padchest(table, images, max_missing=0.0)


def test_a_table_of_another_collection_is_refused_naming_the_columns(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    with pytest.raises(InputError, match=r"no column \['ImageID'.*not PadChest's label table"):
        _padchest(_shipped("chexpert_train.csv.gz"), images)


@pytest.fixture(scope="module")
def chexpert_sample() -> pd.DataFrame:
    """Real CheXpert rows with every value of Edema and Pneumonia, No Finding images and laterals."""
    table = pd.read_csv(_shipped("chexpert_train.csv.gz"), nrows=5000)
    picks = [table[column] == value for column in ("Edema", "Pneumonia") for value in (1.0, 0.0, -1.0)]
    picks += [table["Edema"].isna() & (table["Pneumonia"] == 1), table["No Finding"] == 1]
    picks += [(table["Frontal/Lateral"] == "Lateral") & (table["Edema"] == 1)]
    return pd.concat([table[pick].head(4) for pick in picks]).drop_duplicates("Path")


@pytest.fixture
def chexpert_files(chexpert_sample: pd.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    table = tmp_path / "train.csv"
    chexpert_sample.to_csv(table, index=False)
    _write_images(tmp_path / "root", chexpert_sample["Path"])
    return table, tmp_path / "root"


@pytest.mark.parametrize(("policy", "becomes"), [("unknown", np.nan), ("positive", 1.0), ("negative", 0.0)])
def test_chexpert_uncertain_labels_follow_the_policy(
    chexpert_files, chexpert_sample, policy, becomes
) -> None:
    manifest = chexpert.read(*chexpert_files, LABELS, views=["PA", "AP"], uncertain=policy, max_missing=0.0)
    source = chexpert_sample.set_index("Path").loc[manifest["image"]]
    for label in ("Edema", "Pneumonia"):
        raw = source[label].to_numpy()
        want = np.where(np.isnan(raw), 0.0, np.where(raw == -1, becomes, raw))
        np.testing.assert_array_equal(manifest[label].to_numpy(), want)
    # Lung Lesion does not tell Mass from Nodule; no fibrosis label: unknown for every image.
    assert manifest[["Mass", "Nodule", "Fibrosis"]].isna().all().all()
    assert set(source["Frontal/Lateral"]) == {"Frontal"} and set(manifest["view"]) <= {"AP", "PA"}
    kept = (manifest[["Edema", "Pneumonia"]] == 1).any(axis=1) | (manifest[NO_FINDING] == 1)
    assert kept.all()
    assert manifest["patient_id"].tolist() == ["chexpert:" + p.split("/")[2] for p in source.index]


def test_chexpert_images_are_found_from_the_release_folder_itself(chexpert_files) -> None:
    table, root = chexpert_files
    inner = chexpert.read(
        table, root / "CheXpert-v1.0-small", LABELS, views=["AP", "PA"], uncertain="unknown", max_missing=0.0
    )
    outer = chexpert.read(table, root, LABELS, views=["AP", "PA"], uncertain="unknown", max_missing=0.0)
    assert inner["image"].tolist() == outer["image"].tolist() and len(inner)


def test_a_chexpert_value_outside_its_code_is_refused(chexpert_files, chexpert_sample) -> None:
    table, root = chexpert_files
    changed = chexpert_sample.copy()
    changed["Edema"] = changed["Edema"].astype(object)
    changed.iloc[0, changed.columns.get_loc("Edema")] = 2.0
    changed.to_csv(table, index=False)
    with pytest.raises(InputError, match=r"Edema holds '2\.0'"):
        chexpert.read(table, root, LABELS, views=["AP", "PA"], uncertain="unknown", max_missing=0.0)


def test_mimic_images_take_their_studys_labels_under_the_same_policy(chexpert_sample, tmp_path: Path) -> None:
    """MIMIC-CXR-JPG's two tables in their released columns: real CheXpert label rows as its studies, each
    study with a PA image and a lateral one."""
    studies = chexpert_sample[[*chexpert.labelmaps.CHEXPERT_COLUMNS]].reset_index(drop=True)
    studies.insert(0, "study_id", [str(50000000 + i) for i in range(len(studies))])
    studies.insert(0, "subject_id", [str(10000000 + i // 2) for i in range(len(studies))])
    table = tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz"
    studies.to_csv(table, index=False)
    files = pd.DataFrame(
        [
            {
                "dicom_id": f"{s.study_id}-{view}",
                "subject_id": s.subject_id,
                "study_id": s.study_id,
                "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                "ViewPosition": view,
                "Rows": 3056,
                "Columns": 2544,
            }
            for s in studies.itertuples()
            for view in ("PA", "LATERAL")
        ]
    )
    metadata = tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz"
    files.to_csv(metadata, index=False)
    _write_images(
        tmp_path / "jpg", [mimic.image_path(f.subject_id, f.study_id, f.dicom_id) for f in files.itertuples()]
    )
    manifest = mimic.read(
        table, metadata, tmp_path / "jpg", LABELS, views=["PA"], uncertain="positive", max_missing=0.0
    )
    by_study = studies.set_index("study_id")
    study_of = manifest["image"].str.removesuffix("-PA")
    assert set(manifest["view"]) == {"PA"} and len(manifest)
    for label in ("Edema", "Pneumonia"):
        raw = by_study.loc[study_of, label].to_numpy()
        np.testing.assert_array_equal(manifest[label].to_numpy(), np.where(np.isnan(raw), 0.0, np.abs(raw)))
    assert manifest[["Mass", "Nodule", "Fibrosis"]].isna().all().all()
    assert manifest["patient_id"].tolist() == ("mimic:" + by_study.loc[study_of, "subject_id"]).tolist()
    assert all(Path(p).parent.name == f"s{s}" for p, s in zip(manifest["path"], study_of, strict=True))


@pytest.fixture(scope="module")
def vindr_rows() -> pd.DataFrame:
    """All real rows of images with fibrosis named by one, two or three readers, and of clear images."""
    table = pd.read_csv(_shipped("vinbigdata-train.csv.gz"))
    named = table[table["class_name"] == "Pulmonary fibrosis"].groupby("image_id")["rad_id"].nunique()
    clear = table.groupby("image_id")["class_name"].agg(lambda c: set(c) == {"No finding"})
    ids = [*(named[named == n].index[:3] for n in (1, 2, 3)), clear[clear].index[:3]]
    return table[table["image_id"].isin(np.concatenate(ids))]


@pytest.mark.parametrize("min_readers", [1, 2, 3])
def test_vindr_findings_need_the_stated_count_of_readers(
    vindr_rows, tmp_path: Path, min_readers: int
) -> None:
    table = tmp_path / "train.csv"
    vindr_rows.to_csv(table, index=False)
    _write_images(tmp_path / "png", [f"{i}.png" for i in vindr_rows["image_id"].unique()])
    manifest = vindr.read(
        table, tmp_path / "png", LABELS, views=["PA"], min_readers=min_readers, max_missing=0.0
    )
    readers = (
        vindr_rows[vindr_rows["class_name"] == "Pulmonary fibrosis"].groupby("image_id")["rad_id"].nunique()
    )
    clear = vindr_rows.groupby("image_id")["class_name"].agg(lambda c: set(c) == {"No finding"})
    want = {i for i, n in readers.items() if n >= min_readers} | set(clear[clear].index)
    assert set(manifest["image"]) == want
    fibrosis = manifest.set_index("image")["Fibrosis"]
    assert all(fibrosis[i] == float(readers.get(i, 0) >= min_readers) for i in want)
    assert manifest.set_index("image")[NO_FINDING].to_dict() == {i: float(bool(clear[i])) for i in want}
    assert manifest[["Mass", "Nodule", "Pneumonia", "Edema"]].isna().all().all()


def test_a_plain_csv_keeps_blanks_unknown_and_refuses_words(tmp_path: Path) -> None:
    _write_images(tmp_path / "img", ["a.png", "b.png", "c.png"])
    table = tmp_path / "mine.csv"
    table.write_text("path,patient,Mass,Edema\na.png,1,1,\nb.png,1,0,0\nc.png,2,0,1\n")
    manifest = plain.read(table, tmp_path / "img", LABELS, views=["PA"], max_missing=0.0)
    assert manifest["Mass"].tolist() == [1.0, 0.0, 0.0]
    assert manifest["Edema"].isna().tolist() == [True, False, False]
    assert manifest[NO_FINDING].fillna(-1).tolist() == [0.0, 1.0, 0.0]
    assert manifest["Nodule"].isna().all() and manifest["patient_id"].tolist() == ["csv:1", "csv:1", "csv:2"]
    table.write_text("path,patient,Mass\na.png,1,yes\n")
    with pytest.raises(InputError, match="Mass holds 'yes'"):
        plain.read(table, tmp_path / "img", LABELS, views=["PA"], max_missing=0.0)
    table.write_text("path,patient,Mass\na.png,1,1\na.png,2,0\n")
    with pytest.raises(InputError, match=r"appear twice.*'a\.png'"):
        plain.read(table, tmp_path / "img", LABELS, views=["PA"], max_missing=0.0)


def test_the_summary_counts_unknowns_and_names_undefined_aurocs() -> None:
    manifest = pd.DataFrame(
        {
            "image": list("abc"),
            "path": list("abc"),
            "patient_id": ["p", "p", "q"],
            "view": "PA",
            "Mass": [1.0, 0.0, np.nan],
            "Nodule": [0.0, 0.0, 0.0],
            "Pneumonia": np.nan,
            "Edema": [1.0, 0.0, 0.0],
            "Fibrosis": [0.0, 1.0, 0.0],
            NO_FINDING: [0.0, 0.0, 1.0],
        }
    )
    counts = summarise(manifest, LABELS)
    assert counts["labels"]["Mass"] == {"positive": 1, "negative": 1, "unknown": 1}
    assert counts["undefined_auroc"] == ["Nodule", "Pneumonia"]
    assert counts["images"] == 3 and counts["patients"] == 2 and counts["views"] == {"PA": 3}


def test_the_stage_writes_the_manifest_as_its_split(padchest_files, tmp_path: Path) -> None:
    table, images = padchest_files
    settings = ExternalSetSettings(collection="padchest", table=str(table), images=str(images))
    out = tmp_path / "out"
    frame = curate_test_set(
        str(table), str(images), None, str(out / "m.csv"), str(out / "c.json"), settings, LABELS, "pad"
    )
    written = pd.read_csv(out / "m.csv")
    assert set(written["split"]) == {"pad"} and len(written) == len(frame)
    assert frame.drop(columns="split").equals(read_test_set(str(table), str(images), settings, LABELS))


def test_test_set_settings_refuse_options_of_another_collection_and_reserved_names() -> None:
    given = {"collection": "csv", "table": "t.csv", "images": "img"}
    with pytest.raises(
        ConfigError, match=r"test_sets.mine: \['uncertain'\] do not apply to collection 'csv'"
    ):
        load_config({"test_sets": {"mine": {**given, "uncertain": "positive"}}})
    with pytest.raises(ConfigError, match=r"\['shifted'\] name the study's own splits"):
        load_config({"test_sets": {"shifted": given}})
    with pytest.raises(ConfigError, match=r"test_sets\.My-Set"):
        load_config({"test_sets": {"My-Set": given}})
    assert load_config({"test_sets": {"mine": given}}).test_sets["mine"].views == ["PA", "AP"]
    with pytest.raises(ConfigError, match="'mimic' needs metadata"):
        load_config({"test_sets": {"mine": {**given, "collection": "mimic"}}})


def test_images_are_found_by_path_name_and_stem_and_the_first_in_the_walk_keeps_a_shared_name(tmp_path):
    for name in ("b/x.png", "a/x.png", "x.PNG", "a/deep/y.jpg", "a/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    found = find_images(tmp_path)
    assert found["a/x.png"] == str(tmp_path / "a" / "x.png")
    assert found["b/x.png"] == str(tmp_path / "b" / "x.png")
    assert found["a/deep/y.jpg"] == found["y.jpg"] == found["y"] == str(tmp_path / "a" / "deep" / "y.jpg")
    # a folder's own files come before its subfolders', and subfolders go in name order
    assert found["x"] == found["x.PNG"] == str(tmp_path / "x.PNG")
    assert found["x.png"] == str(tmp_path / "a" / "x.png")
    assert not any(key.endswith("notes.txt") or key == "notes" for key in found)
    with pytest.raises(InputError, match="image folder not found"):
        find_images(tmp_path / "absent")
