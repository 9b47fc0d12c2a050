"""Per-label DeLong intervals at alpha, patient-level bootstrap, paired contrasts, seed spread."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from cxrmask.cells import load_cells
from cxrmask.comparisons import delong_rows
from cxrmask.errors import ConfigError, InputError
from cxrmask.metrics import MACRO, auroc
from cxrmask.stages.write_report import seed_table
from cxrmask.uncertainty import (
    auroc_intervals,
    bootstrap_p,
    condition_contrasts,
    interval,
    patient_bootstrap,
    seed_spread,
)
from cxrmask.vocabulary import NO_FINDING

PROC = json.loads((Path(__file__).parent / "data" / "proc_reference.json").read_text())
FINDINGS = ["Mass", "Edema"]
LABELS = [*FINDINGS, NO_FINDING]


def predictions(n_patients: int, seed: int, signal: float = 1.0, per_patient: int = 1) -> pd.DataFrame:
    """Test predictions for two findings and No Finding; each patient's images repeat the same case."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n_patients, len(FINDINGS))) < 0.35
    scores = 1 / (1 + np.exp(-(signal * (2 * truth - 1) + rng.normal(0, 1, truth.shape))))
    frame = pd.DataFrame(
        {"image": [f"{p:05d}_000.png" for p in range(n_patients)], "patient_id": np.arange(n_patients)}
    )
    for k, label in enumerate(FINDINGS):
        frame[f"true_{label}"] = truth[:, k].astype(int)
        frame[f"score_{label}"] = scores[:, k]
    frame[f"true_{NO_FINDING}"] = (~truth.any(axis=1)).astype(int)
    frame[f"score_{NO_FINDING}"] = 1 - scores.max(axis=1)
    if per_patient > 1:
        copies = [
            frame.assign(image=frame["image"].str.replace("_000", f"_{i:03d}")) for i in range(per_patient)
        ]
        frame = pd.concat(copies).sort_values("image").reset_index(drop=True)
    return frame


def proc_frame(dataset: dict, column: str) -> pd.DataFrame:
    n = len(dataset["y"])
    return pd.DataFrame(
        {
            "image": [f"{i:05d}.png" for i in range(n)],
            "patient_id": np.arange(n),
            "true_Mass": dataset["y"],
            "score_Mass": dataset[column],
        }
    )


@pytest.mark.parametrize("dataset", PROC["datasets"], ids=lambda d: d["name"])
@pytest.mark.parametrize("level", [0.95, 0.9])
def test_per_label_intervals_are_procs_delong_ci_at_alpha(dataset: dict, level: float) -> None:
    expected = next(ci for ci in dataset["proc"]["ci_a"] if ci["conf_level"] == level)
    table = auroc_intervals(proc_frame(dataset, "a"), ["Mass"], alpha=1 - level, n_boot=50, seed=0)
    row = table.set_index("label").loc["Mass"]
    assert row["ci_method"] == "delong"
    np.testing.assert_allclose(
        [row["auroc"], row["ci_low"], row["ci_high"]],
        [
            expected["auc"],
            expected["low"],
            expected["high"],
        ],
        atol=1e-10,
    )


