"""cxrmask.segment.reference: masks against a reference, Dice by finding, and the QC flag judged by it.

Reference rows are written in CheXmask's format by the project's own
encoder, so the whole path from run-length strings to the tables is the one
a real CheXmask file takes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from cxrmask.chexmask import ChexmaskRow, encode_rle, read_chexmask, write_chexmask
from cxrmask.config import EvaluateSettings, FigureSettings
from cxrmask.errors import InputError
from cxrmask.imageio import read_mask, write_png
from cxrmask.segment.postprocess import dice
from cxrmask.segment.reference import (
    dice_by_finding,
    fit_to,
    markdown_lines,
    qc_against_reference,
    qc_sentence,
    reference_masks,
    score_against_reference,
)
from cxrmask.stages.compare_masks_reference import compare_masks_reference
from cxrmask.stages.decode_reference_masks import decode_reference_masks
from cxrmask.stages.make_demo_reference import make_demo_reference
from cxrmask.stages.plot_masks_reference import plot_masks_reference

SIDE = 64


def lungs(cut: int = 0, side: int = SIDE) -> np.ndarray:
    """Two rectangular lungs; ``cut`` rows taken off the bottom of the right one (a finding cut out)."""
    mask = np.zeros((side, side), dtype=bool)
    mask[side // 8 : 7 * side // 8, side // 8 : 7 * side // 16] = True
    mask[side // 8 : 7 * side // 8 - cut, 9 * side // 16 : 7 * side // 8] = True
    return mask


def reference_row(image: str, mask: np.ndarray, rca: float = 0.85) -> ChexmaskRow:
    left, right = mask.copy(), mask.copy()
    left[:, : mask.shape[1] // 2] = False
    right[:, mask.shape[1] // 2 :] = False
    return ChexmaskRow(image, rca, rca + 0.05, *mask.shape, encode_rle(left), encode_rle(right))


@pytest.fixture
def study() -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, ChexmaskRow]]:
    """Six patients, two images each; the masks of Edema-positive images lose part of a lung."""
    names = [f"{p:08d}_{k:03d}.png" for p in range(1, 7) for k in range(2)]
    edema = [int(p % 2 == 0) for p in range(1, 7) for _ in range(2)]
    mass = [int(i % 3 == 0) for i in range(len(names))]
    subset = pd.DataFrame(
        {"image": names, "patient_id": [int(n[:8]) for n in names], "Edema": edema, "Mass": mass}
    )
    masks = {n: lungs(cut=16 * e + i % 2) for i, (n, e) in enumerate(zip(names, edema, strict=True))}
    reference = {n: reference_row(n, lungs()) for n in names}
    return subset, masks, reference


def test_each_image_is_scored_with_monais_dice_and_hd95_against_its_reference(study):
    subset, masks, reference = study
    table = score_against_reference(subset, masks.__getitem__, reference, min_rca=0.7)
    assert table["image"].tolist() == subset["image"].tolist()
    assert table["patient_id"].tolist() == subset["patient_id"].tolist()
    for row in table.itertuples():
        assert row.dice == pytest.approx(dice(masks[row.image], lungs()))
    cut = table[subset["Edema"] == 1]
    assert (cut["dice"] < 0.93).all() and (cut["hd95"] >= 10).all()
    whole = table.iloc[0]
    assert whole.dice == 1.0 and whole.hd95 == 0.0 and whole.rca_mean == 0.85


def test_images_missing_from_the_reference_or_below_its_rca_are_counted_and_named(study, caplog):
    subset, masks, reference = study
    names = subset["image"].tolist()
    del reference[names[0]]
    reference[names[1]] = reference_row(names[1], lungs(), rca=0.6)
    with caplog.at_level(logging.INFO, logger="cxrmask.segment.reference"):
        table = score_against_reference(subset, masks.__getitem__, reference, min_rca=0.7)
    assert table["image"].tolist() == names[2:]
    assert f"1 of 12 images have no reference mask, e.g. ['{names[0]}']" in caplog.text
    assert f"1 reference masks below RCA 0.70 left out, e.g. ['{names[1]}']" in caplog.text
    with pytest.raises(InputError, match=r"none of the 12 curated images .* \(1 absent, 11 below it\)"):
        score_against_reference(subset, masks.__getitem__, reference, min_rca=0.9)


def test_a_reference_of_another_scale_is_rescaled_and_of_another_aspect_refused():
    assert np.array_equal(fit_to(lungs(side=128), (64, 64), "a.png"), lungs(side=64))
    with pytest.raises(InputError, match=r"a\.png: the reference mask is 64 x 32 but the image's is 64 x 64"):
        fit_to(np.ones((32, 64), bool), (64, 64), "a.png")


def test_dice_by_finding_compares_positives_with_negatives_by_hand(study):
    subset, masks, reference = study
    table = score_against_reference(subset, masks.__getitem__, reference, min_rca=0.7)
    summary = dice_by_finding(table, subset, ["Edema", "Mass"], n_boot=500, alpha=0.05, seed=0).set_index(
        "finding"
    )
    for finding in ("Edema", "Mass"):
        positive = subset[finding].to_numpy() == 1
        row = summary.loc[finding]
        assert (row.n_positive, row.n_negative) == (positive.sum(), (~positive).sum())
        assert row.dice_positive_mean == pytest.approx(table["dice"][positive].mean())
        assert row.dice_negative_mean == pytest.approx(table["dice"][~positive].mean())
        assert row.dice_positive_p10 == pytest.approx(np.percentile(table["dice"][positive], 10))
        assert row.difference == pytest.approx(row.dice_positive_mean - row.dice_negative_mean)
        assert row.ci_low <= row.difference <= row.ci_high
    # Edema's masks lose a lung's bottom: the whole interval lies below zero.
    assert summary.loc["Edema", "ci_high"] < 0


def test_the_interval_resamples_patients_not_images(study):
    """Two images of each patient err alike; an interval over patients matches one computed by hand."""
    subset, masks, reference = study
    table = score_against_reference(subset, masks.__getitem__, reference, min_rca=0.7)
    summary = dice_by_finding(table, subset, ["Edema"], n_boot=400, alpha=0.1, seed=3).iloc[0]
    rng = np.random.default_rng(3)
    patients = subset["patient_id"].to_numpy()
    unique = np.unique(patients)
    positive = subset["Edema"].to_numpy() == 1
    draws = rng.integers(0, len(unique), size=(400, len(unique)))
    differences = []
    for draw in draws:
        counts = np.bincount(draw, minlength=len(unique))[np.searchsorted(unique, patients)]
        pos = (
            np.average(table["dice"][positive], weights=counts[positive])
            if counts[positive].any()
            else np.nan
        )
        neg = (
            np.average(table["dice"][~positive], weights=counts[~positive])
            if counts[~positive].any()
            else np.nan
        )
        differences.append(pos - neg)
    differences = np.array(differences)
    low, high = np.quantile(differences[np.isfinite(differences)], [0.05, 0.95])
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high))


def test_a_finding_without_positives_has_no_positive_side_and_no_interval(study):
    subset, masks, reference = study
    subset = subset.assign(Mass=0)
    table = score_against_reference(subset, masks.__getitem__, reference, min_rca=0.7)
    row = dice_by_finding(table, subset, ["Mass"], n_boot=50, alpha=0.05, seed=0).iloc[0]
    assert row.n_positive == 0 and np.isnan(row.dice_positive_mean) and np.isnan(row.difference)
    assert np.isnan(row.ci_low) and np.isnan(row.ci_high)


def test_the_qc_flag_is_judged_by_the_reference_dice():
    scored = pd.DataFrame({"image": list("abcdef"), "dice": [0.99, 0.97, 0.95, 0.92, 0.80, 0.96]})
    qc = pd.DataFrame(
        {
            "image": list("fedcba"),
            "qc_score": [0.93, 0.70, 0.85, 0.90, 0.95, 0.97],
            "flag": [True, True, False, True, False, False],
        }
    )
    result = qc_against_reference(scored, qc, 0.93)
    assert result["n"] == 6 and result["bad_dice"] == 0.93
    assert result["n_bad"] == 2 and result["n_flagged"] == 3
    # Flagged: f (0.96, good), e (0.80, bad), c (0.95, good); bad: d and e.
    assert result["flag_precision"] == pytest.approx(1 / 3) and result["flag_recall"] == pytest.approx(1 / 2)
    merged = scored.merge(qc, on="image")
    assert result["spearman_qc_dice"] == pytest.approx(
        spearmanr(merged["qc_score"], merged["dice"]).statistic
    )
    assert np.isnan(qc_against_reference(scored, qc.assign(flag=False), 0.93)["flag_precision"])


def test_the_stages_encode_a_ground_truth_score_the_shards_masks_and_draw_the_figure(tmp_path):
    """The demo's path end to end on a few images: ground truth -> CheXmask file -> the three tables -> the
    figure and the report's lines, with the Dice of each mask equal to the one computed by hand."""
    names = [f"{p:08d}_000.png" for p in range(1, 9)]
    truth_dir, shards = tmp_path / "truth", [tmp_path / "shard_0", tmp_path / "shard_1"]
    for folder in (truth_dir, *shards):
        folder.mkdir()
    subset = pd.DataFrame(
        {"image": names, "patient_id": range(1, 9), "Edema": [1, 0] * 4, "Mass": [0, 0, 1, 1] * 2}
    )
    subset["No Finding"] = ((subset["Edema"] == 0) & (subset["Mass"] == 0)).astype(int)
    subset.to_csv(tmp_path / "subset.csv", index=False)
    tables, expected = [], {}
    for k, shard in enumerate(shards):
        rows = []
        for i, name in enumerate(names[4 * k : 4 * k + 4]):
            write_png(truth_dir / name, lungs())
            mask = lungs(cut=20 * int(subset.set_index("image").loc[name, "Edema"]))
            write_png(shard / name, mask)
            expected[name] = dice(mask, lungs())
            rows.append({"image": name, "qc_score": expected[name] - 0.01 * i, "flag": expected[name] < 0.93})
        tables.append(tmp_path / f"shard_{k}.csv")
        pd.DataFrame(rows).to_csv(tables[-1], index=False)
    make_demo_reference(str(truth_dir), str(tmp_path / "ChestX-Ray8.csv"))
    assert np.array_equal(read_chexmask(tmp_path / "ChestX-Ray8.csv")[names[0]].lungs(), lungs())
    out = {name: str(tmp_path / f"{name}.out") for name in ("table", "findings", "qc")}
    compare_masks_reference(
        str(tmp_path / "subset.csv"),
        [str(s) for s in shards],
        [str(t) for t in tables],
        str(tmp_path / "ChestX-Ray8.csv"),
        **out,
        labels=["Edema", "Mass"],
        min_rca=0.7,
        bad_dice=0.93,
        settings=EvaluateSettings(n_boot=100),
        seed=0,
    )
    scored = pd.read_csv(out["table"])
    assert scored["dice"].tolist() == pytest.approx([expected[n] for n in names])
    by_finding = pd.read_csv(out["findings"])
    assert by_finding["finding"].tolist() == ["Edema", "Mass", "No Finding"]
    qc = json.loads(Path(out["qc"]).read_text())
    assert qc["available"] and qc["n"] == 8 and qc["n_bad"] == 4 and qc["flag_recall"] == 1.0
    lines = "\n".join(markdown_lines(by_finding, qc))
    assert "## Mask error by finding" in lines and "significantly worse on images with Edema" in lines
    assert "the flag catches 100% (recall)" in lines
    figure = tmp_path / "masks_vs_reference.png"
    plot_masks_reference(
        out["table"],
        str(tmp_path / "subset.csv"),
        [str(t) for t in tables],
        out["qc"],
        ["Edema", "Mass"],
        str(figure),
        FigureSettings(dpi=40),
    )
    assert figure.stat().st_size > 1000


