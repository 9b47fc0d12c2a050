"""The evaluation stages on small hand-made predictions with known answers: seed averaging, the AUROC table,
the DeLong table (Holm within each backbone), the report's tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests

from cxrmask.cells import load_cells, seed_averaged
from cxrmask.comparisons import delong_rows
from cxrmask.config import CompareSettings, EvaluateSettings
from cxrmask.errors import InputError
from cxrmask.stages.compare_conditions import compare_conditions
from cxrmask.stages.evaluate_classifiers import auroc_table, evaluate_classifiers
from cxrmask.stages.evaluate_shift import evaluate_shift
from cxrmask.stages.write_report import _table
from cxrmask.stats import delong_test
from cxrmask.vocabulary import AUROC_COLUMNS, DELONG_COLUMNS, NO_FINDING

LABELS = ["Mass"]


def predictions(truth: np.ndarray, mass: np.ndarray, normal: np.ndarray | None = None) -> pd.DataFrame:
    """A predictions table as train_classifier writes it, for one finding."""
    n = len(truth)
    normal = 1 - mass if normal is None else normal
    return pd.DataFrame(
        {
            "image": [f"{i:08d}_000.png" for i in range(n)],
            "patient_id": np.arange(n),
            "true_Mass": truth,
            "score_Mass": mass,
            f"true_{NO_FINDING}": 1 - truth,
            f"score_{NO_FINDING}": normal,
        }
    )


def write_cells(tmp_path: Path, frames: dict[tuple[str, str, int], pd.DataFrame]) -> tuple[list, list]:
    paths, cells = [], []
    for (backbone, mask, seed), frame in frames.items():
        path = tmp_path / f"{backbone}_{mask}_{seed}.csv"
        frame.to_csv(path, index=False)
        paths.append(str(path))
        cells.append({"backbone": backbone, "mask": mask, "seed": seed})
    return paths, cells


TRUTH = np.array([0, 0, 0, 1, 1, 1, 0, 1])


def test_seed_averaging_takes_the_mean_score_per_image_of_one_condition_only():
    a = predictions(TRUTH, np.linspace(0.1, 0.8, 8))
    b = predictions(TRUTH, np.linspace(0.3, 1.0, 8))
    other = predictions(TRUTH, np.full(8, 0.9))
    loaded = [
        ({"backbone": "r", "mask": "tight", "seed": 0}, a),
        ({"backbone": "r", "mask": "tight", "seed": 1}, b),
        ({"backbone": "r", "mask": "loose", "seed": 0}, other),
        ({"backbone": "d", "mask": "tight", "seed": 0}, other),
    ]
    mean = seed_averaged(loaded, "r", "tight")
    np.testing.assert_allclose(mean["score_Mass"], np.linspace(0.2, 0.9, 8))
    np.testing.assert_array_equal(mean["true_Mass"], TRUTH)
    assert mean["image"].tolist() == a["image"].tolist()
    assert seed_averaged(loaded, "r", "original") is None
    shuffled = b.iloc[::-1]
    with pytest.raises(InputError, match="r/tight: seeds were tested on different images"):
        seed_averaged([loaded[0], ({"backbone": "r", "mask": "tight", "seed": 1}, shuffled)], "r", "tight")


def test_cells_and_files_must_pair_up(tmp_path):
    paths, cells = write_cells(tmp_path, {("r", "tight", 0): predictions(TRUTH, np.linspace(0, 1, 8))})
    assert load_cells(paths, cells)[0][0] == cells[0]
    with pytest.raises(InputError, match="1 prediction files for 2 cells"):
        load_cells(paths, cells * 2)


def test_the_auroc_table_has_a_row_per_cell_and_label_with_sklearns_value(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 40)
    scores = {mask: truth * 0.3 + rng.random(40) for mask in ("original", "tight")}
    paths, cells = write_cells(
        tmp_path, {("r", mask, 0): predictions(truth, score) for mask, score in scores.items()}
    )
    table = auroc_table(paths, cells, LABELS, EvaluateSettings(n_boot=50, alpha=0.1), seed=0)
    assert list(table.columns) == list(AUROC_COLUMNS)
    assert len(table) == 2 * 3  # Mass, No Finding, macro per cell
    for mask, score in scores.items():
        rows = table[table["mask"] == mask].set_index("label")
        assert rows.loc["Mass", "auroc"] == pytest.approx(roc_auc_score(truth, score))
        assert rows.loc["macro", "auroc"] == pytest.approx(rows.loc["Mass", "auroc"])
        assert rows.loc["Mass", "ci_low"] < rows.loc["Mass", "auroc"] < rows.loc["Mass", "ci_high"]
        assert (
            rows.loc["Mass", "ci_method"] == "delong"
            and rows.loc["macro", "ci_method"] == "patient_bootstrap"
        )
        assert (rows.loc["Mass", "n_pos"], rows.loc["Mass", "n_neg"]) == (truth.sum(), 40 - truth.sum())


def test_evaluate_classifiers_writes_both_tables(tmp_path):
    paths, cells = write_cells(tmp_path, {("r", "tight", 0): predictions(TRUTH, np.linspace(0, 1, 8))})
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({**cells[0], "best_epoch": 3, "train_seconds": 12.5}))
    evaluate_classifiers(
        paths,
        [summary],
        tmp_path / "auroc.csv",
        tmp_path / "training.csv",
        cells,
        LABELS,
        EvaluateSettings(),
        0,
    )
    training = pd.read_csv(tmp_path / "training.csv")
    assert training.to_dict("records") == [
        {"backbone": "r", "mask": "tight", "seed": 0, "best_epoch": 3, "train_seconds": 12.5}
    ]
    assert len(pd.read_csv(tmp_path / "auroc.csv")) == 3


def _grid(tmp_path: Path) -> tuple[list, list, dict]:
    """Two backbones x two conditions x two seeds, with a large effect for one backbone only."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 120)
    frames, raw = {}, {}
    for backbone, effect in (("strong", 1.5), ("weak", 0.1)):
        for mask, gain in (("original", 0.0), ("loose", effect)):
            for seed in (0, 1):
                score = truth * (0.4 + gain) + rng.normal(0, 0.6, truth.size)
                normal = -score + rng.normal(0, 0.2, truth.size)
                frames[(backbone, mask, seed)] = predictions(truth, score, normal)
                raw[(backbone, mask, seed)] = (score, normal)
    paths, cells = write_cells(tmp_path, frames)
    return paths, cells, {"truth": truth, "raw": raw}


