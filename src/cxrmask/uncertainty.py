"""Uncertainty that respects how the test set was sampled: by patient.

NIH ChestX-ray14 has several images per patient and the test split is drawn
patient-wise, so images of one patient are not independent cases. Two
intervals are used, each where it is valid:

* **per label**, the DeLong interval of the AUROC at the configured ``alpha``
  (closed form, matched to pROC's ``ci.auc``);
* **macro AUROC and every difference between cells**, a percentile bootstrap
  that resamples *patients* (each drawn patient brings all its images). All
  cells are scored on the same resamples, so a difference between two masking
  conditions, or between two backbones' differences, is paired: the noise
  shared by both cells cancels, as it does in the paired DeLong test.

With several seeds per cell, a cell's scores are averaged over seeds before
any of this (a seed ensemble), so intervals and tests are about conditions on
this test set, not about seed-to-seed noise; the seed spread is reported
separately as a mean ± sd over seeds.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import MACRO, auroc
from cxrmask.stats import check_bootstrap_params, delong_ci, resample_counts, weighted_auc
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

#: Elements (resamples x images) weighted per block, bounding the bootstrap's memory to ~100 MB.
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Replicates:
    """AUROCs of several cells on shared patient resamples.

    ``point`` is (cells, columns) on the whole test set and ``boot`` is
    (resamples, cells, columns); the columns are ``labels`` followed by the
    macro AUROC (the mean over the findings that have both classes in the test
    set). A resample in which a label loses a class gives NaN there.
    """

    cells: list[Hashable]
    columns: list[str]
    point: NDArray[np.float64]
    boot: NDArray[np.float64]
    n_patients: int


def _aligned(frames: Mapping[Hashable, pd.DataFrame]) -> list[pd.DataFrame]:
    """The cells' prediction tables in one image order; they must cover the same images and patients."""
    if not frames:
        raise InputError("no prediction tables to bootstrap")
    tables = list(frames.values())
    for name, table in frames.items():
        for column in ("image", "patient_id"):
            if column not in table:
                raise InputError(
                    f"predictions of {name} lack a {column!r} column; rerun train_classifier to rewrite them."
                )
    first = tables[0].sort_values("image").reset_index(drop=True)
    out = [first]
    for name, table in list(frames.items())[1:]:
        table = table.sort_values("image").reset_index(drop=True)
        if not table["image"].equals(first["image"]):
            raise InputError(f"predictions of {name} cover other test images than {next(iter(frames))}.")
        out.append(table)
    return out