def shard_of_masks(folder: Path, masks: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """A segmenter shard as generate_masks leaves it: a folder of mask PNGs and its table."""
    folder.mkdir()
    for name, mask in masks.items():
        write_png(folder / name, mask)
    table = folder.with_suffix(".csv")
    pd.DataFrame({"image": list(masks)}).to_csv(table, index=False)
    return folder, table


def test_reference_masks_replace_the_segmenters_at_its_size_and_it_stands_in_where_they_lack(
    tmp_path, caplog
):
    """chexmask-tight: each image's reference lungs (a half-size row scaled up to the segmenter's grid);
    where the reference has no row, a row below the RCA threshold or empty lungs, the segmenter's own mask,
    counted and named, so the condition still masks every image the others do."""
    own = {f"0000000{k}_000.png": lungs(cut=20) for k in range(1, 6)}
    tight, table = shard_of_masks(tmp_path / "shard_0", own)
    usable, doubtful = tmp_path / "usable.csv", tmp_path / "doubtful.csv"
    write_chexmask(
        usable,
        {
            "00000001_000.png": lungs(),
            "00000002_000.png": lungs(side=SIDE // 2),
            "00000004_000.png": np.zeros((SIDE, SIDE), dtype=bool),
        },
    )
    write_chexmask(doubtful, {"00000003_000.png": lungs()}, rca=0.5)
    rows = tmp_path / "ChestX-Ray8.csv"
    pd.concat([pd.read_csv(usable), pd.read_csv(doubtful)]).to_csv(rows, index=False)
    out = tmp_path / "chexmask-tight" / "shard_0"
    with caplog.at_level(logging.WARNING):
        written = decode_reference_masks(str(tight), str(table), str(rows), str(out), str(out) + ".csv", 0.7)
    assert written["image"].tolist() == list(own)
    assert written["source"].tolist() == ["reference", "reference", "segmenter", "segmenter", "segmenter"]
    assert written["rca_mean"].iloc[:3].tolist() == [1.0, 1.0, 0.5] and np.isnan(written["rca_mean"].iloc[4])
    assert np.array_equal(read_mask(out / "00000001_000.png"), lungs())
    scaled = read_mask(out / "00000002_000.png")
    assert scaled.shape == (SIDE, SIDE) and dice(scaled, lungs()) > 0.97
    for name in ("00000003_000.png", "00000004_000.png", "00000005_000.png"):
        assert np.array_equal(read_mask(out / name), lungs(cut=20)), name
    assert written["lung_fraction"].iloc[0] == pytest.approx(lungs().mean())
    assert pd.read_csv(str(out) + ".csv")["source"].tolist() == written["source"].tolist()
    assert "3 of 5 images have no usable reference lungs" in caplog.text
    assert "00000005_000.png" in caplog.text


def test_a_reference_with_no_usable_lungs_for_the_shard_writes_nothing(tmp_path):
    tight, table = shard_of_masks(tmp_path / "shard_0", {"00000001_000.png": lungs()})
    reference_file = tmp_path / "ChestX-Ray8.csv"
    write_chexmask(reference_file, {"00000001_000.png": lungs()}, rca=0.6)
    out = tmp_path / "chexmask-tight" / "shard_0"
    with pytest.raises(InputError, match=r"none of the 1 images .* RCA >= 0\.7"):
        decode_reference_masks(str(tight), str(table), str(reference_file), str(out), str(out) + ".csv", 0.7)
    assert not out.exists() and not Path(str(out) + ".csv").exists()
    assert list((tmp_path / "chexmask-tight").iterdir()) == []


def test_a_reference_of_another_aspect_is_refused_naming_the_image(tmp_path):
    tight, _ = shard_of_masks(tmp_path / "shard_0", {"00000001_000.png": lungs()})
    reference_file = tmp_path / "ChestX-Ray8.csv"
    write_chexmask(reference_file, {"00000001_000.png": np.ones((SIDE, SIDE // 2), dtype=bool)})
    out = tmp_path / "shard_0_reference"
    with pytest.raises(
        InputError, match=r"00000001_000\.png: the reference mask is 32 x 64 .* another aspect"
    ):
        reference_masks(["00000001_000.png"], str(tight), read_chexmask(reference_file), 0.7, str(out))
    assert not out.exists()


@pytest.mark.parametrize(
    ("n_bad", "n_flagged", "recall", "precision", "ending"),
    [
        (0, 2, float("nan"), 0.0, "no mask has Dice below 0.93, and the flag marks 2."),
        (3, 0, 0.0, float("nan"), "of 3 masks with Dice below 0.93, the flag marks none."),
        (
            4,
            5,
            0.75,
            0.6,
            "of 4 masks with Dice below 0.93, the flag catches 75% (recall), and 60% of the 5 flagged masks "
            "are such (precision).",
        ),
    ],
)
def test_the_qc_sentence_holds_when_nothing_is_bad_or_nothing_is_flagged(
    n_bad, n_flagged, recall, precision, ending
):
    qc = {
        "available": True,
        "n": 237,
        "bad_dice": 0.93,
        "n_bad": n_bad,
        "n_flagged": n_flagged,
        "spearman_qc_dice": 0.751,
        "flag_recall": recall,
        "flag_precision": precision,
    }
    sentence = qc_sentence(qc)
    assert sentence == (
        "QC without ground truth, judged by the reference on 237 masks: Spearman correlation of the score "
        "with Dice 0.75; " + ending
    )
    assert "nan" not in sentence


def test_the_summary_names_the_findings_whose_masks_are_worse_and_by_how_much_at_most():
    by_finding = pd.DataFrame(
        {
            "finding": ["Edema", "Mass", "Nodule"],
            "n_positive": [5, 5, 5],
            "dice_positive_mean": [0.95, 0.97, 0.96],
            "dice_positive_p10": [0.93, 0.96, 0.95],
            "n_negative": [9, 9, 9],
            "dice_negative_mean": [0.97, 0.97, 0.97],
            "difference": [-0.02, 0.0, -0.011],
            "ci_low": [-0.03, -0.01, -0.02],
            "ci_high": [-0.01, 0.01, -0.002],
        }
    )
    lines = markdown_lines(by_finding, None)
    assert (
        "The masks are significantly worse on images with Edema, Nodule (by up to 0.020 Dice): there the "
        "tight and loose conditions lose lung where the finding is" in "\n".join(lines)
    )
