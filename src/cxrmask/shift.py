"""What a classifier owes to a shortcut: AUROC on the test images against a shifted test set.

The shifted set holds images whose findings are distributed like the test
set's but whose spurious cue no longer goes with the label. In the demo it is
literal: every test image is redrawn with the same patient, findings and
pixels, and the marker outside the lungs placed independently of the label.
A classifier that reads the lungs scores both sets alike; one that learned the
marker loses AUROC on the shifted set. So the *drop* (test minus shifted) per
cell, and how much more the original-image classifier drops than a masked
one (*excess drop*), measure the shortcut through the pipeline's own outputs.

Both sets are scored on the same patient resamples: a patient drawn k times
brings all of their images in both sets k times, so where the two sets share
patients (the demo's twins) the drop's interval is paired, and all cells share
the resamples, as in :mod:`cxrmask.uncertainty`. Patients in both sets, in
the test set only and in the shifted set only are resampled as three groups,
so a shifted set from other patients (another site) keeps its size in every
resample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cxrmask.errors import InputError
from cxrmask.metrics import MACRO, auroc
from cxrmask.stats import check_bootstrap_params, resample_counts
from cxrmask.uncertainty import estimate_row, label_known, label_scores, label_truth, weighted_aurocs
from cxrmask.vocabulary import NO_FINDING, ORIGINAL

SHIFT_COLUMNS = [
    "kind",
    "backbone",
    "condition",
    "label",
    "auroc_test",
    "auroc_shifted",
    "estimate",
    "ci_low",
    "ci_high",
    "eq_low",
    "eq_high",
    "p_value",
    "n_resamples",
]
#: Resamples weighted at once, bounding memory to (block x images) floats.
_BLOCK = 200

Cell = tuple[str, str]


def _two_classes(table: pd.DataFrame, label: str) -> bool:
    """Whether ``label`` has a positive and a negative among the images whose truth is known."""
    y, known = label_truth(table, label), label_known(table, label)
    return bool(y.any() and (known & ~y).any())


def _replicates(
    table: pd.DataFrame,
    labels: Sequence[str],
    findings: Sequence[int],
    patient_index: Mapping,
    weights: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-label and macro AUROC of ``table`` (columns: labels, then the mean over the label indices
    ``findings``) on the whole set and on each resample of patient ``weights`` (resamples x patients);
    NaN where a label has one class."""
    patient_of = table["patient_id"].map(patient_index).to_numpy()
    truths = [label_truth(table, label) for label in labels]
    known = [label_known(table, label) for label in labels]
    scores = [label_scores(table, label) for label in labels]
    defined = [i for i, label in enumerate(labels) if _two_classes(table, label)]
    point = np.full(len(labels) + 1, np.nan)
    point[defined] = [auroc(truths[i][known[i]], scores[i][known[i]]) for i in defined]
    boot = np.full((len(weights), len(labels) + 1), np.nan)
    boot[:, : len(labels)] = weighted_aurocs(truths, known, scores, defined, weights[:, patient_of])
    if findings:
        point[-1] = point[list(findings)].mean()
        boot[:, -1] = boot[:, list(findings)].mean(axis=1)
    return point, boot


def _stratified_counts(
    rng: np.random.Generator, groups: Sequence[NDArray[np.int64]], n_patients: int, size: int
) -> NDArray[np.float64]:
    """Bootstrap counts (size x patients) drawn within each group of patient indices separately, so every
    resample keeps each group's size: the patients of both sets, of the test set only, of the shifted only."""
    weights = np.zeros((size, n_patients))
    for members in groups:
        if len(members):
            weights[:, members] = resample_counts(rng, len(members), size)
    return weights


def _patient_order(patient: object) -> tuple[str, object]:
    """Sort key of a patient id: NIH's are numbers, another collection's namespaced text, and each kind
    sorts within itself."""
    return type(patient).__name__, patient


