"""AUC statistics: DeLong's paired test and confidence interval, Holm adjustment, bootstrap AUCs.

The compare stage asks, per backbone and label, whether two input conditions
(original, tight, loose) rank the same test cases differently well. The cases
are shared, so the two AUCs are correlated and an unpaired test would be far
too conservative; DeLong's structural components estimate that covariance.
The naive estimator compares every positive with every negative (O(m n)),
which is slow on the NIH test set; Sun & Xu (2014) show the same placement
values follow from three rankings, so everything here is O(n log n) and
handles k score vectors at once.

Conventions follow pROC (``direction = "<"``): a higher score means "more
likely positive", and a tie between a positive and a negative counts one half.
The test agrees with ``pROC::roc.test(method = "delong", paired = TRUE)`` and
the interval with ``pROC::ci.auc(method = "delong")``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm, rankdata

from cxrmask.errors import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeLongResult:
    """Outcome of a paired DeLong test of AUC(b) against AUC(a) on the same cases."""

    auc_a: float
    auc_b: float
    delta: float  # auc_b - auc_a
    se: float  # standard error of delta
    z: float  # delta / se
    p_value: float  # two-sided
    ci_low: float  # (1 - alpha) interval of delta
    ci_high: float
    n_pos: int
    n_neg: int

    def as_dict(self) -> dict[str, float | int]:
        """Plain-typed fields, ready for a CSV row or a JSON record."""
        return asdict(self)


class AucInterval(NamedTuple):
    """An AUC with its confidence interval (and the standard error behind it)."""

    auc: float
    low: float
    high: float
    se: float


def check_binary_scores(
    y_true: ArrayLike, *scores: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Validate labels and score vectors; return labels as bool and scores stacked as (k, n) float.

    Every public function funnels its input through here so a wrong column, a
    NaN from a diverged model or a label coded 1/2 is reported with what to
    fix instead of producing a plausible but meaningless AUC.
    """
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise InputError(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.dtype != np.bool_:
        if y.size and not np.issubdtype(y.dtype, np.number):
            raise InputError(f"y_true must be numeric 0/1 or bool, got dtype {y.dtype}")
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            bad = sorted(values - {0, 1}, key=str)[:5]
            raise InputError(f"y_true must contain only 0 and 1 (positive = 1), found {bad}")
        y = y == 1
    stacked = np.empty((len(scores), y.size), dtype=np.float64)
    for i, s in enumerate(scores):
        arr = np.asarray(s, dtype=np.float64)
        if arr.shape != y.shape:
            raise InputError(
                f"score vector {i} has shape {arr.shape} but y_true has shape {y.shape}: "
                "scores and labels must describe the same cases in the same order"
            )
        if not np.all(np.isfinite(arr)):
            raise InputError(
                f"score vector {i} contains {int((~np.isfinite(arr)).sum())} NaN or infinite values; "
                "check the model's predictions for those cases"
            )
        stacked[i] = arr
    return y, stacked


def _require_both_classes(y: NDArray[np.bool_]) -> tuple[int, int]:
    """Return (n_pos, n_neg); an AUC needs at least one case of each class."""
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise InputError(
            f"AUC needs both classes, got {n_pos} positive and {n_neg} negative cases; "
            "use a split where the label occurs and is absent"
        )
    return n_pos, n_neg


def fast_delong(
    y: NDArray[np.bool_], scores: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AUCs and their DeLong covariance for k score vectors (Sun & Xu 2014, O(n log n)).

    ``y`` is bool (n,), ``scores`` is (k, n), both already validated. Returns
    ``aucs`` (k,) and ``cov`` (k, k); the covariance is NaN where a class has a
    single case, since a variance of one placement value is undefined.
    """
    pos = scores[:, y]
    neg = scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    rank_pos = rankdata(pos, axis=1)  # midranks among positives
    rank_neg = rankdata(neg, axis=1)
    rank_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    # Negatives a positive outranks (ties 1/2) = its overall midrank minus its midrank among positives.
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    aucs = v10.mean(axis=1)
    if m < 2 or n < 2:
        return aucs, np.full((scores.shape[0],) * 2, np.nan)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(
    y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, alpha: float = 0.05
) -> DeLongResult:
    """Paired DeLong test of H0: AUC(a) = AUC(b) for two scores of the same cases.

    ``delta`` is AUC(b) - AUC(a), so a positive z means b ranks better; its
    (1 - alpha) interval is delta +- z_crit * se, as pROC reports it.
    Identical score vectors are the same classifier: z = 0, p = 1. A class with
    a single case leaves the variance undefined: se, z and p are NaN (logged).
    """
    _check_alpha(alpha)
    y, scores = check_binary_scores(y_true, scores_a, scores_b)
    n_pos, n_neg = _require_both_classes(y)
    aucs, cov = fast_delong(y, scores)
    delta = float(aucs[1] - aucs[0])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if np.array_equal(scores[0], scores[1]):
        se, z, p = 0.0, 0.0, 1.0
    elif np.isnan(var):
        log.warning(
            "DeLong test undefined with %d positive and %d negative cases (needs >= 2 of each); "
            "reporting NaN",
            n_pos,
            n_neg,
        )
        se = z = p = float("nan")
    else:
        se = float(np.sqrt(max(var, 0.0)))
        # se = 0 with delta != 0: every placement differs by the same constant, the difference is certain.
        z = delta / se if se > 0.0 else float(np.copysign(np.inf, delta)) if delta else 0.0
        p = float(2.0 * norm.sf(abs(z)))
    half = float(norm.isf(alpha / 2.0)) * se
    return DeLongResult(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        delta=delta,
        se=se,
        z=z,
        p_value=p,
        ci_low=delta - half,
        ci_high=delta + half,
        n_pos=n_pos,
        n_neg=n_neg,
    )


def delong_ci(y_true: ArrayLike, scores: ArrayLike, alpha: float = 0.05) -> AucInterval:
    """AUC with its (1 - alpha) DeLong normal-approximation interval, clipped to [0, 1] as pROC does.

    With a single case in a class the variance is undefined and se, low and
    high are NaN (pROC returns NA there too).
    """
    _check_alpha(alpha)
    y, stacked = check_binary_scores(y_true, scores)
    _require_both_classes(y)
    aucs, cov = fast_delong(y, stacked)
    auc = float(aucs[0])
    se = float(np.sqrt(max(cov[0, 0], 0.0))) if np.isfinite(cov[0, 0]) else float("nan")
    half = norm.isf(alpha / 2.0) * se
    return AucInterval(auc=auc, low=max(auc - half, 0.0), high=min(auc + half, 1.0), se=se)


def holm(p_values: ArrayLike) -> NDArray[np.float64]:
    """Holm step-down adjusted p-values (plain Holm, not Holm-Sidak); NaNs stay NaN and are not counted.

    The compare stage tests every (backbone, label, condition pair) and some
    tests are undefined (a label absent from a split); those NaNs must not
    inflate the family size of the others.
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    finite = ~np.isnan(flat)
    vals = flat[finite]
    if np.any((vals < 0.0) | (vals > 1.0)):
        raise InputError(f"p-values must lie in [0, 1], got min {vals.min()} and max {vals.max()}")
    order = np.argsort(vals, kind="stable")
    m = vals.size
    stepped = (m - np.arange(m)) * vals[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(stepped), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    out = np.full(flat.shape, np.nan)
    out[finite] = adjusted
    return out.reshape(p.shape)


def weighted_auc(
    pos: NDArray[np.float64],
    neg: NDArray[np.float64],
    w_pos: NDArray[np.float64],
    w_neg: NDArray[np.float64],
) -> NDArray[np.float64]:
    """AUC of many resamples at once, each given as case multiplicities (bootstrap counts).

    A resample that draws case i c_i times is the original cases weighted by
    c_i, so with the negatives sorted once, the (weighted) number of negatives
    below and tied with each positive is a cumulative sum read at fixed
    positions: O(B (m + n)) with no per-resample sort or Python loop.
    ``w_pos`` is (B, m), ``w_neg`` is (B, n); a resample with no positive or no
    negative weight gets NaN.
    """
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    cum = np.zeros((w_neg.shape[0], neg.size + 1))
    np.cumsum(w_neg[:, order], axis=1, out=cum[:, 1:])
    below = cum[:, np.searchsorted(neg_sorted, pos, side="left")]
    upto = cum[:, np.searchsorted(neg_sorted, pos, side="right")]
    wins = np.einsum("bm,bm->b", w_pos, 0.5 * (below + upto))
    total = w_pos.sum(axis=1) * cum[:, -1]
    return np.where(total > 0, wins / np.where(total > 0, total, 1.0), np.nan)


def resample_counts(rng: np.random.Generator, n: int, size: int) -> NDArray[np.float64]:
    """How often each of ``n`` cases is drawn in each of ``size`` bootstrap resamples of ``n`` draws.

    One flat ``bincount`` over all resamples: several times faster than
    ``Generator.multinomial`` with n equal probabilities, same distribution.
    """
    draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def check_bootstrap_params(n_boot: int, alpha: float) -> None:
    """Reject a resample count or significance level that would give no interval or an inverted one."""
    if n_boot < 1:
        raise ConfigError(f"n_boot must be a positive number of resamples, got {n_boot}")
    _check_alpha(alpha)


def _check_alpha(alpha: float) -> None:
    """Reject a significance level that would give an empty or inverted interval."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must lie strictly between 0 and 1, got {alpha}")
