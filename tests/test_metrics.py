"""cxrmask.metrics: AUROC, the No Finding score and the evaluation table."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import auroc, evaluate_predictions, no_finding_score
from cxrmask.stats import bootstrap_auc_ci, resample_counts

FINDINGS = ["Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis"]
LABELS = [*FINDINGS, "No Finding"]


def make_predictions(n: int = 120, seed: int = 0, absent: str | None = "Fibrosis") -> pd.DataFrame:
    """A predictions table as the classify stage writes it; ``absent`` has no positive case."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(FINDINGS))) < 0.25
    if absent is not None:
        truth[:, FINDINGS.index(absent)] = False
    probs = 1 / (1 + np.exp(-(rng.normal(size=truth.shape) + 1.5 * truth - 1.0)))
    table = pd.DataFrame({"image": [f"{i:08d}_000.png" for i in range(n)], "patient_id": np.arange(n) // 2})
    for k, label in enumerate(FINDINGS):
        table[f"true_{label}"] = truth[:, k].astype(int)
        table[f"score_{label}"] = probs[:, k]
    table["true_No Finding"] = (~truth.any(axis=1)).astype(int)
    table["score_No Finding"] = no_finding_score(probs, "one_minus_max")
    return table


def test_auroc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.2
    s = np.round(rng.normal(size=300) + y, 1)
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), rel=1e-12)
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auroc([0, 1], [0.5, 0.5]) == 0.5


