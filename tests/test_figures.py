"""Figures: every function writes a real file in every format, from tables in the formats stages write."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy.ndimage import binary_dilation
from sklearn.metrics import roc_auc_score

from cxrmask.config import FigureSettings, parse
from cxrmask.errors import ConfigError, InputError
from cxrmask.figure_style import CONDITION_COLOURS, TRUTH_COLOUR
from cxrmask.figures import (
    auroc_heatmap,
    delta_auroc,
    mask_gallery,
    roc_curves,
    training_curves,
)
from cxrmask.study_figures import shift_drops
from cxrmask.vocabulary import CONDITIONS

FINDINGS = ("Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis")
LABELS = (*FINDINGS, "No Finding")
BACKBONES = ("resnet50", "densenet121")
COMPARISONS = (("original", "tight"), ("original", "loose"), ("tight", "loose"))
SIGNAL = {"original": 1.6, "tight": 0.9, "loose": 1.4, "chexmask-tight": 1.0, "chexmask-loose": 1.5}
FORMAT_MAGIC = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml"}


def make_predictions(n: int = 240, one_class: str | None = None) -> dict[str, pd.DataFrame]:
    """Predictions tables for every condition (both mask sources) on one shared test set, as evaluation
    writes them."""
    rng = np.random.default_rng(0)
    truth = {label: (rng.random(n) < 0.2).astype(int) for label in FINDINGS}
    if one_class:
        truth[one_class] = np.zeros(n, dtype=int)
    truth["No Finding"] = (np.stack([truth[label] for label in FINDINGS]).sum(axis=0) == 0).astype(int)
    tables = {}
    for condition in CONDITIONS:
        frame = pd.DataFrame(
            {"image": [f"{i:08d}_000.png" for i in range(n)], "patient_id": np.arange(n) // 2}
        )
        probabilities = []
        for label in FINDINGS:
            logit = SIGNAL[condition] * truth[label] - 1.5 + rng.normal(0, 1, n)
            probabilities.append(1 / (1 + np.exp(-logit)))
            frame[f"true_{label}"] = truth[label]
            frame[f"score_{label}"] = probabilities[-1]
        frame["true_No Finding"] = truth["No Finding"]
        frame["score_No Finding"] = 1 - np.max(probabilities, axis=0)
        tables[condition] = frame
    return tables


def make_auroc_table(seeds: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    """A tidy AUROC table: backbone x mask x seed x label (six labels plus macro)."""
    rng = np.random.default_rng(1)
    rows = []
    for backbone in BACKBONES:
        for mask in CONDITIONS:
            for seed in seeds:
                for label in (*LABELS, "macro"):
                    auroc = 0.6 + 0.05 * SIGNAL[mask] + rng.normal(0, 0.02)
                    rows.append(
                        {
                            "backbone": backbone,
                            "mask": mask,
                            "seed": seed,
                            "label": label,
                            "auroc": auroc,
                            "ci_low": auroc - 0.04,
                            "ci_high": auroc + 0.04,
                            "n_pos": 40,
                            "n_neg": 200,
                        }
                    )
    return pd.DataFrame(rows)


def make_delong_table() -> pd.DataFrame:
    """A tidy DeLong table: backbone x label x comparison, Holm-adjusted, some significant."""
    rng = np.random.default_rng(2)
    rows = []
    for backbone in BACKBONES:
        for label in LABELS:
            for a, b in COMPARISONS:
                auc_a, delta = 0.75, float(rng.normal(0, 0.03))
                z = delta / 0.012
                p = float(math.erfc(abs(z) / math.sqrt(2)))
                p_holm = min(1.0, p * 3)
                rows.append(
                    {
                        "backbone": backbone,
                        "label": label,
                        "condition_a": a,
                        "condition_b": b,
                        "auc_a": auc_a,
                        "auc_b": auc_a + delta,
                        "delta": delta,
                        "z": z,
                        "ci_low": delta - 1.645 * 0.012,
                        "ci_high": delta + 1.645 * 0.012,
                        "p_value": p,
                        "p_holm": p_holm,
                        "significant": p_holm < 0.05,
                        "n_pos": 40,
                        "n_neg": 200,
                    }
                )
    return pd.DataFrame(rows)


def make_samples(n: int = 5, size: int = 96, truth: bool = True) -> list[dict]:
    """Gallery samples: a grey image with two lung-like ellipses, tight and dilated (loose) masks."""
    yy, xx = np.mgrid[:size, :size] / size
    samples = []
    for i in range(n):
        shift = 0.02 * i
        tight = (((xx - 0.3 - shift) / 0.14) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1) | (
            ((xx - 0.7 + shift) / 0.14) ** 2 + ((yy - 0.5) / 0.3) ** 2 < 1
        )
        image = (180 - 110 * tight + 20 * np.sin(9 * xx)).clip(0, 255).astype(np.uint8)
        sample = {
            "image": image,
            "tight": tight,
            "loose": binary_dilation(tight, iterations=5),
            "title": f"case {i}",
        }
        if truth:
            sample["truth"] = np.roll(tight, 2, axis=0)
        samples.append(sample)
    return samples


def make_histories() -> dict[str, pd.DataFrame]:
    """Training histories per condition: epoch, train_loss, val_macro_auroc, seconds."""
    epochs = np.arange(1, 9)
    return {
        condition: pd.DataFrame(
            {
                "epoch": epochs,
                "train_loss": 0.7 * np.exp(-epochs / (3 + SIGNAL[condition])) + 0.1,
                "val_macro_auroc": 0.8 - 0.25 * np.exp(-epochs / 2) * SIGNAL[condition] / 1.6,
                "seconds": np.full(epochs.size, 30.0 if condition == "tight" else 40.0),
            }
        )
        for condition in CONDITIONS
    }


FEW = ["macro", "Mass", "No Finding"]
DRAWERS = {
    "roc": lambda path, style: roc_curves(make_predictions(), FEW[1:], path, style, title="ROC"),
    "heatmap": lambda path, style: auroc_heatmap(make_auroc_table().query("label in @FEW"), path, style),
    "delta": lambda path, style: delta_auroc(make_delong_table(), path, style),
    "gallery": lambda path, style: mask_gallery(make_samples(), path, style, columns=3),
    "training": lambda path, style: training_curves(make_histories(), path, style),
}


def png_size(path: Path) -> tuple[int, int]:
    """Decode a PNG fully (a truncated file fails here) and return its pixel size."""
    with Image.open(path) as image:
        image.load()
        return image.size


# --- style


def test_style_from_config_takes_values_and_defaults() -> None:
    style = parse(FigureSettings, {"format": "svg", "dpi": 150, "font_size": 8})
    assert (style.format, style.dpi, style.font_size, style.cmap, style.width) == (
        "svg",
        150,
        8.0,
        "viridis",
        3.2,
    )
    assert parse(FigureSettings, None) == FigureSettings()


def test_style_rejects_unknown_key_naming_it_and_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="colour_map") as caught:
        parse(FigureSettings, {"format": "png", "colour_map": "magma"}, where="figures")
    assert all(key in str(caught.value) for key in ("format", "dpi", "font_size", "cmap", "width"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("format", "jpg"),
        ("dpi", 0),
        ("dpi", 72.5),
        ("dpi", True),
        ("font_size", -1),
        ("width", 0),
        ("cmap", "nope"),
    ],
)
def test_style_rejects_bad_values(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        parse(FigureSettings, {key: value}, where="figures")


def test_suffix_that_disagrees_with_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="suffix"):
        training_curves(make_histories(), tmp_path / "curves.png", FigureSettings(format="pdf", dpi=50))
    assert list(tmp_path.iterdir()) == []


# --- every figure, every format


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
@pytest.mark.parametrize("name", sorted(DRAWERS))
def test_each_figure_writes_each_format(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / f"{name}.{fmt}"
    DRAWERS[name](path, FigureSettings(format=fmt, dpi=40))
    data = path.read_bytes()
    assert len(data) > 1000
    assert data.startswith(FORMAT_MAGIC[fmt])
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file may remain"


def test_png_size_follows_dpi_and_layout(tmp_path: Path) -> None:
    style = FigureSettings(dpi=50, width=3.0)
    # six ROC panels: three columns, two rows of square panels
    roc_curves(make_predictions(), LABELS, tmp_path / "roc.png", style)
    assert png_size(tmp_path / "roc.png") == (3 * 150, 2 * 150)
    # seven heatmap panels: four columns, two rows of 0.5 * 2 backbones + 1.1 inches
    auroc_heatmap(make_auroc_table(), tmp_path / "heat.png", style)
    assert png_size(tmp_path / "heat.png") == (4 * 150, round(2 * 2.1 * 50))
    # two backbones: two columns of 0.17 * 6 labels * 3 comparisons + 1.3 inches
    delta_auroc(make_delong_table(), tmp_path / "delta.png", style)
    assert png_size(tmp_path / "delta.png") == (2 * 150, round((0.17 * 18 + 1.3) * 50))
    # five gallery samples, two per row: three rows of square panels
    mask_gallery(make_samples(), tmp_path / "gallery.png", style, columns=2)
    assert png_size(tmp_path / "gallery.png") == (2 * 150, 3 * 150)
    # doubling the dpi doubles the pixels
    training_curves(make_histories(), tmp_path / "train.png", FigureSettings(dpi=100, width=3.0))
    assert png_size(tmp_path / "train.png") == (600, 240)


def test_same_inputs_give_identical_files(tmp_path: Path) -> None:
    for fmt in ("png", "pdf", "svg"):
        style = FigureSettings(format=fmt, dpi=40)
        first, second = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        training_curves(make_histories(), first, style)
        training_curves(make_histories(), second, style)
        assert first.read_bytes() == second.read_bytes(), fmt
    # the dates would differ only across a second boundary, so check they are absent
    assert b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()
    assert b"<dc:date>" not in (tmp_path / "a.svg").read_bytes()


def test_missing_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "results" / "figures" / "deep" / "gallery.png"
    mask_gallery(make_samples(2), path, FigureSettings(dpi=40))
    assert png_size(path) == (2 * 128, 128)


# --- what is drawn


def test_roc_legend_reports_each_conditions_auroc_in_its_fixed_colour(tmp_path: Path) -> None:
    predictions = make_predictions()
    figure = roc_curves(predictions, ["Mass", "No Finding"], tmp_path / "roc.png", FigureSettings(dpi=40))
    for ax, label in zip(figure.axes, ["Mass", "No Finding"], strict=True):
        legend = ax.get_legend()
        texts = [text.get_text() for text in legend.get_texts()]
        expected = [
            f"{c}  {roc_auc_score(predictions[c][f'true_{label}'], predictions[c][f'score_{label}']):.3f}"
            for c in CONDITIONS
        ]
        assert texts == expected
        colours = [to_hex(line.get_color()) for line in legend.get_lines()]
        assert colours == [CONDITION_COLOURS[c].lower() for c in CONDITIONS]


def test_roc_orders_conditions_whatever_the_mapping_order(tmp_path: Path) -> None:
    predictions = make_predictions()
    shuffled = {c: predictions[c] for c in ("loose", "original")}
    figure = roc_curves(shuffled, ["Nodule"], tmp_path / "roc.png", FigureSettings(dpi=40))
    texts = [text.get_text().split()[0] for text in figure.axes[0].get_legend().get_texts()]
    assert texts == ["original", "loose"]


def test_roc_survives_a_one_class_label(tmp_path: Path) -> None:
    path = tmp_path / "roc.png"
    labels = ["Mass", "Fibrosis"]
    figure = roc_curves(make_predictions(one_class="Fibrosis"), labels, path, FigureSettings(dpi=40))
    assert png_size(path) == (2 * 128, 128)
    fibrosis = figure.axes[1]
    assert fibrosis.get_legend() is None
    assert len(fibrosis.get_lines()) == 1, "only the chance diagonal"
    assert any("one class" in text.get_text() for text in fibrosis.texts)
    assert len(figure.axes[0].get_lines()) == 1 + len(CONDITIONS)


def test_heatmap_shows_mean_and_sd_over_seeds(tmp_path: Path) -> None:
    table = make_auroc_table(seeds=(0, 1, 2)).query("label in @FEW")
    figure = auroc_heatmap(table, tmp_path / "heat.png", FigureSettings(dpi=40))
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == FEW
    cell = table[
        (table["label"] == "macro") & (table["backbone"] == "densenet121") & (table["mask"] == "loose")
    ]
    expected = f"{cell['auroc'].mean():.3f}\n±{cell['auroc'].std():.3f}"
    assert expected in [text.get_text() for text in panels[0].texts]


def test_heatmap_with_one_seed_shows_no_sd(tmp_path: Path) -> None:
    table = make_auroc_table(seeds=(0,))
    figure = auroc_heatmap(table, tmp_path / "heat.png", FigureSettings(dpi=40))
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert len(texts) == 7 * len(BACKBONES) * len(CONDITIONS)
    assert not any("±" in text for text in texts)
    ticks = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert ticks == ["original", "tight", "loose", "chexmask\ntight", "chexmask\nloose"]
    with pytest.raises(InputError, match=r"more than one row.*seed=0"):
        auroc_heatmap(pd.concat([table, table.iloc[:1]]), tmp_path / "again.png", FigureSettings(dpi=40))


def test_delta_marks_significant_comparisons_and_prints_holm_p(tmp_path: Path) -> None:
    table = make_delong_table()
    figure = delta_auroc(table, tmp_path / "delta.png", FigureSettings(dpi=40))
    panel = figure.axes[0]
    rows = table[table["backbone"] == BACKBONES[0]]
    texts = [text.get_text() for text in panel.texts]
    assert texts[-1] == "p (Holm)"
    texts = texts[:-1]
    assert len(texts) == len(rows)
    assert f"{rows['p_holm'].iloc[0]:.3f}" in texts[0]
    starred = [text for text in texts if text.endswith("*")]
    assert len(starred) == int(rows["significant"].sum()) > 0
    filled = [
        line
        for line in panel.get_lines()
        if line.get_marker() not in ("None", "", None) and to_hex(line.get_markerfacecolor()) != "#ffffff"
    ]
    assert len(filled) == len(starred)


def test_delta_bars_are_the_tables_intervals(tmp_path: Path) -> None:
    """The bars come from ci_low/ci_high as written (here 90% and lopsided), not from a fixed 1.96."""
    table = make_delong_table()
    table["ci_high"] = table["delta"] + 0.05
    figure = delta_auroc(table, tmp_path / "delta.png", FigureSettings(dpi=40))
    rows = table[table["backbone"] == BACKBONES[0]]
    bars = [container.lines[2][0].get_segments()[0] for container in figure.axes[0].containers]
    drawn = sorted((float(seg[0][0]), float(seg[1][0])) for seg in bars)
    expected = sorted(zip(rows["ci_low"], rows["ci_high"], strict=True))
    np.testing.assert_allclose(drawn, expected)


def test_delta_reads_significant_as_written_to_csv(tmp_path: Path) -> None:
    table = make_delong_table()
    text_table = table.assign(significant=table["significant"].map(str))
    figure = delta_auroc(text_table, tmp_path / "delta.png", FigureSettings(dpi=40))
    starred = [text for text in figure.axes[0].texts if text.get_text().endswith("*")]
    assert len(starred) == int(table[table["backbone"] == BACKBONES[0]]["significant"].sum())
    with pytest.raises(InputError, match="significant"):
        delta_auroc(table.assign(significant="maybe"), tmp_path / "bad.png", FigureSettings(dpi=40))


def test_delta_draws_untestable_rows_as_na_and_refuses_duplicates(tmp_path: Path) -> None:
    table = make_delong_table()
    one_class = table["label"] == "Fibrosis"
    table.loc[one_class, ["delta", "z", "p_value", "p_holm"]] = np.nan
    table.loc[one_class, "significant"] = False
    figure = delta_auroc(table, tmp_path / "delta.png", FigureSettings(dpi=40))
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts.count("n/a") == len(COMPARISONS)
    with pytest.raises(InputError, match="more than one row"):
        delta_auroc(pd.concat([table, table.iloc[:1]]), tmp_path / "again.png", FigureSettings(dpi=40))


def test_gallery_outlines_each_mask_in_its_colour(tmp_path: Path) -> None:
    samples = make_samples(2, truth=False)
    samples[1]["truth"] = samples[1]["tight"]
    figure = mask_gallery(samples, tmp_path / "gallery.png", FigureSettings(dpi=40))
    first, second = figure.axes
    colours = {to_hex(line.get_color()) for line in first.get_lines()}
    assert colours == {CONDITION_COLOURS["tight"].lower(), CONDITION_COLOURS["loose"].lower()}
    truth_lines = [line for line in second.get_lines() if to_hex(line.get_color()) == TRUTH_COLOUR.lower()]
    assert len(truth_lines) == 2, "one truth outline per lung"
    assert all(line.get_linestyle() == "--" for line in truth_lines)
    legend_texts = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend_texts == ["tight mask", "loose mask", "ground truth"]


# --- failures


def test_missing_column_is_a_clear_error_and_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "heat.png"
    with pytest.raises(InputError, match=r"auroc.*re-run"):
        auroc_heatmap(make_auroc_table().drop(columns="auroc"), path, FigureSettings(dpi=40))
    predictions = make_predictions()
    predictions["tight"] = predictions["tight"].drop(columns="score_Edema")
    with pytest.raises(InputError, match="score_Edema") as caught:
        roc_curves(predictions, LABELS, path, FigureSettings(dpi=40))
    assert "tight" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_redraw_keeps_the_previous_figure(tmp_path: Path) -> None:
    path = tmp_path / "roc.png"
    roc_curves(make_predictions(), ["Mass"], path, FigureSettings(dpi=40))
    before = path.read_bytes()
    broken = make_predictions()
    broken["loose"].loc[3, "score_Mass"] = np.nan
    with pytest.raises(InputError, match="score_Mass"):
        roc_curves(broken, ["Mass"], path, FigureSettings(dpi=40))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]


def test_unknown_condition_and_bad_samples_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cropped"):
        roc_curves(
            {"cropped": make_predictions()["tight"]}, ["Mass"], tmp_path / "r.png", FigureSettings(dpi=40)
        )
    samples = make_samples(2)
    samples[1]["loose"] = samples[1]["loose"][:-1]
    with pytest.raises(InputError, match=r"case 1.*loose"):
        mask_gallery(samples, tmp_path / "g.png", FigureSettings(dpi=40))
    with pytest.raises(InputError, match="no samples"):
        mask_gallery([], tmp_path / "g.png", FigureSettings(dpi=40))
    assert list(tmp_path.iterdir()) == []


def test_the_shift_figure_draws_an_interval_that_lies_to_one_side_of_its_estimate(tmp_path: Path) -> None:
    """A percentile interval of few resamples need not contain the estimate (the loose row's lies above
    it, as a tiny run wrote one): the bar stops at the estimate instead of failing as a negative error."""
    rows = [
        {"kind": "drop", "backbone": "resnet10t", "condition": condition, "label": "Fibrosis",
         "estimate": estimate, "ci_low": low, "ci_high": high}
        for condition, estimate, low, high in [
            ("original", 0.05, 0.01, 0.09), ("tight", -0.111, -0.222, 0.0), ("loose", 0.02, 0.03, 0.04)
        ]
    ]  # fmt: skip
    path = tmp_path / "shift.png"
    shift_drops(pd.DataFrame(rows), path, FigureSettings(dpi=40))
    assert Image.open(path).size[0] > 0
