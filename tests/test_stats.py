"""cxrmask.stats against independent references: the textbook DeLong, sklearn, pROC, statsmodels."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from cxrmask.errors import ConfigError, InputError
from cxrmask.stats import (
    check_binary_scores,
    check_bootstrap_params,
    delong_ci,
    delong_test,
    fast_delong,
    holm,
    resample_counts,
    weighted_auc,
)

DATA = Path(__file__).resolve().parent / "data"
PROC_SCRIPT = DATA / "proc_reference.R"
PROC_REFERENCE = json.loads((DATA / "proc_reference.json").read_text())
RTOL = 1e-10


def naive_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) as written: placement values from all m x n positive/negative comparisons.

    psi(x, y) = 1 if x > y, 1/2 if x == y, else 0; V10_i = mean_j psi(X_i, Y_j),
    V01_j = mean_i psi(X_i, Y_j); S = S10 / m + S01 / n with unbiased covariances.
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    m, n = int(y.sum()), int((~y).sum())
    v10 = np.empty((scores.shape[0], m))
    v01 = np.empty((scores.shape[0], n))
    for r, s in enumerate(scores):
        x, z = s[y][:, None], s[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)
        v10[r], v01[r] = psi.mean(axis=1), psi.mean(axis=0)
    aucs = v10.mean(axis=1)
    d10, d01 = v10 - aucs[:, None], v01 - aucs[:, None]
    cov = d10 @ d10.T / ((m - 1) * m) + d01 @ d01.T / ((n - 1) * n)
    return aucs, cov


def tied_data(n: int, k: int, seed: int, decimals: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Labels with ~30% positives and k correlated, rounded (hence tied) score vectors."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    y[:2], y[2:4] = True, False  # both classes, at least two of each
    base = rng.normal(size=n) + y
    scores = np.round(base + rng.normal(scale=0.8, size=(k, n)), decimals)
    return y.astype(int), scores


@pytest.mark.parametrize(("n", "decimals"), [(8, 0), (57, 1), (300, 1), (1000, 2), (2500, 0)])
def test_fast_delong_matches_textbook_definition(n: int, decimals: int) -> None:
    y, scores = tied_data(n, k=3, seed=n, decimals=decimals)
    assert len(np.unique(scores)) < scores.size  # the data really has ties
    yb, stacked = check_binary_scores(y, *scores)
    aucs, cov = fast_delong(yb, stacked)
    ref_aucs, ref_cov = naive_delong(y, scores)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(aucs, [roc_auc_score(y, s) for s in scores], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_test_statistic_matches_textbook(seed: int) -> None:
    y, (a, b) = tied_data(400, k=2, seed=seed)
    result = delong_test(y, a, b)
    aucs, cov = naive_delong(y, np.stack([a, b]))
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert result.delta == pytest.approx(aucs[1] - aucs[0], rel=1e-12)
    assert result.se == pytest.approx(se, rel=1e-10)
    assert result.z == pytest.approx((aucs[1] - aucs[0]) / se, rel=1e-10)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(result.z)), rel=1e-12)
    assert (result.n_pos, result.n_neg) == (int(y.sum()), int(len(y) - y.sum()))
    assert result.as_dict()["z"] == result.z
    swapped = delong_test(y, b, a)
    assert swapped.z == pytest.approx(-result.z) and swapped.p_value == pytest.approx(result.p_value)


def _rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / max(abs(expected), 1e-300)


def _assert_matches_proc(dataset: dict) -> None:
    """Compare every pROC output stored for one dataset with cxrmask's."""
    y, a, b, ref = dataset["y"], dataset["a"], dataset["b"], dataset["proc"]
    result = delong_test(y, a, b)
    # pROC reports roc1 - roc2 = auc_a - auc_b; cxrmask's delta is auc_b - auc_a.
    checks = {
        "auc_a": (result.auc_a, ref["auc_a"]),
        "auc_b": (result.auc_b, ref["auc_b"]),
        "z": (result.z, -ref["z_a_minus_b"]),
        "p_value": (result.p_value, ref["p_value"]),
        "ci_low": (result.ci_low, -ref["diff_ci_95"][1]),
        "ci_high": (result.ci_high, -ref["diff_ci_95"][0]),
    }
    for scores, var, intervals in ((a, ref["var_a"], ref["ci_a"]), (b, ref["var_b"], ref["ci_b"])):
        for interval in intervals:
            ours = delong_ci(y, scores, alpha=1 - interval["conf_level"])
            tag = f"{interval['conf_level']}:{interval['auc']}"
            checks[f"auc {tag}"] = (ours.auc, interval["auc"])
            checks[f"low {tag}"] = (ours.low, interval["low"])
            checks[f"high {tag}"] = (ours.high, interval["high"])
            checks[f"var {tag}"] = (ours.se**2, var)
    bad = {k: v for k, v in checks.items() if _rel(*v) > RTOL}
    assert not bad, f"{dataset['name']}: differs from pROC {bad}"


