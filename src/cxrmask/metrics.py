"""Evaluation metrics: AUROC and the No Finding score derived from the findings.

The classifiers predict five findings; "No Finding" has no output of its own
and is scored from the five probabilities (high when all are low).
Intervals around these numbers are in :mod:`cxrmask.uncertainty`.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cxrmask.errors import ConfigError, InputError
from cxrmask.stats import check_binary_scores, fast_delong

log = logging.getLogger(__name__)

MACRO = "macro"
NO_FINDING_METHODS = ("one_minus_max", "prod_one_minus")


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