def test_the_delong_table_interval_follows_alpha(tmp_path: Path) -> None:
    """The DeLong ΔAUROC interval is pROC's at 95% and narrows by z(0.95)/z(0.975) at alpha = 0.1."""
    dataset = PROC["datasets"][0]
    a = proc_frame(dataset, "a")
    b = proc_frame(dataset, "b")
    for frame in (a, b):
        frame[f"true_{NO_FINDING}"] = 1 - frame["true_Mass"]
        frame[f"score_{NO_FINDING}"] = 1 - frame["score_Mass"]
    paths = []
    for name, frame in (("a", a), ("b", b)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        paths.append(tmp_path / f"{name}.csv")
    cells = [
        {"backbone": "net", "mask": "original", "seed": 0},
        {"backbone": "net", "mask": "loose", "seed": 0},
    ]
    widths = {}
    for alpha in (0.05, 0.1):
        table = delong_rows(load_cells(paths, cells), ["Mass"], [("original", "loose")], alpha)
        row = table.set_index("label").loc["Mass"]
        widths[alpha] = row["ci_high"] - row["ci_low"]
        if alpha == 0.05:
            # pROC reports a - b; the table reports b - a
            low, high = dataset["proc"]["diff_ci_95"]
            np.testing.assert_allclose([row["ci_low"], row["ci_high"]], [-high, -low], atol=1e-10)
    assert widths[0.1] / widths[0.05] == pytest.approx(1.6448536269514722 / 1.959963984540054)


def test_patient_bootstrap_treats_a_patients_images_as_one_draw() -> None:
    """Three identical images per patient carry one patient's information: the patient bootstrap gives
    the interval of the one-image-per-patient data exactly (an image bootstrap: ~1/sqrt(3) as wide)."""
    single = predictions(60, seed=1)
    tripled = predictions(60, seed=1, per_patient=3)
    one = patient_bootstrap({"c": single}, LABELS, n_boot=300, seed=4)
    three = patient_bootstrap({"c": tripled}, LABELS, n_boot=300, seed=4)
    assert three.n_patients == one.n_patients == 60
    np.testing.assert_allclose(three.point, one.point)
    np.testing.assert_allclose(three.boot, one.boot, equal_nan=True)
    width = np.subtract(*interval(three.boot[:, 0, -1], 0.05)[1::-1])
    assert width > 0.05


def test_macro_is_the_mean_of_the_findings_and_leaves_no_finding_out() -> None:
    frame = predictions(80, seed=2)
    reps = patient_bootstrap({"c": frame}, LABELS, n_boot=50, seed=0)
    expected = np.mean([auroc(frame[f"true_{label}"], frame[f"score_{label}"]) for label in FINDINGS])
    assert reps.columns == [*LABELS, MACRO]
    assert reps.point[0, -1] == pytest.approx(expected)
    np.testing.assert_allclose(reps.boot[:, 0, -1], np.nanmean(reps.boot[:, 0, :2], axis=1))


def test_auroc_intervals_table() -> None:
    frame = predictions(90, seed=3)
    table = auroc_intervals(frame, LABELS, alpha=0.05, n_boot=200, seed=0).set_index("label")
    assert list(table.index) == [*LABELS, MACRO]
    assert (table["ci_method"] == ["delong"] * 3 + ["patient_bootstrap"]).all()
    assert (table["ci_low"] < table["auroc"]).all() and (table["auroc"] < table["ci_high"]).all()
    assert table.loc["Mass", "n_pos"] == frame["true_Mass"].sum()
    assert table.loc[MACRO, "n_pos"] + table.loc[MACRO, "n_neg"] == len(frame)
    assert (table["n_patients"] == 90).all()
    again = auroc_intervals(frame, LABELS, alpha=0.05, n_boot=200, seed=0).set_index("label")
    pd.testing.assert_frame_equal(table, again)
    narrower = auroc_intervals(frame, LABELS, alpha=0.2, n_boot=200, seed=0).set_index("label")
    assert (narrower["ci_high"] - narrower["ci_low"] < table["ci_high"] - table["ci_low"]).all()


def test_a_label_with_one_class_is_nan_and_out_of_the_macro() -> None:
    frame = predictions(50, seed=4).assign(true_Edema=0)
    table = auroc_intervals(frame, LABELS, alpha=0.05, n_boot=100, seed=0).set_index("label")
    assert np.isnan(table.loc["Edema", ["auroc", "ci_low", "ci_high"]].astype(float)).all()
    assert table.loc[MACRO, "auroc"] == pytest.approx(table.loc["Mass", "auroc"])


def test_bootstrap_p_known_values() -> None:
    assert bootstrap_p(np.full(99, 0.1)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.full(99, -0.1)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.linspace(-1, 1, 101)) == 1.0
    assert bootstrap_p(np.array([np.nan, 0.2, 0.3])) == pytest.approx(2 / 3)
    assert np.isnan(bootstrap_p(np.array([np.nan])))


def test_interval_ignores_undefined_resamples_and_gives_up_when_most_are() -> None:
    values = np.concatenate([np.linspace(0, 1, 101), [np.nan] * 5])
    low, high, n = interval(values, 0.1)
    assert (low, high, n) == (pytest.approx(0.05), pytest.approx(0.95), 101)
    assert np.isnan(interval(np.array([0.5] * 10 + [np.nan] * 90), 0.05)[0])


def contrast_frames(n: int = 120):
    base = predictions(n, seed=5, signal=1.5)
    worse = predictions(n, seed=5, signal=0.5)  # same truth, weaker scores
    return {
        ("net", "original"): base,
        ("net", "loose"): base.copy(),
        ("net", "tight"): worse,
        ("other", "original"): base.copy(),
        ("other", "tight"): base.copy(),
    }


def test_contrasts_are_paired_and_exact_where_cells_coincide() -> None:
    pairs = [["original", "tight"], ["original", "loose"]]
    table = condition_contrasts(contrast_frames(), LABELS, pairs, alpha=0.05, n_boot=400, seed=1)
    delta = table[table["kind"] == "delta"].set_index(["backbone", "condition", "condition_b", "label"])
    same = delta.loc[("net", "original", "loose", MACRO)]
    assert (same["estimate"], same["ci_low"], same["ci_high"], same["p_value"]) == (0, 0, 0, 1)
    drop = delta.loc[("net", "original", "tight", MACRO)]
    cells = table[table["kind"] == "cell"].set_index(["backbone", "condition", "label"])
    assert drop["estimate"] == pytest.approx(
        cells.loc[("net", "tight", MACRO), "estimate"] - cells.loc[("net", "original", MACRO), "estimate"]
    )
    assert drop["ci_high"] < 0 and drop["p_value"] < 0.01
    assert drop["ci_low"] < drop["eq_low"] < drop["estimate"] < drop["eq_high"] < drop["ci_high"]
    interaction = table[(table["kind"] == "interaction") & (table["label"] == MACRO)]
    row = interaction[interaction["condition"] == "original->tight"].iloc[0]
    assert (row["backbone"], row["backbone_b"]) == ("net", "other")
    assert row["estimate"] == pytest.approx(-drop["estimate"])  # "other" loses nothing from tight
    assert row["ci_low"] > 0
    versus = table[table["kind"] == "versus_best"]
    assert len(versus) == len(contrast_frames()) - 1 and (versus["estimate"] <= 0).all()
    assert set(versus["label"]) == {MACRO}


def test_only_the_contenders_cells_compete_for_best_and_are_compared_with_it() -> None:
    """A better cell of another condition (CheXmask's) is left out of the best-cell contrasts: the paper's
    *best* claim is about its own grid."""
    frames = contrast_frames()
    frames[("net", "chexmask-tight")] = predictions(120, seed=5, signal=4.0)  # the best AUROC by far
    pairs = [["original", "tight"]]
    everyone = condition_contrasts(frames, LABELS, pairs, alpha=0.05, n_boot=50, seed=1)
    best_of_all = everyone[everyone["kind"] == "versus_best"]
    assert set(zip(best_of_all["backbone"], best_of_all["condition"], strict=True)) == {
        ("net", "chexmask-tight")
    }
    study = condition_contrasts(frames, LABELS, pairs, 0.05, 50, 1, contenders=("original", "tight", "loose"))
    versus = study[study["kind"] == "versus_best"]
    assert len(versus) == len(contrast_frames()) - 1
    assert "chexmask-tight" not in set(versus["condition"]) | set(versus["condition_b"])
    assert (versus["estimate"] <= 0).all()
    cells = study[(study["kind"] == "cell") & (study["label"] == MACRO)]
    assert len(cells) == len(frames)  # every cell still has its own AUROC row
    alone = condition_contrasts(frames, LABELS, pairs, 0.05, 50, 1, contenders=("loose",))
    assert (alone["kind"] != "versus_best").all()  # one contender: no contrast with the best


def test_pairing_makes_a_small_difference_far_better_determined_than_either_auroc() -> None:
    base = predictions(150, seed=6, signal=0.7)
    rng = np.random.default_rng(0)
    nudged = base.assign(
        **{f"score_{label}": base[f"score_{label}"] + rng.normal(0, 0.02, len(base)) for label in LABELS}
    )
    table = condition_contrasts(
        {("net", "original"): base, ("net", "loose"): nudged}, LABELS, [["original", "loose"]], 0.05, 400, 2
    )
    rows = table.set_index(["kind", "condition", "label"])
    cell = rows.loc[("cell", "original", MACRO)]
    delta = rows.loc[("delta", "original", MACRO)]
    assert delta["ci_high"] - delta["ci_low"] < 0.25 * (cell["ci_high"] - cell["ci_low"])
    assert delta["ci_low"] < 0 < delta["ci_high"] and delta["p_value"] > 0.05


def test_contrasts_refuse_cells_on_other_images() -> None:
    frames = contrast_frames()
    frames[("net", "tight")] = frames[("net", "tight")].iloc[1:]
    with pytest.raises(InputError, match="other test images"):
        condition_contrasts(frames, LABELS, [["original", "tight"]], alpha=0.05, n_boot=10, seed=0)
    with pytest.raises(InputError, match="patient_id"):
        patient_bootstrap({"c": predictions(20, 0).drop(columns="patient_id")}, LABELS, 10, 0)
    with pytest.raises(ConfigError, match="n_boot"):
        patient_bootstrap({"c": predictions(20, 0)}, LABELS, 0, 0)


def test_seed_spread_is_mean_and_sd_over_seeds() -> None:
    table = pd.DataFrame(
        {
            "backbone": ["net"] * 4,
            "mask": ["original", "original", "original", "tight"],
            "seed": [0, 1, 2, 0],
            "label": [MACRO] * 4,
            "auroc": [0.7, 0.8, 0.9, 0.6],
        }
    )
    spread = seed_spread(table).set_index("mask")
    assert spread.loc["original", "mean"] == pytest.approx(0.8)
    assert spread.loc["original", "sd"] == pytest.approx(0.1)
    assert spread.loc["original", "n_seeds"] == 3
    assert np.isnan(spread.loc["tight", "sd"])


def test_bad_tables_name_the_label_and_the_fix() -> None:
    frame = predictions(30, seed=0)
    with pytest.raises(InputError, match="score_ columns for 'Edema'"):
        auroc_intervals(frame.drop(columns="score_Edema"), LABELS, 0.05, 10, 0)
    frame.loc[4, "score_Mass"] = np.nan
    with pytest.raises(InputError, match=r"'Mass' hold 1 NaN"):
        auroc_intervals(frame, LABELS, 0.05, 10, 0)
    with pytest.raises(ConfigError, match="alpha"):
        auroc_intervals(predictions(30, seed=0), LABELS, 1.5, 10, 0)


def test_the_patient_bootstrap_covers_the_true_auc_with_correlated_images() -> None:
    """Binormal scores with a shared patient effect (two images per patient): AUC = Phi(d / sqrt(2 (1 +
    tau^2))) for images of different patients; a 90% patient-bootstrap interval covers it ~90% of the time."""
    d, tau, trials, n_patients = 1.0, 1.0, 150, 80
    rng = np.random.default_rng(7)
    covered = 0
    for t in range(trials):
        y = np.repeat(rng.random(n_patients) < 0.4, 2)
        effect = np.repeat(rng.normal(0, tau, n_patients), 2)
        s = d * y + effect + rng.normal(0, 1, y.size)
        frame = pd.DataFrame(
            {"image": [f"{i:05d}" for i in range(y.size)], "patient_id": np.arange(y.size) // 2}
        ).assign(true_Mass=y.astype(int), score_Mass=s)
        row = auroc_intervals(frame, ["Mass"], 0.1, 200, t).set_index("label").loc[MACRO]
        covered += row["ci_low"] <= norm.cdf(d / np.sqrt(2 * (1 + tau**2))) <= row["ci_high"]
    assert 0.8 <= covered / trials <= 0.97


def test_the_reports_auroc_table_shows_mean_and_sd_over_seeds() -> None:
    table = pd.DataFrame(
        {
            "backbone": ["net"] * 6,
            "mask": ["original"] * 4 + ["tight"] * 2,
            "seed": [0, 1, 0, 1, 0, 0],
            "label": [MACRO, MACRO, "Mass", "Mass", MACRO, "Mass"],
            "auroc": [0.8, 0.82, 0.7, 0.74, 0.6, 0.5],
        }
    )
    shown = seed_table(table)
    assert list(shown.columns) == ["backbone", "mask", MACRO, "Mass"]
    assert shown.iloc[0].tolist() == ["net", "original", "0.810 ± 0.014", "0.720 ± 0.028"]
    assert shown.iloc[1].tolist() == ["net", "tight", "0.600", "0.500"]  # one seed: no sd


def test_the_macro_rows_interval_and_counts_are_the_macros_own() -> None:
    """The macro interval is the percentile interval of the macro's resamples (not a label's), its counts
    split the images by whether any finding is present, and each label's negatives are the rest."""
    frame = predictions(80, seed=7)
    table = auroc_intervals(frame, LABELS, alpha=0.1, n_boot=300, seed=4).set_index("label")
    reps = patient_bootstrap({"cell": frame}, LABELS, 300, 4)
    low, high = np.quantile(reps.boot[:, 0, -1], [0.05, 0.95])
    assert (table.loc[MACRO, "ci_low"], table.loc[MACRO, "ci_high"]) == pytest.approx((low, high))
    abnormal = int((frame[[f"true_{f}" for f in FINDINGS]].sum(axis=1) > 0).sum())
    assert (table.loc[MACRO, "n_pos"], table.loc[MACRO, "n_neg"]) == (abnormal, len(frame) - abnormal)
    for label in LABELS:
        positives = int(frame[f"true_{label}"].sum())
        assert (table.loc[label, "n_pos"], table.loc[label, "n_neg"]) == (positives, len(frame) - positives)


def test_cells_have_no_p_value_and_every_paired_estimate_has_one() -> None:
    pairs = [["original", "tight"]]
    table = condition_contrasts(contrast_frames(), LABELS, pairs, alpha=0.05, n_boot=200, seed=1)
    assert table.loc[table["kind"] == "cell", "p_value"].isna().all()
    assert table.loc[table["kind"] != "cell", "p_value"].between(0, 1).all()
    assert list(table.columns) == [
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


def test_versus_best_is_against_the_cell_with_the_highest_macro_auroc_not_the_first_by_name() -> None:
    """The best cell ("net", "original") sorts before neither "other" cell, so a pick by name fails."""
    frames = {
        ("zeta", "tight"): predictions(100, seed=5, signal=0.3),
        ("net", "original"): predictions(100, seed=5, signal=2.0),
        ("other", "loose"): predictions(100, seed=5, signal=0.8),
    }
    table = condition_contrasts(frames, LABELS, [], alpha=0.05, n_boot=100, seed=0)
    versus = table[table["kind"] == "versus_best"]
    assert set(zip(versus["backbone"], versus["condition"], strict=True)) == {("net", "original")}
    assert set(zip(versus["backbone_b"], versus["condition_b"], strict=True)) == {
        ("zeta", "tight"),
        ("other", "loose"),
    }
    assert (versus["estimate"] < 0).all() and (versus["label"] == MACRO).all()


def test_the_no_finding_interaction_is_there_only_when_no_finding_is_a_label() -> None:
    pairs = [["original", "tight"]]
    with_nf = condition_contrasts(contrast_frames(), LABELS, pairs, alpha=0.05, n_boot=100, seed=1)
    interactions = with_nf[with_nf["kind"] == "interaction"]
    assert set(interactions["label"]) == {MACRO, NO_FINDING}
    without = condition_contrasts(contrast_frames(), FINDINGS, pairs, alpha=0.05, n_boot=100, seed=1)
    assert set(without.loc[without["kind"] == "interaction", "label"]) == {MACRO}


def test_seed_spread_keeps_the_tables_order_of_cells() -> None:
    table = pd.DataFrame(
        {
            "backbone": ["zeta", "zeta", "alpha"],
            "mask": ["tight", "original", "original"],
            "seed": [0, 0, 0],
            "label": [MACRO] * 3,
            "auroc": [0.6, 0.7, 0.8],
        }
    )
    spread = seed_spread(table)
    assert list(zip(spread["backbone"], spread["mask"], strict=True)) == [
        ("zeta", "tight"),
        ("zeta", "original"),
        ("alpha", "original"),
    ]


def test_the_bootstrap_names_what_it_cannot_resample() -> None:
    with pytest.raises(InputError, match=r"^no prediction tables to bootstrap$"):
        patient_bootstrap({}, LABELS, 10, 0)
    base = predictions(20, 0)
    other = base.assign(true_Mass=1 - base["true_Mass"])  # truth differs, every truth still known
    with pytest.raises(InputError, match=r"^cell b: the truth for Mass differs from the first cell's\.$"):
        patient_bootstrap({"a": base, "b": other}, LABELS, 10, 0)


def test_one_resample_is_enough() -> None:
    reps = patient_bootstrap({"cell": predictions(30, 1)}, LABELS, 1, 0)
    assert reps.boot.shape == (1, 1, len(LABELS) + 1)
    assert np.isfinite(reps.boot).all()


def test_resampling_in_blocks_draws_the_resamples_of_one_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks bound memory only: with blocks of 3 resamples (and a bound that is no multiple of the image
    count) the 10 resamples are those drawn in one go, each its own draw."""
    frames = {"a": predictions(40, 2), "b": predictions(40, 2, signal=0.3)}
    whole = patient_bootstrap(frames, LABELS, 10, 7)
    monkeypatch.setattr("cxrmask.uncertainty._BLOCK_ELEMENTS", 3 * 40 + 7)
    blocked = patient_bootstrap(frames, LABELS, 10, 7)
    np.testing.assert_array_equal(blocked.boot, whole.boot)
    assert len(np.unique(blocked.boot[:, 0, -1])) == 10


def test_an_interval_needs_half_of_its_resamples_defined(caplog: pytest.LogCaptureFixture) -> None:
    assert interval(np.array([0.3]), 0.05) == (pytest.approx(0.3), pytest.approx(0.3), 1)
    low, high, n = interval(np.array([0.2, 0.4, np.nan, np.nan]), 0.5)
    assert (low, high, n) == (pytest.approx(0.25), pytest.approx(0.35), 2)
    with caplog.at_level("WARNING", logger="cxrmask.uncertainty"):
        assert np.isnan(interval(np.array([0.2, np.nan, np.nan]), 0.05)[1])
    assert caplog.messages == ["only 1 of 3 resamples defined: interval reported as NaN"]


def test_a_diverged_classifier_is_named_with_the_fix() -> None:
    frame = predictions(20, 0)
    frame.loc[3, "score_Edema"] = np.inf
    with pytest.raises(InputError, match=r"the classifier diverged: rerun its cell\.$"):
        patient_bootstrap({"cell": frame}, LABELS, 10, 0)


def test_contrasts_are_reproducible_by_seed_and_need_no_contender() -> None:
    pairs = [["original", "tight"]]
    first = condition_contrasts(contrast_frames(), LABELS, pairs, 0.05, 50, 3)
    pd.testing.assert_frame_equal(first, condition_contrasts(contrast_frames(), LABELS, pairs, 0.05, 50, 3))
    other = condition_contrasts(contrast_frames(), LABELS, pairs, 0.05, 50, 4)
    assert not first["ci_low"].equals(other["ci_low"])
    nobody = condition_contrasts(contrast_frames(), LABELS, pairs, 0.05, 50, 3, contenders=("none",))
    assert (nobody["kind"] != "versus_best").all() and (nobody["kind"] == "delta").any()


def test_with_no_finding_alone_the_macro_row_counts_no_positive() -> None:
    frame = predictions(30, 1)
    table = auroc_intervals(frame, [NO_FINDING], alpha=0.05, n_boot=20, seed=0).set_index("label")
    assert (table.loc[MACRO, "n_pos"], table.loc[MACRO, "n_neg"]) == (0, 30)
    assert np.isnan(table.loc[MACRO, "auroc"])
