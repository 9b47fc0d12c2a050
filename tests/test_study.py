"""The study's answers end to end: cells trained from real caches, their saliency, contrasts, claims,
the report section and every new figure in every format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from test_classify import LABELS, settings, synthetic_split
from test_figures import FORMAT_MAGIC, make_predictions

from cxrmask.claims import CLAIMS, OPTIONAL
from cxrmask.config import ClaimsSettings, CompareSettings, EvaluateSettings, FigureSettings
from cxrmask.errors import InputError
from cxrmask.figure_style import CONDITION_COLOURS
from cxrmask.stages.compare_bootstrap import compare_bootstrap
from cxrmask.stages.compare_conditions import compare_conditions
from cxrmask.stages.evaluate_classifiers import evaluate_classifiers
from cxrmask.stages.plot_no_finding import plot_no_finding
from cxrmask.stages.plot_saliency import plot_saliency
from cxrmask.stages.plot_saliency_overlays import plot_saliency_overlays
from cxrmask.stages.plot_training_efficiency import plot_training_efficiency
from cxrmask.stages.saliency_classifier import saliency_classifier
from cxrmask.stages.saliency_table import saliency_table
from cxrmask.stages.summarise_claims import summarise_claims
from cxrmask.stages.train_classifier import train_classifier as train_cell
from cxrmask.stages.write_report import write_report
from cxrmask.study_figures import no_finding_distributions, saliency_fractions, training_efficiency
from cxrmask.vocabulary import NO_FINDING

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONDITIONS = ("original", "tight")
STYLE = FigureSettings(format="png", dpi=40, font_size=8, width=3.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """Caches in the stages' formats, one cell per condition trained by ``train_cell``, then saliency."""
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(3)
    splits = {name: synthetic_split(n, rng) for name, n in (("train", 48), ("val", 16), ("test", 24))}
    order = ("train", "val", "test")
    images = np.concatenate([splits[name].images.numpy() for name in order])
    targets = np.concatenate([splits[name].targets.numpy() for name in order]).astype(int)
    n = len(images)
    index = pd.DataFrame(
        {
            "image": [f"{i:08d}_000.png" for i in range(n)],
            "patient_id": np.arange(n) // 2,
            "split": [name for name in order for _ in range(len(splits[name].targets))],
            **{label: targets[:, k] for k, label in enumerate(LABELS)},
            NO_FINDING: (targets.sum(axis=1) == 0).astype(int),
            "cache_row": np.arange(n),
            "ok": True,
        }
    )
    index.to_csv(root / "index.csv", index=False)
    np.save(root / "images.npy", images)
    lungs = np.zeros_like(images)
    lungs[:, 4:60, 4:60] = 1
    np.save(root / "lungs.npy", lungs)
    cells, outputs = [], []
    for condition in CONDITIONS:
        cell = {"backbone": "resnet10t", "mask": condition, "seed": 0}
        folder = root / condition
        folder.mkdir()
        paths = {
            name: folder / name
            for name in (
                "predictions.csv",
                "predictions_shifted.csv",
                "history.csv",
                "summary.json",
                "model.pt",
            )
        }
        train_cell(
            root / "images.npy",
            root / "index.csv",
            None if condition == "original" else root / "lungs.npy",
            *paths.values(),
            folder / "run.json",
            architecture="resnet10t",
            mask=condition,
            seed=0,
            labels=LABELS,
            settings=settings(epochs=2),
            device="cpu",
            threads=1,
        )
        saliency_classifier(
            root / "images.npy",
            root / "index.csv",
            None if condition == "original" else root / "lungs.npy",
            root / "lungs.npy",
            paths["model.pt"],
            folder / "saliency.csv",
            folder / "saliency.npz",
            folder / "saliency_run.json",
            architecture="resnet10t",
            mask=condition,
            seed=0,
            labels=LABELS,
            settings=settings(epochs=2),
            keep=3,
            device="cpu",
            threads=1,
        )
        cells.append(cell)
        outputs.append(folder)
    return {"root": root, "cells": cells, "folders": outputs, "n_test": len(splits["test"].targets)}


def test_saliency_per_cell_covers_every_test_image_and_label(run) -> None:
    for folder, cell in zip(run["folders"], run["cells"], strict=True):
        per_image = pd.read_csv(folder / "saliency.csv")
        assert len(per_image) == run["n_test"] * len(LABELS)
        assert set(per_image["label"]) == set(LABELS)
        assert per_image[["backbone", "mask", "seed"]].drop_duplicates().to_dict("records") == [cell]
        fractions = per_image["inside_fraction"].dropna()
        assert len(fractions) > 0 and fractions.between(0, 1).all()
        np.testing.assert_allclose(per_image["lung_area"], (56 / 64) ** 2)
        with np.load(folder / "saliency.npz") as sample:
            assert sample["maps"].shape == (3, len(LABELS), 64, 64)
            assert list(sample["labels"]) == LABELS
        record = json.loads((folder / "saliency_run.json").read_text())
        assert record["name"] == f"saliency_classifier/backbone=resnet10t/mask={cell['mask']}/seed=0"


