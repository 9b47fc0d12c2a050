"""External test sets: unknown truths kept out of every AUROC, predictions that keep them blank, mask
names for any collection's ids, the per-set tables, and the demo's PadChest-style collection."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cxrmask.classify.train import prediction_table
from cxrmask.config import CompareSettings, DemoSettings, EvaluateSettings, ExternalSetSettings
from cxrmask.datasets.labelmaps import PADCHEST_FINDINGS, PADCHEST_NORMAL
from cxrmask.datasets.manifest import finish, mask_name
from cxrmask.datasets.read import read_test_set
from cxrmask.demo import make_demo_data
from cxrmask.demo.anatomy import load_lung_shapes
from cxrmask.demo.cohort import build_seg_cases
from cxrmask.demo.render import Case, render_case
from cxrmask.demo.writers import PADCHEST_TABLE
from cxrmask.errors import ConfigError, InputError
from cxrmask.shift import shift_table
from cxrmask.stages.evaluate_test_sets import evaluate_test_sets, undefined_note
from cxrmask.stats import delong_ci
from cxrmask.uncertainty import auroc_intervals
from cxrmask.vocabulary import NO_FINDING, STUDY_LABELS

LABELS = ["Mass", "Pneumonia"]


def _predictions(rng: np.random.Generator, n: int, patients, unknown: dict[str, float] | None = None):
    """A predictions table whose scores follow the truth; ``unknown`` blanks a share of a label's truths."""
    out = pd.DataFrame({"image": [f"{i:04d}.png" for i in range(n)], "patient_id": patients})
    for label in [*LABELS, NO_FINDING]:
        truth = (rng.random(n) < 0.4).astype(float)
        out[f"true_{label}"] = truth
        out[f"score_{label}"] = truth + rng.normal(0, 0.9, n)
        share = (unknown or {}).get(label, 0.0)
        out.loc[rng.random(n) < share, f"true_{label}"] = np.nan
    return out