def test_the_delong_table_tests_seed_averaged_scores_with_holm_within_each_backbone(tmp_path):
    paths, cells, known = _grid(tmp_path)
    out = tmp_path / "delong.csv"
    table = compare_conditions(
        paths, out, cells, LABELS, CompareSettings(pairs=[("original", "loose")]), 0.05
    )
    assert list(table.columns) == list(DELONG_COLUMNS)
    assert pd.read_csv(out).shape == table.shape == (4, len(DELONG_COLUMNS))
    truth, raw = known["truth"], known["raw"]
    for backbone in ("strong", "weak"):
        family = table[table["backbone"] == backbone]
        for label, column in (("Mass", 0), (NO_FINDING, 1)):
            mean = {
                m: (raw[(backbone, m, 0)][column] + raw[(backbone, m, 1)][column]) / 2
                for m in ("original", "loose")
            }
            y = truth if label == "Mass" else 1 - truth
            expected = delong_test(y, mean["original"], mean["loose"])
            row = family[family["label"] == label].iloc[0]
            assert row["auc_a"] == pytest.approx(roc_auc_score(y, mean["original"]))
            assert row["auc_b"] == pytest.approx(roc_auc_score(y, mean["loose"]))
            assert row["p_value"] == pytest.approx(expected.p_value)
        holm = multipletests(family["p_value"], method="holm")[1]
        np.testing.assert_allclose(family["p_holm"], holm)
        assert family["significant"].tolist() == [bool(p < 0.05) for p in holm]
    # Holm over all four tests at once would give other values for the weak backbone.
    pooled = multipletests(table["p_value"], method="holm")[1]
    assert not np.allclose(table["p_holm"], pooled)