def patient_bootstrap(
    frames: Mapping[Hashable, pd.DataFrame], labels: Sequence[str], n_boot: int, seed: int
) -> Replicates:
    """Per-label and macro AUROC of every cell on ``n_boot`` shared resamples of the test patients.

    ``frames`` maps a cell key to its predictions table (``image``,
    ``patient_id``, ``true_{L}``, ``score_{L}``). Resampling patients keeps each
    patient's images together, so the interval widens where images of one
    patient are alike, as it should.
    """
    if n_boot < 1:
        raise ConfigError(f"evaluate.n_boot must be a positive number of resamples, got {n_boot}")
    tables = _aligned(frames)
    _, patient_of = np.unique(tables[0]["patient_id"].to_numpy(), return_inverse=True)
    n_patients = int(patient_of.max()) + 1
    truths = [label_truth(tables[0], label) for label in labels]
    known = [label_known(tables[0], label) for label in labels]
    for name, table in zip(list(frames)[1:], tables[1:], strict=True):
        for label, y, k in zip(labels, truths, known, strict=True):
            if not (
                np.array_equal(label_truth(table, label), y) and np.array_equal(label_known(table, label), k)
            ):
                raise InputError(f"cell {name}: the truth for {label} differs from the first cell's.")
    scores = [[label_scores(t, label) for label in labels] for t in tables]
    point = np.array(
        [[auroc(y[k], s[k]) for y, k, s in zip(truths, known, row, strict=True)] for row in scores]
    )
    point = np.concatenate([point, np.full((len(tables), 1), np.nan)], axis=1)
    boot = np.full((n_boot, len(tables), len(labels) + 1), np.nan)
    defined = [i for i in range(len(labels)) if not np.isnan(point[0, i])]
    findings = [i for i in defined if labels[i] != NO_FINDING]
    rng = np.random.default_rng(seed)
    block = max(1, min(n_boot, _BLOCK_ELEMENTS // max(1, len(patient_of))))
    for start in range(0, n_boot, block):
        weights = resample_counts(rng, n_patients, min(block, n_boot - start))[:, patient_of]
        for c, row in enumerate(scores):
            boot[start : start + len(weights), c, : len(labels)] = weighted_aurocs(
                truths, known, row, defined, weights
            )
    if findings:
        point[:, -1] = point[:, findings].mean(axis=1)
        boot[:, :, -1] = boot[:, :, findings].mean(axis=2)  # NaN where a finding lost a class
    return Replicates(list(frames), [*labels, MACRO], point, boot, n_patients)


def weighted_aurocs(
    truths: Sequence[NDArray[np.bool_]],
    known: Sequence[NDArray[np.bool_]],
    scores: Sequence[NDArray[np.float64]],
    columns: Sequence[int],
    weights: NDArray[np.float64],
) -> NDArray[np.float64]:
    """AUROC of each label on each resample (resamples x labels) given per-image resample ``weights``
    (resamples x images), over the images whose truth is ``known``; only the label indices ``columns``
    are computed, the rest are NaN."""
    out = np.full((len(weights), len(truths)), np.nan)
    for i in columns:
        y, s = truths[i], scores[i]
        negative = ~y & known[i]
        out[:, i] = weighted_auc(s[y], s[negative], weights[:, y], weights[:, negative])
    return out


def estimate_row(values: NDArray[np.float64], alpha: float, paired: bool = True) -> dict[str, float]:
    """A bootstrap estimate's columns: the (1 - alpha) interval, the (1 - 2 alpha) one used for
    equivalence, the two-sided p-value (NaN when ``paired`` is False: a single cell tests nothing) and
    the number of defined resamples."""
    low, high, n = interval(values, alpha)
    eq_low, eq_high, _ = interval(values, 2 * alpha)
    return {
        "ci_low": low,
        "ci_high": high,
        "eq_low": eq_low,
        "eq_high": eq_high,
        "p_value": bootstrap_p(values) if paired else float("nan"),
        "n_resamples": n,
    }


def label_truth(table: pd.DataFrame, label: str) -> NDArray[np.bool_]:
    """Which images are positive for ``label`` (an unknown truth is not positive)."""
    column = f"true_{label}"
    if column not in table or f"score_{label}" not in table:
        raise InputError(f"predictions lack true_/score_ columns for {label!r}; check nih.labels.")
    return table[column].to_numpy() == 1


def label_known(table: pd.DataFrame, label: str) -> NDArray[np.bool_]:
    """Which images have a truth for ``label`` (1 or 0). An external collection may not express a finding,
    or keep an uncertain label uncertain: such images (blank ``true_``) are in neither class of its AUROC."""
    return table[f"true_{label}"].isin([0, 1]).to_numpy()


def label_scores(table: pd.DataFrame, label: str) -> NDArray[np.float64]:
    values = table[f"score_{label}"].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(
            f"predictions for {label!r} hold {int((~np.isfinite(values)).sum())} NaN or infinite scores; "
            "the classifier diverged: rerun its cell."
        )
    return values


def interval(values: NDArray[np.float64], alpha: float) -> tuple[float, float, int]:
    """Percentile (1 - alpha) interval of bootstrap values, ignoring undefined resamples; and how many."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < 0.5 * values.size:
        log.warning("only %d of %d resamples defined: interval reported as NaN", finite.size, values.size)
        return float("nan"), float("nan"), int(finite.size)
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high), int(finite.size)


def bootstrap_p(values: NDArray[np.float64]) -> float:
    """Two-sided bootstrap p-value of "the difference is zero": twice the smaller tail, with the +1 rule.

    The +1 keeps p above zero with finitely many resamples, so Holm's
    adjustment never divides certainty by the family size.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan")
    tail = min(np.sum(finite <= 0.0), np.sum(finite >= 0.0))
    return float(min(1.0, 2.0 * (tail + 1) / (finite.size + 1)))


def auroc_intervals(
    predictions: pd.DataFrame, labels: Sequence[str], alpha: float, n_boot: int, seed: int
) -> pd.DataFrame:
    """One cell's AUROC table: DeLong CIs per label at ``alpha``, a patient-bootstrap CI for the macro row.

    Columns: label, auroc, ci_low, ci_high, ci_method, n_pos, n_neg, n_patients.
    A label with one class in the test set has a NaN AUROC and interval; images whose truth is unknown
    count in neither class.
    """
    check_bootstrap_params(n_boot, alpha)
    reps = patient_bootstrap({"cell": predictions}, labels, n_boot, seed)
    rows = []
    for i, label in enumerate(labels):
        y, known = label_truth(predictions, label), label_known(predictions, label)
        n_pos = int(y.sum())
        low = high = float("nan")
        if not np.isnan(reps.point[0, i]):
            ci = delong_ci(y[known], label_scores(predictions, label)[known], alpha)
            low, high = ci.low, ci.high
        rows.append((label, reps.point[0, i], low, high, "delong", n_pos, int(known.sum()) - n_pos))
    low, high, _ = interval(reps.boot[:, 0, -1], alpha)
    findings = [label for label in labels if label != NO_FINDING]
    any_pos = (
        int(np.any([label_truth(predictions, label) for label in findings], axis=0).sum()) if findings else 0
    )
    rows.append(
        (MACRO, reps.point[0, -1], low, high, "patient_bootstrap", any_pos, len(predictions) - any_pos)
    )
    table = pd.DataFrame(rows, columns=["label", "auroc", "ci_low", "ci_high", "ci_method", "n_pos", "n_neg"])
    return table.assign(n_patients=reps.n_patients)


CONTRAST_COLUMNS = [
    "kind",
    "backbone",
    "condition",
    "backbone_b",
    "condition_b",
    "label",
    "estimate",
    "ci_low",
    "ci_high",
    "eq_low",
    "eq_high",
    "p_value",
    "n_resamples",
]


def condition_contrasts(
    frames: Mapping[tuple[str, str], pd.DataFrame],
    labels: Sequence[str],
    pairs: Sequence[Sequence[str]],
    alpha: float,
    n_boot: int,
    seed: int,
    contenders: Collection[str] | None = None,
) -> pd.DataFrame:
    """Paired patient-bootstrap estimates, intervals and p-values for the study's comparisons.

    ``frames`` maps (backbone, condition) to seed-averaged predictions on the
    same test images. One row per estimate, with ``kind``:

    * ``cell``: a cell's AUROC (per label and macro), no p-value;
    * ``delta``: AUROC(condition_b) - AUROC(condition) within a backbone, per label and macro;
    * ``interaction``: the macro and No Finding ``delta`` of backbone_b minus that of backbone, per
      condition pair (does the masking effect depend on the backbone?);
    * ``versus_best``: macro AUROC of each cell minus that of the cell with the highest macro AUROC,
      among the cells of the ``contenders`` conditions (None: all).

    ``ci_low``/``ci_high`` are the (1 - alpha) interval and ``eq_low``/``eq_high`` the
    (1 - 2 alpha) interval used for equivalence (two one-sided tests at alpha).
    p-values are two-sided bootstrap p-values, not adjusted (the claims adjust).
    """
    check_bootstrap_params(n_boot, alpha)
    reps = patient_bootstrap(frames, labels, n_boot, seed)
    index = {cell: i for i, cell in enumerate(reps.cells)}
    rows: list[dict] = []

    def add(kind: str, a: tuple[str, str], b: tuple[str, str] | None, column: int, point, boot) -> None:
        rows.append(
            {
                "kind": kind,
                "backbone": a[0],
                "condition": a[1],
                "backbone_b": b[0] if b else None,
                "condition_b": b[1] if b else None,
                "label": reps.columns[column],
                "estimate": float(point),
                **estimate_row(boot, alpha, paired=b is not None),
            }
        )

    def delta(cell_a, cell_b, column):
        i, j = index[cell_a], index[cell_b]
        return reps.point[j, column] - reps.point[i, column], reps.boot[:, j, column] - reps.boot[
            :, i, column
        ]

    for cell, i in index.items():
        for column in range(len(reps.columns)):
            add("cell", cell, None, column, reps.point[i, column], reps.boot[:, i, column])
    backbones = list(dict.fromkeys(backbone for backbone, _ in index))
    macro, no_finding = (
        len(reps.columns) - 1,
        reps.columns.index(NO_FINDING) if NO_FINDING in labels else None,
    )
    for a, b in pairs:
        present = [bb for bb in backbones if (bb, a) in index and (bb, b) in index]
        for backbone in present:
            for column in range(len(reps.columns)):
                add(
                    "delta",
                    (backbone, a),
                    (backbone, b),
                    column,
                    *delta((backbone, a), (backbone, b), column),
                )
        for first, second in combinations(present, 2):
            for column in [c for c in (macro, no_finding) if c is not None]:
                d1, b1 = delta((first, a), (first, b), column)
                d2, b2 = delta((second, a), (second, b), column)
                add("interaction", (first, f"{a}->{b}"), (second, f"{a}->{b}"), column, d2 - d1, b2 - b1)
    contending = [cell for cell in index if contenders is None or cell[1] in contenders]
    best = max(
        contending, key=lambda cell: np.nan_to_num(reps.point[index[cell], macro], nan=-np.inf), default=None
    )
    for cell in contending:
        if cell != best:
            add("versus_best", best, cell, macro, *delta(best, cell, macro))
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def seed_spread(auroc_table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd of AUROC over seeds per backbone, mask and label (sd NaN with one seed).

    This is the spread a rerun with another seed would show; it is reported
    beside, not folded into, the test-set intervals above.
    """
    grouped = auroc_table.groupby(["backbone", "mask", "label"], sort=False)["auroc"]
    return grouped.agg(mean="mean", sd="std", n_seeds="count").reset_index()