def test_an_unknown_truth_is_in_neither_class_of_an_auroc() -> None:
    """The AUROC, its DeLong interval and the class counts of a table with blank truths are those of the
    known rows alone: a blank is never read as a negative."""
    rng = np.random.default_rng(0)
    frame = _predictions(rng, 160, np.arange(160) // 2, unknown={"Mass": 0.3})
    table = auroc_intervals(frame, [*LABELS, NO_FINDING], 0.05, 50, 0).set_index("label")
    known = frame[frame["true_Mass"].notna()]
    y, s = known["true_Mass"].to_numpy().astype(int), known["score_Mass"].to_numpy()
    assert table.loc["Mass", "auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    ci = delong_ci(y.astype(bool), s, 0.05)
    assert (table.loc["Mass", "ci_low"], table.loc["Mass", "ci_high"]) == pytest.approx((ci.low, ci.high))
    assert table.loc["Mass", "n_pos"] == y.sum() and table.loc["Mass", "n_neg"] == (y == 0).sum()
    assert table.loc["Mass", "n_pos"] + table.loc["Mass", "n_neg"] < len(frame)
    # read as negatives, the blanks would move the AUROC: the test above can tell the two apart
    as_negative = frame["true_Mass"].fillna(0).to_numpy().astype(int)
    assert roc_auc_score(as_negative, frame["score_Mass"]) != pytest.approx(
        table.loc["Mass", "auroc"], abs=1e-3
    )


def test_the_drop_to_an_external_set_is_the_difference_of_aurocs_over_known_truths() -> None:
    """NIH's numeric patients against another collection's namespaced ones, blanks on the external side."""
    rng = np.random.default_rng(1)
    internal = _predictions(rng, 120, np.arange(120) // 2)
    external = _predictions(rng, 90, [f"padchest:{i}" for i in range(90)], unknown={"Pneumonia": 0.4})
    everything = [*LABELS, NO_FINDING]
    table = shift_table(
        {("net", "original"): internal}, {("net", "original"): external}, everything, 0.05, 100, 0
    ).set_index(["kind", "label"])
    known = external[external["true_Pneumonia"].notna()]
    expected_external = roc_auc_score(known["true_Pneumonia"].astype(int), known["score_Pneumonia"])
    expected_internal = roc_auc_score(internal["true_Pneumonia"].astype(int), internal["score_Pneumonia"])
    row = table.loc[("drop", "Pneumonia")]
    assert row["auroc_shifted"] == pytest.approx(expected_external, abs=1e-12)
    assert row["estimate"] == pytest.approx(expected_internal - expected_external, abs=1e-12)
    assert row["ci_low"] <= row["estimate"] <= row["ci_high"]


def test_predictions_keep_an_unknown_truth_blank(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {"image": ["a", "b", "c"], "patient_id": ["p", "q", "r"], NO_FINDING: [1.0, np.nan, 0]}
    )
    targets = np.array([[1.0, np.nan], [0.0, 1.0], [np.nan, 0.0]])
    out = prediction_table(rows, targets, np.full((3, 2), 0.5), LABELS, "one_minus_max")
    out.to_csv(tmp_path / "p.csv", index=False)
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[1].startswith("a,p,1,0.5,,0.5,1,")  # integers stay integers, the blank stays blank
    back = pd.read_csv(tmp_path / "p.csv")
    assert back["true_Mass"].isna().tolist() == [False, False, True]
    assert back[f"true_{NO_FINDING}"].isna().tolist() == [False, True, False]


def test_mask_names_are_flat_and_an_nih_id_is_its_own() -> None:
    assert mask_name("00000001_000.png") == "00000001_000.png"
    assert mask_name("patient00001/study1/view1_frontal.jpg") == "patient00001__study1__view1_frontal.png"
    assert mask_name("files/p10/p10000032/s50414267/02aa804e.jpg").count("/") == 0


def test_two_ids_that_would_share_a_mask_file_are_refused() -> None:
    frame = pd.DataFrame(
        {"image": ["a/b.jpg", "a__b.png"], "path": ["x", "y"], "patient_id": ["1", "2"], "view": ["PA", "PA"]}
    )
    for label in [*LABELS, NO_FINDING]:
        frame[label] = 0.0
    with pytest.raises(InputError, match="share one mask file"):
        finish(frame, LABELS, "table.csv")


def _cell_files(tmp_path: Path, name: str, frame: pd.DataFrame) -> str:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_evaluate_test_sets_says_why_an_auroc_is_undefined(tmp_path: Path) -> None:
    """A finding with no positive on the set, and one the collection does not label: NaN and a note,
    never 0.5 and never left out."""
    rng = np.random.default_rng(2)
    cells = [{"backbone": "net", "mask": mask, "seed": 0} for mask in ("original", "tight")]
    internal = [_cell_files(tmp_path, f"i{k}", _predictions(rng, 80, np.arange(80) // 2)) for k in range(2)]
    external_frame = _predictions(rng, 60, [f"padchest:{i}" for i in range(60)])
    external_frame["true_Mass"] = 0.0  # no positive
    external_frame["true_Pneumonia"] = np.nan  # not labelled by the collection
    external = [_cell_files(tmp_path, f"e{k}", external_frame) for k in range(2)]
    auroc, delong, shift = evaluate_test_sets(
        internal,
        external,
        str(tmp_path / "auroc.csv"),
        str(tmp_path / "delong.csv"),
        str(tmp_path / "shift.csv"),
        cells,
        ["site_b"],
        LABELS,
        EvaluateSettings(n_boot=50),
        CompareSettings(pairs=[("original", "tight")]),
        0,
    )
    by_label = auroc.set_index(["mask", "label"])
    assert by_label.loc[("tight", "Mass"), "note"] == "undefined: no positive image"
    assert (
        by_label.loc[("tight", "Pneumonia"), "note"]
        == "undefined: the collection does not label this finding"
    )
    assert by_label.loc[("tight", "Mass"), "auroc"] != by_label.loc[("tight", "Mass"), "auroc"]  # NaN
    assert (
        by_label.loc[("tight", NO_FINDING), "note"] == "" and by_label.loc[("tight", NO_FINDING), "auroc"] > 0
    )
    assert set(auroc["test_set"]) == {"site_b"} and len(auroc) == 2 * 4
    assert set(shift["test_set"]) == {"site_b"}
    # DeLong per set: the unlabelled and one-class findings untested, No Finding tested on the known rows
    tested = delong.set_index("label")
    assert np.isnan(tested.loc["Mass", "p_value"]) and np.isnan(tested.loc["Pneumonia", "p_value"])
    assert 0 < tested.loc[NO_FINDING, "p_value"] <= 1 and set(delong["test_set"]) == {"site_b"}
    assert shift[(shift["kind"] == "drop") & (shift["label"] == "Mass")]["auroc_shifted"].isna().all()
    written = pd.read_csv(tmp_path / "auroc.csv")
    assert written.columns[0] == "test_set"
    # the macro AUROC averages the findings the set can score, here none: undefined and said so
    assert by_label.loc[("tight", "macro"), "note"] == "undefined: no finding of the set has both classes"
    assert written["auroc"].isna().sum() == 2 * 3


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "note"),
    [(0, 0, "undefined: the collection"), (0, 5, "undefined: no positive"), (5, 0, "undefined: no negative")],
)
def test_undefined_note_names_the_missing_class(n_pos: int, n_neg: int, note: str) -> None:
    assert undefined_note(n_pos, n_neg).startswith(note) and undefined_note(3, 4) == ""


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo_with_external(tmp_path_factory) -> tuple[Path, DemoSettings, dict]:
    root = tmp_path_factory.mktemp("demo") / "data"
    settings = DemoSettings(n_seg_images=4, n_patients=6, nih_size=128, seg_size=64, n_external=14)
    summary = make_demo_data(root, settings, workers=1)
    return root, settings, summary


def test_the_demo_collection_is_read_by_the_padchest_adapter(demo_with_external) -> None:
    """The generated table and folder in PadChest's released layout: every row found, every label string
    known to the real label map, patients namespaced, and the labels those the generator drew."""
    root, _, summary = demo_with_external
    padchest = root / "padchest"
    table = pd.read_csv(padchest / PADCHEST_TABLE)
    assert len(table) == 14 and table.columns[0].startswith("Unnamed")
    manifest = read_test_set(
        str(padchest / PADCHEST_TABLE),
        str(padchest / "images"),
        ExternalSetSettings(collection="padchest", table="t", images="i"),
        list(STUDY_LABELS),
    )
    kept = frozenset().union(*PADCHEST_FINDINGS.values()) | {PADCHEST_NORMAL}
    other_only = sum(1 for labels in table["Labels"] if not set(ast.literal_eval(labels)) & kept)
    assert len(manifest) == 14 - other_only
    assert manifest["patient_id"].str.startswith("padchest:").all()
    assert all(Path(path).is_file() for path in manifest["path"])
    for label in STUDY_LABELS:
        assert int(manifest[label].sum()) == summary["padchest"]["labels"].get(label, 0)


def test_adding_the_external_collection_changes_no_nih_style_file(demo_with_external, tmp_path) -> None:
    """It draws from its own random stream: the internal study's images, and so its numbers, stay put."""
    root, settings, _ = demo_with_external
    without = tmp_path / "data"
    make_demo_data(without, settings.model_copy(update={"n_external": 0}), workers=1)
    mine = {k: v for k, v in _digests(root).items() if not k.startswith("padchest/")}
    assert mine == {k: v for k, v in _digests(without).items() if not k.startswith("padchest/")}


def test_the_external_look_is_another_film_of_the_same_chest() -> None:
    """Same case, two sites: the same lungs, other pixels (noisier, another window)."""
    placement = build_seg_cases(np.random.default_rng(3), load_lung_shapes(), 1)[0][1].placement
    nih = render_case(Case(seed=5, placement=placement), 256)
    other = render_case(Case(seed=5, placement=placement, look="padchest"), 256)
    assert np.array_equal(nih.lungs, other.lungs)
    assert np.abs(nih.image.astype(int) - other.image.astype(int)).mean() > 5
    with pytest.raises(ConfigError, match="look"):
        render_case(Case(seed=5, placement=placement, look="mimic"), 64)