def test_saliency_table_and_figures(run, tmp_path: Path) -> None:
    table = saliency_table([f / "saliency.csv" for f in run["folders"]], tmp_path / "saliency.csv")
    assert len(table) == len(CONDITIONS) * len(LABELS)
    assert {"inside_fraction", "inside_fraction_present", "n_images", "n_undefined", "lung_area"} <= set(
        table
    )
    plot_saliency(tmp_path / "saliency.csv", tmp_path / "saliency.png", STYLE)
    examples = [f / "saliency.npz" for f in run["folders"]]
    plot_saliency_overlays(examples, tmp_path / "overlay.png", run["cells"], "resnet10t", "Pneumonia", STYLE)
    for name in ("saliency.png", "overlay.png"):
        assert (tmp_path / name).read_bytes().startswith(FORMAT_MAGIC["png"])
    with pytest.raises(InputError, match="no maps for 'Atelectasis'"):
        plot_saliency_overlays(
            examples, tmp_path / "bad.png", run["cells"], "resnet10t", "Atelectasis", STYLE
        )


def test_contrasts_claims_and_report_from_the_cells(run, tmp_path: Path) -> None:
    predictions = [f / "predictions.csv" for f in run["folders"]]
    summaries = [f / "summary.json" for f in run["folders"]]
    evaluate = EvaluateSettings(alpha=0.05, n_boot=100)
    contrasts = compare_bootstrap(
        predictions, tmp_path / "contrasts.csv", run["cells"], LABELS, evaluate, [list(CONDITIONS)], 0
    )
    delta = contrasts[(contrasts["kind"] == "delta") & (contrasts["label"] == "macro")]
    assert len(delta) == 1 and delta.iloc[0]["condition_b"] == "tight"
    pairs = CompareSettings(pairs=[CONDITIONS])
    compare_conditions(predictions, tmp_path / "delong.csv", run["cells"], LABELS, pairs, 0.05)
    evaluate_classifiers(
        predictions,
        summaries,
        tmp_path / "auroc.csv",
        tmp_path / "training.csv",
        run["cells"],
        LABELS,
        evaluate,
        0,
    )
    claims = summarise_claims(
        tmp_path / "contrasts.csv",
        tmp_path / "delong.csv",
        tmp_path / "training.csv",
        shift=None,
        summary=tmp_path / "summary.md",
        claims=tmp_path / "claims.csv",
        alpha=0.05,
        n_boot=evaluate.n_boot,
        settings=ClaimsSettings(),
        shortcut_label=None,
    )
    assert set(claims["claim"]) == set(CLAIMS) - set(OPTIONAL)  # no CheXmask condition: no source claim
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# The paper's claims against this run")
    plot_training_efficiency(summaries, tmp_path / "efficiency.png", STYLE)
    plot_no_finding(predictions, tmp_path / "no_finding.png", run["cells"], "resnet10t", STYLE)
    # the report opens with the claims, one heading level down
    (tmp_path / "curation.json").write_text(
        json.dumps({"splits": {"test": {"images": 1}}, "patients_in_two_splits": 0})
    )
    (tmp_path / "finetune.json").write_text(
        json.dumps(
            {
                "n_train": 1,
                "n_val": 1,
                "n_test": 1,
                "best_epoch": 1,
                "default_prompt": "head_refined",
                "test": {
                    "finetuned": {
                        "head_refined": {"dice_mean": 0.9, "dice_p10": 0.8, "iou_mean": 0.8, "hd95_mean": 4.0}
                    }
                },
                "qc_calibration": {
                    "bad_dice": 0.93,
                    "dice_offset": 0.025,
                    "dice_slope": 0.8765,
                    "dice_spread": 0.0123,
                    "n_calibration": 1,
                },
                "qc_val": {
                    "spearman_qc_dice": None,
                    "flagged": 0,
                    "n": 1,
                    "n_bad": 0,
                    "flag_precision": None,
                    "flag_recall": None,
                },
                "qc_test": {
                    "spearman_qc_dice": 0.5,
                    "flagged": 1,
                    "n": 1,
                    "n_bad": 1,
                    "flag_precision": 1.0,
                    "flag_recall": 1.0,
                },
                "zero_shot_val_dice": 0.5,
                "finetuned_val_dice": 0.6,
                "zero_shot_val_dice_prior_box": 0.4,
                "finetuned_val_dice_prior_box": 0.5,
            }
        )
    )
    masks = pd.DataFrame({"lung_fraction": [0.3], "fallback": [False], "flag": [False], "qc_score": [0.9]})
    masks.to_csv(tmp_path / "masks.csv", index=False)
    for shard, sources in enumerate((["reference", "segmenter"], ["reference", "reference", "segmenter"])):
        images = [f"0000000{shard}_00{k}.png" for k in range(len(sources))]
        pd.DataFrame({"image": images, "source": sources}).to_csv(tmp_path / f"ref_{shard}.csv", index=False)
    write_report(
        curation=tmp_path / "curation.json",
        finetune=tmp_path / "finetune.json",
        tight=[tmp_path / "masks.csv"],
        loose=[tmp_path / "masks.csv"],
        auroc=tmp_path / "auroc.csv",
        delong=tmp_path / "delong.csv",
        training=tmp_path / "training.csv",
        figures=[tmp_path / "efficiency.png"],
        report=tmp_path / "report.md",
        summary=tmp_path / "summary.md",
        reference_masks=[tmp_path / "ref_0.csv", tmp_path / "ref_1.csv"],
    )
    report = (tmp_path / "report.md").read_text()
    assert "\n## Mask sources\n" in report
    assert (
        "3 of 5 images have them; 2 kept the segmenter's mask (no reference row, RCA below "
        "`nih.chexmask_min_rca`, or empty lungs), e.g. 00000000_001.png, 00000001_002.png."
    ) in report
    assert "\n## The paper's claims against this run\n" in report
    assert report.index("## The paper's claims") < report.index("## Curated NIH subset")
    assert "## Test AUROC (mean ± sd over seeds)" in report
    assert (
        "uncertain pixels per mask pixel) as +0.0250 + 0.8765 x certainty, calibrated on 1 validation masks, "
        "where it strays from the true Dice by 0.0123 "
        "(standard deviation); a mask is flagged below 0.93 + 0.0123 or with its lungs in one body"
    ) in report
    assert "| val | 1 | n/a | 0 | 0 | n/a | n/a |" in report
    assert "| test | 1 | 0.50 | 1 | 1 | 100% | 100% |" in report


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_every_study_figure_in_every_format(tmp_path: Path, fmt: str) -> None:
    style = FigureSettings(format=fmt, dpi=40)
    tables = make_predictions()
    training = pd.DataFrame(
        [
            {
                "backbone": b,
                "mask": m,
                "seed": s,
                "seconds_to_best": 10 + s + 5 * (m == "original"),
                "best_epoch": 3,
            }
            for b in ("resnet50", "densenet121")
            for m in tables
            for s in (0, 1)
        ]
    )
    saliency = pd.DataFrame(
        [
            {
                "backbone": b,
                "mask": m,
                "seed": 0,
                "label": label,
                "inside_fraction_present": 0.5 + 0.2 * (m != "original"),
                "lung_area": 0.35,
            }
            for b in ("resnet50",)
            for m in tables
            for label in ("Mass", "Pneumonia")
        ]
    )
    drawn = {
        "nf": no_finding_distributions(tables, tmp_path / f"nf.{fmt}", style, title="resnet50"),
        "eff": training_efficiency(training, tmp_path / f"eff.{fmt}", style),
        "sal": saliency_fractions(saliency, tmp_path / f"sal.{fmt}", style),
    }
    for name in drawn:
        data = (tmp_path / f"{name}.{fmt}").read_bytes()
        assert data.startswith(FORMAT_MAGIC[fmt])
        if fmt == "svg":
            assert b"<image" not in data  # vector: no embedded raster
    # each condition keeps its colour-blind-safe colour
    colours = {to_hex(p.get_facecolor()) for ax in drawn["eff"].axes for p in ax.patches}
    assert colours == {CONDITION_COLOURS[c].lower() for c in tables}
    points = {
        to_hex(line.get_color()) for line in drawn["sal"].axes[0].get_lines() if line.get_marker() != "None"
    }
    assert {CONDITION_COLOURS[c].lower() for c in tables} <= points


def test_no_finding_distributions_separate_normal_from_abnormal(tmp_path: Path) -> None:
    tables = make_predictions()
    figure = no_finding_distributions(tables, tmp_path / "nf.png", FigureSettings(dpi=40))
    assert [ax.get_title() for ax in figure.axes] == list(tables)
    for ax in figure.axes:
        filled = [p for p in ax.patches if p.get_fill()]
        heights = np.array([p.get_height() for p in filled])
        widths = np.array([p.get_width() for p in filled])
        assert (heights * widths).sum() == pytest.approx(1.0)  # a density over the normal images
    with pytest.raises(InputError, match="score_No Finding"):
        no_finding_distributions(
            {"original": tables["original"].drop(columns="score_No Finding")},
            tmp_path / "x.png",
            FigureSettings(),
        )