def test_auroc_of_one_class_is_nan_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cxrmask.metrics"):
        assert np.isnan(auroc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert "0 positive of 3 cases" in caplog.text
    with pytest.raises(InputError, match="NaN"):
        auroc([0, 1, 1], [0.1, np.nan, 0.3])


def test_no_finding_score_methods() -> None:
    probs = np.array([[0.1, 0.5, 0.2], [0.0, 0.0, 0.0], [0.9, 0.9, 1.0]])
    np.testing.assert_allclose(no_finding_score(probs, "one_minus_max"), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(
        no_finding_score(probs, "prod_one_minus"), [0.9 * 0.5 * 0.8, 1.0, 0.0], atol=1e-15
    )
    # Both rank "more abnormal" lower: a case dominating another in every finding never scores higher.
    for method in ("one_minus_max", "prod_one_minus"):
        score = no_finding_score(probs, method)
        assert score[1] >= score[0] >= score[2]


def test_no_finding_score_rejects_unknown_method_and_bad_shape() -> None:
    with pytest.raises(ConfigError, match="one_minus_max, prod_one_minus"):
        no_finding_score(np.zeros((2, 5)), "mean")
    with pytest.raises(InputError, match="cases, findings"):
        no_finding_score(np.zeros(5), "one_minus_max")


def test_evaluate_predictions_table() -> None:
    table = make_predictions()
    result = evaluate_predictions(table, LABELS, n_boot=200, seed=3)
    assert list(result.columns) == ["label", "auroc", "ci_low", "ci_high", "n_pos", "n_neg"]
    assert list(result["label"]) == [*LABELS, "macro"]
    rows = result.set_index("label")
    for label in LABELS:
        y, s = table[f"true_{label}"], table[f"score_{label}"]
        assert rows.loc[label, "n_pos"] == y.sum() and rows.loc[label, "n_neg"] == len(y) - y.sum()
        if label == "Fibrosis":  # no positive case: undefined, not fatal
            assert rows.loc[label, ["auroc", "ci_low", "ci_high"]].isna().all()
            continue
        assert rows.loc[label, "auroc"] == pytest.approx(roc_auc_score(y, s), rel=1e-12)
        ci = bootstrap_auc_ci(y, s, n_boot=200, seed=3)
        assert (rows.loc[label, "ci_low"], rows.loc[label, "ci_high"]) == pytest.approx(ci)
    defined = [roc_auc_score(table[f"true_{f}"], table[f"score_{f}"]) for f in FINDINGS if f != "Fibrosis"]
    macro = rows.loc["macro"]
    assert macro["auroc"] == pytest.approx(np.mean(defined), rel=1e-12)  # No Finding not averaged
    assert macro["ci_low"] < macro["auroc"] < macro["ci_high"]
    assert macro["n_pos"] + macro["n_neg"] == len(table)
    assert macro["n_pos"] == rows.loc["No Finding", "n_neg"]
    assert result["n_pos"].dtype == np.int64


def test_macro_ci_is_deterministic_and_ignores_undefined_labels() -> None:
    table = make_predictions(absent=None)
    four = [f for f in FINDINGS if f != "Fibrosis"]
    without = evaluate_predictions(table, [*four, "No Finding"], n_boot=150, seed=5)
    table["true_Fibrosis"] = 0  # Fibrosis now undefined: the macro must equal the four-label one
    with_undefined = evaluate_predictions(table, LABELS, n_boot=150, seed=5)
    assert with_undefined.iloc[-1]["auroc"] == without.iloc[-1]["auroc"]
    assert (with_undefined.iloc[-1]["ci_low"], with_undefined.iloc[-1]["ci_high"]) == (
        without.iloc[-1]["ci_low"],
        without.iloc[-1]["ci_high"],
    )
    again = evaluate_predictions(table, LABELS, n_boot=150, seed=5)
    pd.testing.assert_frame_equal(again, with_undefined)
    other = evaluate_predictions(table, LABELS, n_boot=150, seed=6)
    assert other.iloc[-1]["ci_low"] != with_undefined.iloc[-1]["ci_low"]


def test_macro_ci_with_a_rare_label_redraws_resamples() -> None:
    """Two positives in 30 cases: ~1 in 8 case resamples loses them and is redrawn, not averaged.

    The reference replays the same draws (blocks of n_boot resamples) and
    scores each resample by comparing every positive with every negative of
    its explicitly repeated rows.
    """
    table = make_predictions(n=30, seed=2, absent=None)
    table["true_Mass"] = 0
    table.loc[[3, 17], "true_Mass"] = 1
    n_boot = 100
    result = evaluate_predictions(table, FINDINGS, n_boot=n_boot, seed=1).set_index("label")
    truth = table[[f"true_{f}" for f in FINDINGS]].to_numpy().T.astype(bool)
    scores = table[[f"score_{f}" for f in FINDINGS]].to_numpy().T
    rng = np.random.default_rng(1)
    means, skipped = [], 0
    while len(means) < n_boot:
        for counts in resample_counts(rng, len(table), n_boot).astype(int):
            rows = np.repeat(np.arange(len(table)), counts)
            aucs = []
            for y, s in zip(truth[:, rows], scores[:, rows], strict=True):
                pos, neg = s[y][:, None], s[~y][None, :]
                aucs.append(((pos > neg) + 0.5 * (pos == neg)).mean() if pos.size and neg.size else np.nan)
            if np.isnan(aucs).any():
                skipped += 1
                continue
            means.append(np.mean(aucs))
    assert skipped > 0  # the redraw path was exercised
    expected = np.quantile(means[:n_boot], [0.025, 0.975])
    assert (result.loc["macro", "ci_low"], result.loc["macro", "ci_high"]) == pytest.approx(
        expected, rel=1e-12
    )
    assert result.loc["macro", "ci_low"] < result.loc["macro", "auroc"] < result.loc["macro", "ci_high"]


def test_evaluate_predictions_reports_bad_tables() -> None:
    table = make_predictions()
    with pytest.raises(InputError, match="score_Edema"):
        evaluate_predictions(table.drop(columns="score_Edema"), LABELS, n_boot=10, seed=0)
    broken = table.copy()
    broken.loc[4, "score_Mass"] = np.nan
    with pytest.raises(InputError, match=r"'Mass'.*NaN"):
        evaluate_predictions(broken, LABELS, n_boot=10, seed=0)
    with pytest.raises(ConfigError, match="n_boot"):
        evaluate_predictions(table, LABELS, n_boot=0, seed=0)
