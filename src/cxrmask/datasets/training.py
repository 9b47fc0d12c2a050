"""A collection in NIH's place: its manifest split patient-wise into the study's train, val and test.

NIH ships official train_val and test lists; other collections do not (PadChest, a hospital's export), so
the test patients are drawn by seed, then validation patients from the rest, as NIH's validation split is.
A classifier is trained on every finding of the study, so a finding the collection leaves unknown on any
image cannot be trained: such a table is refused with the finding named, where an external test set would
only leave it out of that finding's AUROC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxrmask.errors import InputError
from cxrmask.vocabulary import NO_FINDING

SPLIT_COLUMNS = ("image", "patient_id", "split", "view")
"""The curated subset's leading columns, as NIH's curation writes them (it adds age and sex, which no stage
reads)."""


def _held_out(patients: Sequence[str], fraction: float, rng: np.random.Generator) -> set[str]:
    """``fraction`` of the patients, at least one and never all of them (both sides need images)."""
    unique = rng.permutation(np.unique(np.asarray(patients, dtype=str)))
    count = min(max(round(fraction * len(unique)), 1), len(unique) - 1) if len(unique) > 1 else 0
    return {str(p) for p in unique[:count]}


def training_subset(
    manifest: pd.DataFrame,
    labels: Sequence[str],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    where: str,
) -> pd.DataFrame:
    """The study's subset from a collection's manifest (:mod:`cxrmask.datasets.manifest`): NIH's curated
    columns, findings as 0/1, and splits drawn patient-wise by ``seed`` (test first, then validation from the
    remaining patients); ``where`` names the table in errors."""
    if manifest.empty:
        raise InputError(f"{where}: no image of the collection is kept, so there is nothing to train on.")
    unknown = [label for label in [*labels, NO_FINDING] if manifest[label].isna().any()]
    if unknown:
        counts = {label: int(manifest[label].isna().sum()) for label in unknown}
        raise InputError(
            f"{where}: the collection leaves {counts} unknown, and a classifier cannot be trained on an "
            "unknown label. Drop those findings from nih.labels, or train on a collection that labels them."
        )
    if manifest["patient_id"].nunique() < 3:
        raise InputError(
            f"{where}: {manifest['patient_id'].nunique()} patients; train, val and test need three."
        )
    rng = np.random.default_rng(seed)
    test = _held_out(manifest["patient_id"], test_fraction, rng)
    rest = manifest.loc[~manifest["patient_id"].isin(test), "patient_id"]
    val = _held_out(rest, val_fraction, rng)
    split = np.where(
        manifest["patient_id"].isin(test), "test", np.where(manifest["patient_id"].isin(val), "val", "train")
    )
    out = manifest.assign(split=split)
    for label in [*labels, NO_FINDING]:
        out[label] = out[label].astype(int)
    return out[[*SPLIT_COLUMNS, *labels, NO_FINDING, "path"]].sort_values("image").reset_index(drop=True)
