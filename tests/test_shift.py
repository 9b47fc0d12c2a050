"""The shifted-test-set table: drops and excess drops against AUROCs computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrmask.errors import InputError
from cxrmask.shift import SHIFT_COLUMNS, patient_groups, shift_table

LABELS = ["Pneumonia", "Mass"]


def _frame(
    truth: dict[str, np.ndarray], scores: dict[str, np.ndarray], prefix: str, patients
) -> pd.DataFrame:
    out = pd.DataFrame(
        {"image": [f"{prefix}{i:03d}.png" for i in range(len(patients))], "patient_id": patients}
    )
    for label in LABELS:
        out[f"true_{label}"] = truth[label]
        out[f"score_{label}"] = scores[label]
    return out


@pytest.fixture(scope="module")
def sets() -> tuple[dict, dict, dict]:
    """Test and shifted predictions of an original-image cell that reads a marker for Pneumonia, and of
    a masked cell that reads the finding: the marker goes with Pneumonia on test, not on shifted."""
    rng = np.random.default_rng(0)
    n = 120
    patients = np.repeat(np.arange(60), 2)
    truth = {label: (rng.random(n) < 0.4).astype(int) for label in LABELS}
    finding = {label: truth[label] + rng.normal(0, 0.8, n) for label in LABELS}
    marker_test = np.where(truth["Pneumonia"] == 1, rng.random(n) < 0.9, rng.random(n) < 0.1)
    marker_shifted = rng.random(n) < 0.3
    original = {
        name: _frame(truth, {**finding, "Pneumonia": finding["Pneumonia"] + 3 * marker}, name, patients)
        for name, marker in (("t", marker_test), ("s", marker_shifted))
    }
    masked = {name: _frame(truth, finding, name, patients) for name in ("t", "s")}
    test = {("net", "original"): original["t"], ("net", "tight"): masked["t"]}
    shifted = {("net", "original"): original["s"], ("net", "tight"): masked["s"]}
    return test, shifted, truth


def _auc(frame: pd.DataFrame, label: str) -> float:
    return roc_auc_score(frame[f"true_{label}"], frame[f"score_{label}"])


def test_drop_is_test_auroc_minus_shifted_auroc_per_label_and_macro(sets) -> None:
    test, shifted, _ = sets
    table = shift_table(test, shifted, LABELS, alpha=0.05, n_boot=300, seed=1).set_index(
        ["kind", "condition", "label"]
    )
    for condition in ("original", "tight"):
        key = ("net", condition)
        for label in LABELS:
            row = table.loc[("drop", condition, label)]
            assert row["auroc_test"] == pytest.approx(_auc(test[key], label))
            assert row["auroc_shifted"] == pytest.approx(_auc(shifted[key], label))
            assert row["estimate"] == pytest.approx(row["auroc_test"] - row["auroc_shifted"])
            assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
        macro = table.loc[("drop", condition, "macro")]
        expected = np.mean([_auc(test[key], lab) - _auc(shifted[key], lab) for lab in LABELS])
        assert macro["estimate"] == pytest.approx(expected)
    # the masked cell scores both sets identically: no drop, a degenerate interval, p = 1
    tight = table.loc[("drop", "tight", "Pneumonia")]
    assert (tight["estimate"], tight["ci_low"], tight["ci_high"], tight["p_value"]) == (0, 0, 0, 1)
    # the marker reader loses Pneumonia AUROC, significantly, and keeps Mass
    original = table.loc[("drop", "original", "Pneumonia")]
    assert original["estimate"] > 0.1 and original["ci_low"] > 0 and original["p_value"] < 0.05
    assert table.loc[("drop", "original", "Mass"), "estimate"] == pytest.approx(0)


def test_excess_drop_is_the_original_drop_minus_the_masked_one(sets) -> None:
    test, shifted, _ = sets
    table = shift_table(test, shifted, LABELS, alpha=0.05, n_boot=300, seed=1)
    drops = table[table["kind"] == "drop"].set_index(["condition", "label"])["estimate"]
    excess = table[table["kind"] == "excess_drop"].set_index("label")
    assert list(excess["condition"].unique()) == ["tight"]  # no row for original against itself
    for label in [*LABELS, "macro"]:
        assert excess.loc[label, "estimate"] == pytest.approx(
            drops[("original", label)] - drops[("tight", label)]
        )
    assert excess[["auroc_test", "auroc_shifted"]].isna().all().all()
    assert excess.loc["Pneumonia", "ci_low"] > 0
    # the equivalence interval (1 - 2 alpha) is the narrower one
    row = excess.loc["Pneumonia"]
    assert row["ci_low"] <= row["eq_low"] <= row["eq_high"] <= row["ci_high"]


def test_the_same_seed_gives_the_same_table_and_resamples_are_shared_by_the_cells(sets) -> None:
    test, shifted, _ = sets
    a = shift_table(test, shifted, LABELS, alpha=0.05, n_boot=250, seed=4)
    b = shift_table(test, shifted, LABELS, alpha=0.05, n_boot=250, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert (a["n_resamples"] == 250).all()


def test_cells_without_shifted_predictions_are_refused(sets) -> None:
    test, shifted, _ = sets
    with pytest.raises(InputError, match="shifted predictions for cells"):
        shift_table(test, {("net", "original"): shifted[("net", "original")]}, LABELS, 0.05, 10, 0)


def test_patients_of_each_set_are_resampled_as_their_own_group() -> None:
    """Test-only, shifted-only and shared patients: every resample keeps each group's size."""
    from cxrmask.shift import _stratified_counts

    groups = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8])]
    weights = _stratified_counts(np.random.default_rng(0), groups, 9, 500)
    for members in groups:
        assert (weights[:, members].sum(axis=1) == len(members)).all()
    assert weights[:, [0, 1, 2]].std() > 0  # they are resampled, not fixed