@pytest.mark.parametrize("dataset", PROC_REFERENCE["datasets"], ids=lambda d: d["name"])
def test_matches_stored_proc_reference(dataset: dict) -> None:
    _assert_matches_proc(dataset)


def test_stored_proc_reference_covers_ties_and_both_directions() -> None:
    """The reference is only worth as much as its datasets: ties, AUC < 0.5, a tiny p-value."""
    datasets = PROC_REFERENCE["datasets"]
    assert all(len(set(d["a"])) < len(d["a"]) for d in datasets)
    assert any(d["proc"]["auc_a"] < 0.5 for d in datasets)
    assert any(d["proc"]["p_value"] < 1e-10 for d in datasets)
    assert (DATA / "proc_reference.json").stat().st_size < 100_000


def _have_proc() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = 'quit(status = as.integer(!all(sapply(c("pROC", "jsonlite"), requireNamespace, quietly = TRUE))))'
    return subprocess.run(["Rscript", "-e", probe], capture_output=True, timeout=120).returncode == 0


def test_matches_live_proc(tmp_path: Path) -> None:
    if not _have_proc():  # probed here, not at import: the benchmark imports this module
        pytest.skip("needs Rscript with the pROC and jsonlite packages")
    out = tmp_path / "proc.json"
    subprocess.run(["Rscript", str(PROC_SCRIPT), str(out)], check=True, capture_output=True, timeout=300)
    live = json.loads(out.read_text())
    # The stored file is what this script makes: same inputs.
    for fresh, stored in zip(live["datasets"], PROC_REFERENCE["datasets"], strict=True):
        assert (fresh["y"], fresh["a"], fresh["b"]) == (stored["y"], stored["a"], stored["b"])
        _assert_matches_proc(fresh)