def test_the_mask_sources_pairs_are_a_holm_family_of_their_own(tmp_path):
    """tight against chexmask-tight is adjusted within its own family, so adding the source factor leaves
    the paper's pairs' Holm p as they were without it."""
    paths, cells, _ = _grid(tmp_path)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    more_paths, more_cells = list(paths), list(cells)
    for path, cell in zip(paths, cells, strict=True):  # the loose cells again, as a CheXmask condition
        if cell["mask"] == "loose":
            copy = renamed / f"{cell['backbone']}_{cell['seed']}.csv"
            copy.write_bytes(Path(path).read_bytes())
            more_paths.append(str(copy))
            more_cells.append({**cell, "mask": "chexmask-loose"})
    study = delong_rows(load_cells(paths, cells), LABELS, [("original", "loose")], 0.05)
    both = delong_rows(
        load_cells(more_paths, more_cells),
        LABELS,
        [("original", "loose"), ("loose", "chexmask-loose"), ("original", "chexmask-loose")],
        0.05,
    )
    paper = both[both["condition_b"] == "loose"].reset_index(drop=True)
    pd.testing.assert_frame_equal(paper, study)
    for backbone in ("strong", "weak"):
        source = both[(both["backbone"] == backbone) & (both["condition_b"] == "chexmask-loose")]
        assert len(source) == 4
        np.testing.assert_allclose(source["p_holm"], multipletests(source["p_value"], method="holm")[1])
    assert both["condition_b"].tolist()[:6] == ["loose"] * 2 + ["chexmask-loose"] * 4  # the pairs' order


def test_a_pair_with_an_untrained_condition_is_left_out(tmp_path):
    paths, cells, _ = _grid(tmp_path)
    table = delong_rows(
        load_cells(paths, cells), LABELS, [("original", "tight"), ("original", "loose")], 0.05
    )
    assert set(table["condition_b"]) == {"loose"}


def test_the_report_formats_floats_to_their_places():
    frame = pd.DataFrame({"name": ["a", "b"], "auroc": [0.81234, np.nan], "seconds": [12.345, 1.0]})
    text = _table(frame, digits=3, column_digits={"seconds": 1})
    assert text.splitlines() == [
        "| name | auroc | seconds |",
        "|---|---|---|",
        "| a | 0.812 | 12.3 |",
        "| b |  | 1.0 |",
    ]


def test_evaluate_shift_averages_seeds_and_reads_both_prediction_sets(tmp_path):
    """Two seeds of original images (one scores test and shifted alike, one loses Mass on shifted) and one
    masked cell: the drop is of the seed mean, as for the other tests between conditions."""
    test_scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.4, 0.6])  # AUROC 1 on TRUTH
    shifted_scores = np.array([0.1, 0.9, 0.3, 0.2, 0.8, 0.9, 0.4, 0.6])
    test_frames = {
        ("net", "original", 0): predictions(TRUTH, test_scores),
        ("net", "original", 1): predictions(TRUTH, test_scores),
        ("net", "tight", 0): predictions(TRUTH, test_scores),
    }
    shifted_frames = {
        ("net", "original", 0): predictions(TRUTH, test_scores),
        ("net", "original", 1): predictions(TRUTH, shifted_scores),
        ("net", "tight", 0): predictions(TRUTH, test_scores),
    }
    (tmp_path / "test").mkdir()
    (tmp_path / "shifted").mkdir()
    test_paths, cells = write_cells(tmp_path / "test", test_frames)
    shifted_paths, _ = write_cells(tmp_path / "shifted", shifted_frames)
    table = evaluate_shift(
        test_paths,
        shifted_paths,
        str(tmp_path / "shift.csv"),
        cells,
        LABELS,
        EvaluateSettings(n_boot=50),
        seed=0,
    )
    drops = table[table["kind"] == "drop"].set_index(["condition", "label"])
    mean_shifted = (test_scores + shifted_scores) / 2
    expected = 1.0 - roc_auc_score(TRUTH, mean_shifted)
    assert drops.loc[("original", "Mass"), "estimate"] == pytest.approx(expected)
    assert drops.loc[("tight", "Mass"), "estimate"] == 0
    excess = table[table["kind"] == "excess_drop"].set_index("label")
    assert excess.loc["Mass", "estimate"] == pytest.approx(expected)
    assert pd.read_csv(tmp_path / "shift.csv").shape == table.shape


def test_evaluate_shift_refuses_empty_shifted_predictions_naming_the_file_and_keys(tmp_path):
    frame = predictions(TRUTH, np.linspace(0.1, 0.8, 8))
    (tmp_path / "t").mkdir()
    (tmp_path / "s").mkdir()
    test_paths, cells = write_cells(tmp_path / "t", {("net", "original", 0): frame})
    shifted_paths, _ = write_cells(tmp_path / "s", {("net", "original", 0): frame.iloc[:0]})
    with pytest.raises(InputError, match=r"has no predictions.*nih\.shifted_list"):
        evaluate_shift(
            test_paths, shifted_paths, str(tmp_path / "x.csv"), cells, LABELS, EvaluateSettings(), 0
        )
