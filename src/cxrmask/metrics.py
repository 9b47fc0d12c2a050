"""Evaluation metrics: per-label AUROC with bootstrap CIs, the derived No Finding score, macro AUROC.

The classifiers predict five findings; "No Finding" has no output of its own
and is scored from the five probabilities (high when all are low). The
evaluate stage turns a predictions table into one tidy row per label plus a
macro row, the numbers the paper compares across masking conditions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from cxrmask.errors import ConfigError, InputError
from cxrmask.stats import (
    bootstrap_auc_ci,
    check_binary_scores,
    check_bootstrap_params,
    fast_delong,
    resample_counts,
    weighted_auc,
)
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

MACRO = "macro"
NO_FINDING_METHODS = ("one_minus_max", "prod_one_minus")

#: Bootstrap draws tried per requested resample before the macro CI is given up as undefined.
_MAX_DRAWS_PER_RESAMPLE = 20
#: Elements (resamples x cases) drawn per block by the macro bootstrap, bounding its memory.
_BLOCK_ELEMENTS = 2_000_000


def auroc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (ties count one half); NaN, with a warning, when one class is absent.

    Small demo splits can lack a rare label entirely; that is reported, not fatal.
    """
    y, stacked = check_binary_scores(y_true, scores)
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        log.warning(
            "AUROC undefined: %d positive of %d cases (needs both classes); reporting NaN", n_pos, y.size
        )
        return float("nan")
    aucs, _ = fast_delong(y, stacked)
    return float(aucs[0])


def no_finding_score(probs: np.ndarray, method: str) -> NDArray[np.float64]:
    """Score "No Finding" from the (N, K) finding probabilities; higher = more likely normal.

    ``one_minus_max`` is 1 - max_k p_k (normal unless some finding is likely);
    ``prod_one_minus`` is prod_k (1 - p_k) (the probability of no finding if the
    outputs were independent).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise InputError(f"probs must be a (cases, findings) array with at least one finding, got {p.shape}")
    if method == "one_minus_max":
        return 1.0 - p.max(axis=1)
    if method == "prod_one_minus":
        return np.prod(1.0 - p, axis=1)
    raise ConfigError(
        f"classifier.no_finding_score: unknown method {method!r}; allowed: {', '.join(NO_FINDING_METHODS)}"
    )


def evaluate_predictions(
    predictions: pd.DataFrame, labels: Sequence[str], n_boot: int, seed: int, alpha: float = 0.05
) -> pd.DataFrame:
    """Per-label AUROC with stratified bootstrap CIs, plus a macro row over the findings.

    ``predictions`` has ``true_{L}`` (0/1) and ``score_{L}`` for every L in
    ``labels``. Returns columns label, auroc, ci_low, ci_high, n_pos, n_neg.
    The macro AUROC averages the labels other than "No Finding" (undefined ones
    ignored); its CI bootstraps that mean by resampling cases jointly, so the
    correlation between labels measured on the same images is kept. For the
    macro row, n_pos counts cases positive for at least one averaged label and
    n_neg the rest.
    """
    check_bootstrap_params(n_boot, alpha)
    truths, scores = _label_arrays(predictions, labels)
    rows = []
    for i, label in enumerate(labels):
        y, s = truths[i], scores[i]
        n_pos = int(y.sum())
        auc = auroc(y, s)
        if np.isnan(auc):
            low = high = float("nan")
        else:
            low, high = bootstrap_auc_ci(y, s, n_boot=n_boot, alpha=alpha, seed=seed)
        rows.append((label, auc, low, high, n_pos, y.size - n_pos))
    findings = [i for i, label in enumerate(labels) if label != NO_FINDING and not np.isnan(rows[i][1])]
    macro = float(np.mean([rows[i][1] for i in findings])) if findings else float("nan")
    low, high = _macro_bootstrap_ci(truths[findings], scores[findings], n_boot, alpha, seed)
    any_pos = int(truths[[i for i, label in enumerate(labels) if label != NO_FINDING]].any(axis=0).sum())
    rows.append((MACRO, macro, low, high, any_pos, truths.shape[1] - any_pos))
    table = pd.DataFrame(rows, columns=["label", "auroc", "ci_low", "ci_high", "n_pos", "n_neg"])
    return table.astype({"n_pos": "int64", "n_neg": "int64"})


def _label_arrays(
    predictions: pd.DataFrame, labels: Sequence[str]
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Pull (labels, cases) truth and score matrices out of the table, validating every column."""
    if len(labels) == 0:
        raise ConfigError("evaluate_predictions needs at least one label")
    missing = [c for label in labels for c in (f"true_{label}", f"score_{label}") if c not in predictions]
    if missing:
        raise InputError(
            f"predictions table lacks columns {missing}; it has {list(predictions.columns)}. "
            "Regenerate the predictions with the same label list as the evaluation config."
        )
    truths = np.empty((len(labels), len(predictions)), dtype=bool)
    scores = np.empty((len(labels), len(predictions)))
    for i, label in enumerate(labels):
        try:
            y, s = check_binary_scores(predictions[f"true_{label}"].to_numpy(), predictions[f"score_{label}"])
        except InputError as exc:
            raise InputError(f"predictions for label {label!r}: {exc}") from exc
        truths[i], scores[i] = y, s[0]
    return truths, scores


def _macro_bootstrap_ci(
    truths: NDArray[np.bool_], scores: NDArray[np.float64], n_boot: int, alpha: float, seed: int
) -> tuple[float, float]:
    """Percentile CI of the mean AUROC over labels, resampling cases jointly across labels.

    A resample in which some label loses a class is redrawn (the mean would
    otherwise silently change which labels it averages). If too few valid
    resamples turn up, the interval is reported as NaN with a warning.
    """
    n_labels, n_cases = truths.shape
    if n_labels == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    block = max(1, min(_BLOCK_ELEMENTS // n_cases, n_boot))
    kept: list[NDArray[np.float64]] = []
    n_kept = draws = 0
    while n_kept < n_boot and draws < _MAX_DRAWS_PER_RESAMPLE * n_boot:
        weights = resample_counts(rng, n_cases, block)
        draws += block
        per_label = np.stack(
            [
                weighted_auc(s[y], s[~y], weights[:, y], weights[:, ~y])
                for y, s in zip(truths, scores, strict=True)
            ]
        )
        means = per_label.mean(axis=0)  # NaN where some label lost a class
        valid = means[~np.isnan(means)]
        kept.append(valid)
        n_kept += valid.size
    if n_kept < n_boot:
        log.warning(
            "macro AUROC CI undefined: only %d of %d bootstrap draws kept every label's two classes; "
            "reporting NaN",
            n_kept,
            draws,
        )
        return float("nan"), float("nan")
    means = np.concatenate(kept)[:n_boot]
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)