def test_the_macro_drop_averages_the_same_findings_in_both_sets(sets) -> None:
    test, shifted, _ = sets
    one_class = {cell: frame.assign(true_Mass=0) for cell, frame in shifted.items()}  # no Mass case
    table = shift_table(test, one_class, LABELS, alpha=0.05, n_boot=50, seed=0)
    macro = table[(table["kind"] == "drop") & (table["label"] == "macro")].set_index("condition")
    pneumonia = table[(table["kind"] == "drop") & (table["label"] == "Pneumonia")].set_index("condition")
    # Mass has one class on the shifted set, so both macro means are over Pneumonia alone
    assert macro["estimate"].to_numpy() == pytest.approx(pneumonia["estimate"].to_numpy())


def test_table_layout_intervals_and_the_excess_drops_bootstrap(sets) -> None:
    test, shifted, _ = sets
    table = shift_table(test, shifted, LABELS, alpha=0.05, n_boot=300, seed=1)
    assert list(table.columns) == SHIFT_COLUMNS and set(table["backbone"]) == {"net"}
    # the equivalence interval at alpha is the plain interval at 2 alpha, resample for resample
    wider = shift_table(test, shifted, LABELS, alpha=0.10, n_boot=300, seed=1)
    np.testing.assert_allclose(table[["eq_low", "eq_high"]], wider[["ci_low", "ci_high"]])
    # the masked cell scores both sets alike, so its drop is 0 on every resample and the excess drop's
    # resamples are the original's drop's: the same interval
    drop = table[(table["kind"] == "drop") & (table["condition"] == "original")].set_index("label")
    excess = table[table["kind"] == "excess_drop"].set_index("label")
    np.testing.assert_allclose(excess[["ci_low", "ci_high"]], drop[["ci_low", "ci_high"]])
    assert (drop.loc["macro", "ci_high"] - drop.loc["macro", "ci_low"]) > 0.01  # resampled, per resample


def test_a_label_with_one_class_on_either_set_is_skipped_not_the_ones_after_it(sets) -> None:
    test, shifted, _ = sets
    no_pneumonia = {cell: frame.assign(true_Pneumonia=1) for cell, frame in shifted.items()}
    table = shift_table(test, no_pneumonia, LABELS, alpha=0.05, n_boot=50, seed=0)
    drops = table[table["kind"] == "drop"].set_index(["condition", "label"])
    assert np.isnan(drops.loc[("original", "Pneumonia"), "auroc_shifted"])
    assert drops.loc[("original", "Mass"), "auroc_shifted"] == pytest.approx(
        _auc(shifted[("net", "original")], "Mass")
    )
    assert drops.loc[("original", "macro"), "estimate"] == pytest.approx(
        drops.loc[("original", "Mass"), "estimate"]
    )


def test_a_shifted_set_of_other_patients_is_resampled_apart(sets) -> None:
    """Another site: no patient in both sets. Each set's patients are resampled within that set, so the
    shifted AUROC still varies over resamples and has an interval."""
    test, shifted, _ = sets
    elsewhere = {cell: frame.assign(patient_id=frame["patient_id"] + 1000) for cell, frame in shifted.items()}
    table = shift_table(test, elsewhere, LABELS, alpha=0.05, n_boot=200, seed=0)
    row = table[(table["kind"] == "drop") & (table["condition"] == "tight")].set_index("label").loc["Mass"]
    # the same scores on both sets but independent resamples: the drop is 0 with an interval around it
    assert row["estimate"] == 0 and row["ci_low"] < -0.01 and row["ci_high"] > 0.01


def test_no_cells_is_refused() -> None:
    with pytest.raises(InputError, match="no cells to compare on the shifted test set"):
        shift_table({}, {}, LABELS, 0.05, 10, 0)


def test_patients_fall_in_three_groups_by_the_sets_they_are_in() -> None:
    patients, groups = patient_groups([5, 1, 3, 3, 9], [3, 7, 1, 8])
    assert patients == [1, 3, 5, 7, 8, 9]
    both, test_only, shifted_only = ([patients[i] for i in group] for group in groups)
    assert (both, test_only, shifted_only) == ([1, 3], [5, 9], [7, 8])
    assert all(group.dtype == np.int64 for group in groups)
    _, twins = patient_groups([1, 2], [2, 1])
    assert [len(g) for g in twins] == [2, 0, 0]
