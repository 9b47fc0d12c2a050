"""A collection in NIH's place: its manifest split patient-wise, its patients kept out of every test set,
and the whole study planned on PadChest's real table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from snakerun import DEMO, REPO, dry_run, overlay, planned_job_files, snakemake
from test_datasets import PADCHEST_TABLE, _shipped, _write_images
from test_workflow import FULL_PLAN

from cxrmask.config import Config, TrainingSetSettings
from cxrmask.datasets.training import training_subset
from cxrmask.errors import InputError
from cxrmask.stages.curate_test_set import curate_test_set
from cxrmask.stages.curate_training_set import curate_training_set
from cxrmask.vocabulary import NO_FINDING

LABELS = ["Mass", "Pneumonia"]
STUDY = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]
STUDY_STRINGS = r"'normal'|nodule|mass|pneumonia|pulmonary edema|pulmonary fibrosis"
"""PadChest's strings for normal and the study's findings (its label map has the exact ones)."""


def _manifest(n_patients: int, images_per_patient: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "image": f"p{p:03d}_{k}.png",
            "path": f"/x/p{p:03d}_{k}.png",
            "patient_id": f"padchest:{p}",
            "view": "PA",
            "Mass": float(rng.random() < 0.3),
            "Pneumonia": float(rng.random() < 0.3),
        }
        for p in range(n_patients)
        for k in range(images_per_patient)
    ]
    frame = pd.DataFrame(rows)
    frame[NO_FINDING] = ((frame["Mass"] == 0) & (frame["Pneumonia"] == 0)).astype(float)
    return frame


def _subset(manifest: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    return training_subset(manifest, LABELS, val_fraction=0.1, test_fraction=0.2, seed=seed, where="t.csv")


def test_patients_are_split_whole_in_the_configured_shares() -> None:
    subset = _subset(_manifest(50))
    assert (subset.groupby("patient_id")["split"].nunique() == 1).all()  # a patient's images in one split
    patients = subset.drop_duplicates("patient_id")["split"].value_counts()
    # 20% of 50 patients to test, then 10% of the 40 left to validation
    assert (patients["test"], patients["val"], patients["train"]) == (10, 4, 36)
    assert list(subset.columns) == ["image", "patient_id", "split", "view", *LABELS, NO_FINDING, "path"]
    assert subset["Mass"].dtype.kind == "i" and len(subset) == 100
    assert subset.equals(_subset(_manifest(50)))
    assert not subset["split"].equals(_subset(_manifest(50), seed=1)["split"])


def test_every_split_keeps_a_patient_however_small_the_fraction() -> None:
    subset = training_subset(_manifest(3), LABELS, val_fraction=0.01, test_fraction=0.01, seed=0, where="t")
    assert sorted(subset.drop_duplicates("patient_id")["split"]) == ["test", "train", "val"]


def test_a_finding_the_collection_leaves_unknown_cannot_be_trained() -> None:
    manifest = _manifest(10)
    manifest.loc[3, "Mass"] = np.nan
    with pytest.raises(InputError, match=r"t.csv: .*\{'Mass': 1\} unknown.*Drop those findings"):
        _subset(manifest)


def test_too_few_patients_are_refused() -> None:
    with pytest.raises(InputError, match="2 patients; train, val and test need three"):
        _subset(_manifest(2))
    with pytest.raises(InputError, match="no image of the collection is kept"):
        _subset(_manifest(2).iloc[:0])


def test_a_training_set_refuses_the_keys_that_read_nih_images() -> None:
    training = {"collection": "padchest", "table": "t.csv", "images": "i"}
    assert Config.model_validate({"training_set": training}).training_set.test_fraction == 0.2
    with pytest.raises(ValidationError, match=r"\['nih.chexmask'\] read NIH's images"):
        Config.model_validate({"training_set": training, "nih": {"chexmask": "c.csv"}})
    with pytest.raises(ValidationError, match=r"\['nih.shifted_list', 'nih.expert_labels'\] read"):
        Config.model_validate({"training_set": training, "nih": {"shifted_list": "s", "expert_labels": "e"}})


@pytest.fixture
def padchest_collection(tmp_path: Path) -> tuple[Path, Path]:
    """Real PadChest rows labelled by physicians, frontal, normal or with a study finding: the first 40
    patients, up to two images each; a small PNG at each image's place in the release's numbered folders."""
    table = pd.read_csv(_shipped(PADCHEST_TABLE), dtype=str, index_col=0)
    labelled = table[
        (table["MethodLabel"] == "Physician")
        & table["Projection"].isin(["PA", "AP"])
        & table["Labels"].str.contains(STUDY_STRINGS, na=False)
        & ~table["Labels"].str.contains("exclude|suboptimal", na=False)
    ]
    patients = labelled["PatientID"].drop_duplicates().head(40)
    sample = labelled[labelled["PatientID"].isin(patients)].groupby("PatientID").head(2)
    path = tmp_path / PADCHEST_TABLE
    sample.to_csv(path)
    images = tmp_path / "padchest"
    _write_images(images, [f"{d}/{i}" for d, i in zip(sample["ImageDir"], sample["ImageID"], strict=True)])
    return path, images


def test_padchest_in_nih_place_is_curated_into_the_study_subset(padchest_collection, tmp_path) -> None:
    table, images = padchest_collection
    settings = TrainingSetSettings(collection="padchest", table=str(table), images=str(images))
    subset_file, summary = tmp_path / "subset.csv", tmp_path / "curation.json"
    frame = curate_training_set(
        str(table), str(images), None, str(subset_file), str(summary), settings, STUDY, 0.1, 0
    )
    read = pd.read_csv(subset_file)
    assert len(read) == len(frame) and read["patient_id"].nunique() == 40
    assert (read.groupby("patient_id")["split"].nunique() == 1).all()
    assert read.drop_duplicates("patient_id")["split"].value_counts().to_dict() == {
        "train": 29,
        "test": 8,
        "val": 3,
    }
    assert all(Path(p).is_file() for p in read["path"])
    # the report's heading names the collection from the counts
    assert json.loads(summary.read_text())["collection"] == "PadChest"
    # another set of the same collection shares patients with it: refused, patients named
    with pytest.raises(InputError, match=r"test set padchest_b: 40 patients are also in the training_set"):
        curate_test_set(
            str(table),
            str(images),
            None,
            str(tmp_path / "m.csv"),
            str(tmp_path / "s.json"),
            settings,
            STUDY,
            "padchest_b",
            training=str(subset_file),
        )
    assert not (tmp_path / "m.csv").exists()


def test_the_full_study_plans_on_padchest_real_table_without_nih(tmp_path) -> None:
    images = tmp_path / "padchest_images"
    images.mkdir()
    training = {"collection": "padchest", "table": str(_shipped(PADCHEST_TABLE)), "images": str(images)}
    config = overlay(tmp_path, "padchest", {"training_set": training})
    jobs = dry_run(
        "--configfile",
        config,
        "--config",
        f"results={tmp_path}/results",
        f"resources_dir={tmp_path}/resources",
        workdir=tmp_path,
    )
    nih_only = {"extract_nih_archive", "curate_nih"}
    expected = {rule: n for rule, n in FULL_PLAN.items() if rule not in nih_only}
    # NIH's 12 archives and 3 tables are not fetched: the lung-mask set and MedSAM's weights are
    expected.update(download=2, curate_training_set=1)
    assert jobs == expected


def test_the_demo_trains_on_its_other_collection_with_that_test_set_switched_off(tmp_path) -> None:
    """config/demo_padchest_training.yaml, as the README runs it: the study planned on the PadChest-style
    collection alone, its test set switched off by null (it would share every patient)."""
    result = snakemake(
        "-n",
        "--configfile",
        DEMO,
        str(REPO / "config" / "demo_padchest_training.yaml"),
        "--config",
        f"results={tmp_path}/r",
        workdir=tmp_path,
    )
    jobs = {job["rule"]: job for job in planned_job_files(result.stdout)}
    assert not {"curate_nih", "curate_test_set", "compare_masks_reference"} & set(jobs)
    subset = f"{tmp_path}/r/training_set/subset.csv"
    assert jobs["curate_training_set"]["output"][0] == subset
    assert subset in jobs["cache_images"]["input"] and subset in jobs["generate_masks"]["input"]
    assert f"{tmp_path}/r/demo/nih_lung_masks" not in jobs["generate_masks"]["input"]


def test_a_test_set_named_null_is_switched_off() -> None:
    sets = {"a": {"collection": "csv", "table": "t.csv", "images": "i"}, "b": None}
    assert list(Config.model_validate({"test_sets": sets}).test_sets) == ["a"]