def test_identical_scores_give_z_zero_p_one() -> None:
    y, (a,) = tied_data(200, k=1, seed=3)
    result = delong_test(y, a, a.copy())
    assert (result.delta, result.se, result.z, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (result.ci_low, result.ci_high) == (0.0, 0.0)


def test_certain_difference_has_infinite_z() -> None:
    """Perfect against perfectly reversed scores: every placement differs by 1, se = 0 (pROC: z = -Inf)."""
    y = np.array([1, 1, 1, 0, 0, 0])
    s = np.array([4.0, 5.0, 6.0, 1.0, 2.0, 3.0])
    result = delong_test(y, s, -s)
    assert (result.auc_a, result.auc_b, result.se) == (1.0, 0.0, 0.0)
    assert result.z == -np.inf and result.p_value == 0.0


def test_auc_direction_is_not_flipped() -> None:
    y, (a,) = tied_data(100, k=1, seed=4)
    assert delong_ci(y, -a).auc == pytest.approx(1 - delong_ci(y, a).auc, rel=1e-12)
    assert delong_ci(y, -a).auc < 0.5


def test_single_case_in_a_class_gives_nan_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    y = np.array([1, 0, 0, 0, 0])
    with caplog.at_level(logging.WARNING, logger="cxrmask.stats"):
        result = delong_test(y, [0.9, 0.1, 0.5, 0.3, 0.95], [0.8, 0.2, 0.1, 0.4, 0.3])
    assert result.auc_a == 0.75 and result.auc_b == 1.0
    assert np.isnan(result.se) and np.isnan(result.z) and np.isnan(result.p_value)
    assert "needs >= 2 of each" in caplog.text
    assert np.isnan(delong_ci(y, [0.9, 0.1, 0.5, 0.3, 0.95]).low)


@pytest.mark.parametrize(
    ("y", "a", "b", "message"),
    [
        ([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2], "shape .* the same cases in the same order"),
        ([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], r"only 0 and 1 .*, found \[2\]$"),
        ([0, 1, 9, 8], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], r"only 0 and 1 .*, found \[8, 9\]$"),
        (
            [0, 1, 2, 3, 4, 5, 6, 7],
            np.arange(8.0),
            np.arange(8.0),
            r"found \[2, 3, 4, 5, 6\]$",
        ),  # the first five
        (
            [1, 1, 1],
            [0.1, 0.2, 0.3],
            [0.3, 0.2, 0.1],
            "both classes.*use a split where the label occurs and is absent",
        ),
        ([0, 0, 0], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], "both classes"),
        (
            [0, 1, 0, 1],
            [np.nan, np.inf, -np.inf, 0.4],
            [0.1, 0.2, 0.3, 0.4],
            "contains 3 NaN or infinite values; check the model's predictions for those cases",
        ),
        ([0, 1, np.nan, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "only 0 and 1"),
        (["a", "b", "a", "b"], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "numeric"),
        ([[0, 1], [1, 0]], [0.1, 0.2], [0.1, 0.2], "one-dimensional"),
    ],
)
def test_bad_input_is_a_clear_error(y: list, a: list, b: list, message: str) -> None:
    with pytest.raises(InputError, match=message):
        delong_test(y, a, b)


def test_bad_alpha_is_a_config_error() -> None:
    for alpha in (1.5, 0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="alpha"):
            delong_ci([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], alpha=alpha)
    with pytest.raises(ConfigError, match="n_boot"):
        check_bootstrap_params(0, 0.05)


def test_the_smallest_settings_are_allowed() -> None:
    """Levels just inside (0, 1) still give an interval: the limits are exclusive ones."""
    check_bootstrap_params(1, 0.05)
    y, (a,) = tied_data(60, k=1, seed=2)
    wide, narrow = delong_ci(y, a, alpha=1e-9), delong_ci(y, a, alpha=0.999)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


def test_the_same_ranking_differs_by_nothing() -> None:
    """A monotone transform ranks the cases identically: z = 0 and p = 1, not a "certain" difference."""
    y, (a,) = tied_data(120, k=1, seed=8)
    result = delong_test(y, a, 2.0 * a + 1.0)
    assert (result.delta, result.se, result.z, result.p_value) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("two_positives", [True, False], ids=["two positives", "two negatives"])
def test_exactly_two_cases_in_a_class_match_the_textbook(two_positives: bool) -> None:
    rng = np.random.default_rng(12)
    y = np.r_[np.ones(2), np.zeros(9)] if two_positives else np.r_[np.ones(9), np.zeros(2)]
    scores = np.round(rng.normal(size=(2, 11)) + y, 1)
    aucs, cov = fast_delong(y.astype(bool), scores)
    expected_aucs, expected_cov = naive_delong(y, scores)
    np.testing.assert_allclose(aucs, expected_aucs, rtol=RTOL)
    np.testing.assert_allclose(cov, expected_cov, rtol=RTOL)


