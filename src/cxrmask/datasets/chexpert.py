"""CheXpert (Irvin et al., AAAI 2019) and tables in its form: its label table as released.

``train.csv`` has one row per image: ``Path`` (``CheXpert-v1.0-small/train/
patient00001/study1/view1_frontal.jpg``), ``Frontal/Lateral``, ``AP/PA``
and fourteen observations, each 1, 0, -1 (the labeller was uncertain) or
blank (not mentioned: read as 0, as the labeller's authors do). What -1
becomes is the ``uncertain`` policy: unknown (the default, left out of the
AUROC), positive or negative. Lung Lesion does not tell Mass from Nodule, so
both are unknown, and CheXpert has no fibrosis label. An image is kept when
a known finding is positive or No Finding is 1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cxrmask.datasets import labelmaps
from cxrmask.datasets.manifest import attach_paths, find_images, finish, require_columns
from cxrmask.errors import InputError
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

COLLECTION = "CheXpert"
ID_COLUMNS = ("Path", "Frontal/Lateral", "AP/PA")
LATERAL = "Lateral"
UNCERTAIN = -1.0
Uncertain = Literal["unknown", "positive", "negative"]
POLICY = {"unknown": np.nan, "positive": 1.0, "negative": 0.0}
"""What an uncertain (-1) label becomes under each ``uncertain`` policy."""
PATIENT = re.compile(r"(patient\d+)")


def observation(values: pd.Series, uncertain: Uncertain, column: str, table: str | Path) -> pd.Series:
    """One observation column as 1/0/NaN: blank is 0 (not mentioned), -1 follows the policy."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    odd = numbers[numbers.notna() & ~numbers.isin([1.0, 0.0, UNCERTAIN])]
    if len(bad) or len(odd):
        raise InputError(
            f"{table}: {column} holds {str((bad if len(bad) else odd).iloc[0])!r}; CheXpert's labels are "
            "1, 0, -1 or blank. This is not CheXpert's table in its released form."
        )
    return numbers.fillna(0.0).replace(UNCERTAIN, POLICY[uncertain])


def read(
    table: str | Path,
    images: str | Path,
    labels: Sequence[str],
    *,
    views: Sequence[str],
    uncertain: Uncertain,
    max_missing: float,
) -> pd.DataFrame:
    """The manifest of a CheXpert table; ``images`` is the folder its ``Path`` values are relative to."""
    frame = pd.read_csv(table, dtype={"Path": str})
    require_columns(frame, [*ID_COLUMNS, *labelmaps.CHEXPERT_COLUMNS], COLLECTION, table)
    patients = frame["Path"].str.extract(PATIENT, expand=False)
    if patients.isna().any():
        raise InputError(
            f"{table}: Path {frame['Path'][patients.isna()].iloc[0]!r} names no patientNNNNN folder; "
            "CheXpert's paths do, and the patient is read from them."
        )
    view = np.where(frame["Frontal/Lateral"] == LATERAL, "LATERAL", frame["AP/PA"].fillna("").astype(str))
    out = pd.DataFrame({"image": frame["Path"], "patient_id": "chexpert:" + patients, "view": view})
    for label in labels:
        column = labelmaps.CHEXPERT_FINDINGS.get(label)
        if column is not None:
            out[label] = observation(frame[column], uncertain, column, table).to_numpy()
    out[NO_FINDING] = observation(
        frame[labelmaps.CHEXPERT_NO_FINDING], "negative", NO_FINDING, table
    ).to_numpy()
    known = [label for label in labels if label in labelmaps.CHEXPERT_FINDINGS]
    out = out[out["view"].isin(list(views))]
    positive = out[known].eq(1).any(axis=1) if known else pd.Series(False, index=out.index)
    kept = positive | out[NO_FINDING].eq(1)
    log.info(
        "%s: %d images of views %s; %d with a known finding, %d No Finding, %d else (left out); "
        "uncertain labels read as %s",
        table,
        len(out),
        list(views),
        int(positive.sum()),
        int((out[NO_FINDING] == 1).sum()),
        int((~kept).sum()),
        uncertain,
    )
    out = out[kept].reset_index(drop=True)
    found = find_images(images)
    # Path starts with the release's folder (CheXpert-v1.0-small/): images may name it or its parent.
    keys = out["image"].map(lambda p: p if p in found else p.split("/", 1)[-1])
    return finish(attach_paths(out, keys, found, max_missing, str(table)), labels, str(table))
