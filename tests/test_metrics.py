"""cxrmask.metrics: AUROC, the No Finding score and the evaluation table."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import auroc, no_finding_score

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


def test_no_finding_score_with_a_single_finding_is_its_complement() -> None:
    p = np.array([[0.2], [0.9], [0.0]])
    for method in ("one_minus_max", "prod_one_minus"):
        np.testing.assert_allclose(no_finding_score(p, method), [0.8, 0.1, 1.0])