def test_a_single_case_in_a_class_gives_a_nan_covariance_of_the_right_shape_quietly() -> None:
    y = np.array([True, False, False, False, False])
    scores = np.array([[0.9, 0.1, 0.5, 0.3, 0.2], [0.8, 0.2, 0.1, 0.4, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero degrees of freedom on the way
        aucs, cov = fast_delong(y, scores)
    np.testing.assert_allclose(aucs, [1.0, 1.0, 0.0])
    assert cov.shape == (3, 3) and np.isnan(cov).all()


def test_delong_interval_is_clipped_to_one() -> None:
    y = np.r_[np.ones(6), np.zeros(6)]
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0])
    ci = delong_ci(y, s)
    assert ci.auc + norm.isf(0.025) * ci.se > 1.0  # the unclipped interval would pass 1
    assert ci.high == 1.0 and ci.low < ci.auc


@pytest.mark.parametrize("size", [1, 2, 7, 50])
def test_holm_matches_statsmodels(size: int) -> None:
    rng = np.random.default_rng(size)
    p = rng.random(size) ** 3
    p[: size // 3] = p[0]  # ties among p-values
    expected = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(holm(p), expected, rtol=1e-15)


def test_holm_known_values_and_nans() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    rng = np.random.default_rng(9)
    p = rng.random(20) ** 2
    p[[1, 5, 6, 17]] = np.nan
    adjusted = holm(p)
    finite = ~np.isnan(p)
    assert np.array_equal(np.isnan(adjusted), ~finite)
    np.testing.assert_allclose(adjusted[finite], multipletests(p[finite], method="holm")[1], rtol=1e-15)
    assert np.all(adjusted[finite] >= p[finite]) and np.all(adjusted[finite] <= 1.0)
    assert holm([]).shape == (0,)
    assert np.isnan(holm([np.nan])).all()


def test_holm_rejects_out_of_range() -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        holm([0.2, 1.3])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        holm([-0.01, 0.3])


def test_holm_takes_the_ends_of_the_range_and_keeps_the_shape() -> None:
    """p = 0 (a certain difference, z infinite) and p = 1 (identical scores) are p-values like any other."""
    np.testing.assert_allclose(holm([0.0, 1.0, 0.02]), [0.0, 1.0, 0.04])
    table = np.array([[0.01, 0.04], [0.03, np.nan]])
    adjusted = holm(table)
    assert adjusted.shape == (2, 2)
    np.testing.assert_allclose(adjusted, [[0.03, 0.06], [0.06, np.nan]])


def test_weighted_auc_equals_auc_of_repeated_cases() -> None:
    rng = np.random.default_rng(5)
    pos, neg = np.round(rng.normal(1, 1, 30), 1), np.round(rng.normal(0, 1, 45), 1)
    w_pos = rng.integers(0, 4, size=(6, 30)).astype(float)
    w_neg = rng.integers(0, 4, size=(6, 45)).astype(float)
    w_neg[5] = 0.0  # no negative: undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined is NaN by choice, not by a division by zero
        got = weighted_auc(pos, neg, w_pos, w_neg)
    for b in range(5):
        x, z = np.repeat(pos, w_pos[b].astype(int)), np.repeat(neg, w_neg[b].astype(int))
        expected = roc_auc_score(np.r_[np.ones(x.size), np.zeros(z.size)], np.r_[x, z])
        assert got[b] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(got[5])


def test_resample_counts_are_bootstrap_draws() -> None:
    counts = resample_counts(np.random.default_rng(0), 40, 500)
    assert counts.shape == (500, 40)
    assert np.all(counts.sum(axis=1) == 40)
    assert counts.mean() == pytest.approx(1.0) and counts.var() == pytest.approx(1 - 1 / 40, rel=0.05)
    # every case, the first and the last included, is drawn once per resample on average
    np.testing.assert_allclose(counts.mean(axis=0), 1.0, atol=0.2)


def test_weighted_auc_of_one_positive_against_one_negative() -> None:
    pos, neg = np.array([0.2, 0.7]), np.array([0.5, 0.2])
    w_pos = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    w_neg = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(weighted_auc(pos, neg, w_pos, w_neg), [0.0, 1.0, 0.5])


def test_identical_scores_are_the_same_classifier_z_zero_p_one() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    s = rng.random(80) + 0.3 * y
    result = delong_test(y, s, s.copy())
    assert (result.delta, result.se, result.z, result.p_value) == (0.0, 0.0, 0.0, 1.0)