def patient_groups(test: Iterable, shifted: Iterable) -> tuple[list, list[NDArray[np.int64]]]:
    """Every patient of either set, sorted, and the indices into that list of the patients in both sets,
    in the test set only and in the shifted set only: the three groups resampled apart."""
    in_test, in_shifted = set(test), set(shifted)
    patients = sorted(in_test | in_shifted, key=_patient_order)
    index = {patient: i for i, patient in enumerate(patients)}
    groups = [
        np.array([index[p] for p in sorted(group, key=_patient_order)], dtype=np.int64)
        for group in (in_test & in_shifted, in_test - in_shifted, in_shifted - in_test)
    ]
    return patients, groups


def shift_table(
    test: Mapping[Cell, pd.DataFrame],
    shifted: Mapping[Cell, pd.DataFrame],
    labels: Sequence[str],
    alpha: float,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Drop in AUROC from ``test`` to ``shifted`` per cell, and each masked cell's drop against original's.

    ``test`` and ``shifted`` map (backbone, condition) to (seed-averaged)
    predictions. Rows of ``kind`` ``drop``: AUROC on test minus on shifted;
    ``excess_drop``: the original-image cell's drop minus this condition's,
    within a backbone (positive: masking protects against the shift; its
    ``auroc_*`` columns are empty). Each per label and macro, with a
    (1 - alpha) percentile interval, the (1 - 2 alpha) one for equivalence
    (``eq_*``) and a two-sided bootstrap p-value.
    """
    check_bootstrap_params(n_boot, alpha)
    if set(test) != set(shifted):
        raise InputError(
            f"shifted predictions for cells {sorted(shifted)}, test predictions for {sorted(test)}."
        )
    if not test:
        raise InputError("no cells to compare on the shifted test set")
    first = next(iter(test))
    patients, groups = patient_groups(test[first]["patient_id"], shifted[first]["patient_id"])
    patient_index = {patient: i for i, patient in enumerate(patients)}
    # macro AUROC over the findings with both classes in both sets, so the two means average alike
    findings = [
        i
        for i, label in enumerate(labels)
        if label != NO_FINDING and _two_classes(test[first], label) and _two_classes(shifted[first], label)
    ]
    columns = [*labels, MACRO]
    points: dict[Cell, NDArray[np.float64]] = {}
    boots: dict[Cell, NDArray[np.float64]] = {cell: np.empty((0, 2, len(columns))) for cell in test}
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, _BLOCK):
        weights = _stratified_counts(rng, groups, len(patients), min(_BLOCK, n_boot - start))
        for cell in test:
            point_t, boot_t = _replicates(test[cell], labels, findings, patient_index, weights)
            point_s, boot_s = _replicates(shifted[cell], labels, findings, patient_index, weights)
            points[cell] = np.stack([point_t, point_s])
            boots[cell] = np.concatenate([boots[cell], np.stack([boot_t, boot_s], axis=1)])
    rows = []

    def add(kind: str, cell: Cell, column: int, pair: NDArray, boot: NDArray, aurocs: NDArray | None) -> None:
        """A row whose estimate is ``pair[0] - pair[1]`` (and each resample's likewise)."""
        values = boot[:, 0, column] - boot[:, 1, column]
        rows.append(
            {
                "kind": kind,
                "backbone": cell[0],
                "condition": cell[1],
                "label": columns[column],
                "auroc_test": np.nan if aurocs is None else aurocs[0, column],
                "auroc_shifted": np.nan if aurocs is None else aurocs[1, column],
                "estimate": float(pair[0, column] - pair[1, column]),
                **estimate_row(values, alpha),
            }
        )

    for cell in test:
        for column in range(len(columns)):
            add("drop", cell, column, points[cell], boots[cell], points[cell])
    for backbone, condition in test:
        if condition == ORIGINAL or (backbone, ORIGINAL) not in test:
            continue
        original, masked = (backbone, ORIGINAL), (backbone, condition)
        pair = np.stack([points[c][0] - points[c][1] for c in (original, masked)])
        boot = np.stack([boots[c][:, 0] - boots[c][:, 1] for c in (original, masked)], axis=1)
        for column in range(len(columns)):
            add("excess_drop", masked, column, pair, boot, None)
    return pd.DataFrame(rows, columns=SHIFT_COLUMNS)
