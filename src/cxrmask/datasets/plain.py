"""A user's own collection: a plain CSV with a path, a patient and one column per finding.

Columns: ``path`` (relative to the image folder), ``patient``, optionally
``view`` (PA when absent) and ``No Finding``, and a column per study finding
holding 1, 0 or blank (unknown). Without a No Finding column, an image is No
Finding where every finding is 0. Every row is kept: the user chose the
images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrmask.datasets.manifest import attach_paths, find_images, finish, require_columns
from cxrmask.errors import InputError
from cxrmask.vocabulary import NO_FINDING

COLLECTION = "a plain CSV"
COLUMNS = ("path", "patient")
DEFAULT_VIEW = "PA"


def numeric(values: pd.Series, column: str, table: str | Path) -> pd.Series:
    """A finding column as numbers, blank as NaN; text such as "yes" is refused, naming it."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    if len(bad):
        raise InputError(f"{table}: {column} holds {bad.iloc[0]!r}; a finding is 1, 0 or blank (unknown).")
    return numbers


def read(
    table: str | Path, images: str | Path, labels: Sequence[str], *, views: Sequence[str], max_missing: float
) -> pd.DataFrame:
    """The manifest of a plain CSV; finding columns it lacks are unknown (and logged as such)."""
    frame = pd.read_csv(table, dtype={"path": str, "patient": str, "view": str})
    require_columns(frame, COLUMNS, COLLECTION, table)
    out = pd.DataFrame(
        {
            "image": frame["path"],
            "patient_id": "csv:" + frame["patient"],
            "view": frame["view"].fillna(DEFAULT_VIEW) if "view" in frame else DEFAULT_VIEW,
        }
    )
    present = [label for label in labels if label in frame.columns]
    for label in [*present, *([NO_FINDING] if NO_FINDING in frame else [])]:
        out[label] = numeric(frame[label], label, table)
    if NO_FINDING not in frame and present:
        values = out[present].to_numpy(dtype=float)
        out[NO_FINDING] = np.where(
            (values == 0).all(axis=1), 1.0, np.where((values == 1).any(axis=1), 0.0, np.nan)
        )
    out = out[out["view"].isin(list(views))].reset_index(drop=True)
    return finish(
        attach_paths(out, out["image"], find_images(images), max_missing, str(table)), labels, str(table)
    )
