"""MIMIC-CXR-JPG (Johnson et al., PhysioNet 2019): its CheXpert labels per study and its image metadata.

``mimic-cxr-2.0.0-chexpert.csv`` labels each *study* (``subject_id``,
``study_id``) with CheXpert's fourteen observations, coded as CheXpert's
(1, 0, -1, blank); ``mimic-cxr-2.0.0-metadata.csv`` lists each image
(``dicom_id``) of a study with its ``ViewPosition``. Every image of a study
takes the study's labels, read by :func:`cxrmask.datasets.chexpert.observation`
under the same ``uncertain`` policy, and lies at
``files/p<first two digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.datasets import labelmaps
from cxrmask.datasets.chexpert import Uncertain, observation
from cxrmask.datasets.manifest import attach_paths, find_images, finish, require_columns
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

COLLECTION = "MIMIC-CXR-JPG"
STUDY = ("subject_id", "study_id")
METADATA = ("dicom_id", *STUDY, "ViewPosition")


def image_path(subject: str, study: str, dicom: str) -> str:
    """An image's path in the release, relative to the folder that holds ``files/``."""
    return f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg"


def read(
    table: str | Path,
    metadata: str | Path,
    images: str | Path,
    labels: Sequence[str],
    *,
    views: Sequence[str],
    uncertain: Uncertain,
    max_missing: float,
) -> pd.DataFrame:
    """The manifest of MIMIC-CXR-JPG's label and metadata tables and its image folder."""
    studies = pd.read_csv(table, dtype={"subject_id": str, "study_id": str})
    require_columns(studies, [*STUDY, *labelmaps.CHEXPERT_COLUMNS], COLLECTION, table)
    files = pd.read_csv(metadata, usecols=lambda c: c in METADATA, dtype=str)
    require_columns(files, METADATA, f"{COLLECTION} metadata", metadata)
    found = {
        label: labelmaps.CHEXPERT_FINDINGS[label] for label in labels if label in labelmaps.CHEXPERT_FINDINGS
    }
    coded = studies[list(STUDY)].copy()
    for label, column in found.items():
        coded[label] = observation(studies[column], uncertain, column, table).to_numpy()
    coded[NO_FINDING] = observation(studies[NO_FINDING], "negative", NO_FINDING, table).to_numpy()
    frame = files.merge(coded, on=list(STUDY), how="inner")
    log.info("%s: %d of %d images have their study labelled", table, len(frame), len(files))
    frame = frame[frame["ViewPosition"].isin(list(views))]
    positive = frame[list(found)].eq(1).any(axis=1) if found else pd.Series(False, index=frame.index)
    kept = positive | frame[NO_FINDING].eq(1)
    log.info(
        "%s: %d images of views %s; %d with a known finding, %d No Finding, %d else (left out)",
        table,
        len(frame),
        list(views),
        int(positive.sum()),
        int(frame[NO_FINDING].eq(1).sum()),
        int((~kept).sum()),
    )
    frame = frame[kept].reset_index(drop=True)
    out = pd.DataFrame(
        {
            "image": frame["dicom_id"],
            "patient_id": "mimic:" + frame["subject_id"],
            "view": frame["ViewPosition"],
            **{label: frame[label] for label in [*found, NO_FINDING]},
        }
    )
    keys = pd.Series(
        [
            image_path(*ids)
            for ids in zip(frame["subject_id"], frame["study_id"], frame["dicom_id"], strict=True)
        ]
    )
    return finish(attach_paths(out, keys, find_images(images), max_missing, str(table)), labels, str(table))
