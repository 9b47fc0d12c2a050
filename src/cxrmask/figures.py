"""Paper figures: ROC curves, AUROC heatmaps, ΔAUROC with DeLong tests, mask galleries, training curves.

Each public function takes the tables other stages write (predictions, AUROC, DeLong, training histories)
or gallery samples, draws one figure, saves it atomically and returns the ``Figure`` so callers and tests
can inspect what was drawn. Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``: no
global figure registry, no GUI backend, nothing left open after a figure is saved.

Every figure draws with :mod:`cxrmask.figure_style`: one set of colours per mask condition, fonts from
:class:`FigureSettings`, byte-identical files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from skimage.measure import find_contours
from sklearn.metrics import roc_auc_score, roc_curve

from cxrmask.config import FigureSettings
from cxrmask.errors import ConfigError, InputError
from cxrmask.figure_style import (
    CONDITION_COLOURS,
    EXTRA_COLOURS,
    MARKERS,
    MISSING_COLOUR,
    SMALL,
    TRUTH_COLOUR,
    as_bool,
    binary_truth,
    bottom_legend,
    condition_tick,
    format_p,
    legend_columns,
    new_figure,
    ordered_conditions,
    panel_grid,
    panels,
    refuse_duplicates,
    require,
    save,
    style_context,
    text_colour,
    unique,
)


def roc_curves(
    predictions: Mapping[str, pd.DataFrame],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    style: FigureSettings,
    title: str = "",
) -> Figure:
    """One ROC panel per label, one curve per mask condition, AUROC per condition in each legend.

    ``predictions`` maps a condition (original, tight, loose) to its predictions table with ``true_{L}``
    and ``score_{L}`` columns. Panels are square (``style.width`` inches), three to a row. A label whose
    truth holds only one class has no ROC curve; its panel says so instead of failing the whole figure.
    """
    if not predictions:
        raise InputError("roc_curves: no predictions given; pass one table per mask condition.")
    if not labels:
        raise InputError("roc_curves: no labels given.")
    conditions = ordered_conditions(list(predictions), "roc_curves predictions")
    for condition in conditions:
        columns = [f"{kind}_{label}" for label in labels for kind in ("true", "score")]
        require(predictions[condition], columns, f"predictions table for condition {condition!r}")
    rows, columns = panel_grid(len(labels), 3)
    with style_context(style):
        figure = new_figure(style, columns * style.width, rows * style.width)
        axes = panels(figure, len(labels), rows, columns)
        for index, (ax, label) in enumerate(zip(axes, labels, strict=True)):
            _roc_panel(ax, predictions, conditions, label, style)
            if index % columns == 0:
                ax.set_ylabel("True positive rate")
            if index + columns >= len(labels):
                ax.set_xlabel("False positive rate")
        if title:
            figure.suptitle(title)
        save(figure, path, style)
    return figure


def _roc_panel(
    ax: Axes,
    predictions: Mapping[str, pd.DataFrame],
    conditions: Sequence[str],
    label: str,
    style: FigureSettings,
) -> None:
    """Draw one label's curves; conditions whose data hold one class only are left out and noted."""
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=0.8)
    counts = ""
    drawn = 0
    for condition in conditions:
        frame = predictions[condition]
        what = f"predictions table for condition {condition!r}"
        truth = binary_truth(frame, f"true_{label}", what)
        scores = frame[f"score_{label}"].to_numpy(dtype=float)
        if not np.isfinite(scores).all():
            raise InputError(f"{what}: column 'score_{label}' holds NaN or infinite values.")
        n_pos = int(truth.sum())
        counts = counts or f"{n_pos} pos / {truth.size - n_pos} neg"
        if n_pos in (0, truth.size):
            continue
        fpr, tpr, _ = roc_curve(truth, scores)
        auc = roc_auc_score(truth, scores)
        ax.plot(fpr, tpr, color=CONDITION_COLOURS[condition], linewidth=1.3, label=f"{condition}  {auc:.3f}")
        drawn += 1
    ax.set_title(f"{label}\n({counts})" if counts else label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    if drawn:
        ax.legend(title="AUROC", loc="lower right", frameon=False, handlelength=1.5)
    else:
        ax.text(
            0.5,
            0.5,
            "one class only:\nno ROC curve",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=style.font_size * SMALL,
            color="#555555",
        )


# --- AUROC heatmap


def auroc_heatmap(auroc_table: pd.DataFrame, path: str | os.PathLike[str], style: FigureSettings) -> Figure:
    """Per label (macro first), backbone x mask condition heatmap of AUROC, mean over seeds.

    Cells carry the mean, and ``± sd`` (sample sd over seeds) where a cell has several seeds. All panels
    share one colour scale and one colour bar, so colours compare across labels. Panels are
    ``style.width`` wide and ``max(0.5 * backbones + 1.1, 1.8)`` inches tall, four to a row. A backbone x
    condition cell missing from the table is drawn grey and marked n/a.
    """
    require(auroc_table, ["backbone", "mask", "seed", "label", "auroc"], "AUROC table")
    refuse_duplicates(auroc_table, ["backbone", "mask", "seed", "label"], "AUROC table")
    conditions = ordered_conditions(unique(auroc_table["mask"]), "AUROC table")
    backbones = unique(auroc_table["backbone"])
    labels = unique(auroc_table["label"])
    if "macro" in labels:
        labels = ["macro", *[label for label in labels if label != "macro"]]
    values = auroc_table["auroc"].astype(float)
    if np.isinf(values).any():
        raise InputError("AUROC table: column 'auroc' holds infinite values.")
    if values.isna().all():
        raise InputError("AUROC table: no AUROC is defined (every label lacks a class in the test split).")
    # An undefined AUROC (a label with one class in a small test split) is drawn as n/a.
    stats = (
        auroc_table.assign(auroc=values)[values.notna()]
        .groupby(["label", "backbone", "mask"], sort=False)["auroc"]
        .agg(mean="mean", sd="std", n="count")
    )
    low, high = float(stats["mean"].min()), float(stats["mean"].max())
    if high - low < 0.02:
        low, high = low - 0.01, high + 0.01
    norm = Normalize(vmin=low, vmax=high)
    rows, columns = panel_grid(len(labels), 4)
    panel_height = max(0.5 * len(backbones) + 1.1, 1.8)
    with style_context(style):
        figure = new_figure(style, columns * style.width, rows * panel_height)
        axes = panels(figure, len(labels), rows, columns)
        image = None
        for index, (ax, label) in enumerate(zip(axes, labels, strict=True)):
            grid = np.full((len(backbones), len(conditions)), np.nan)
            for (row, backbone), (column, condition) in product(enumerate(backbones), enumerate(conditions)):
                key = (label, backbone, condition)
                if key in stats.index:
                    mean, sd, n = stats.loc[key]
                    grid[row, column] = mean
                    text = f"{mean:.3f}" + (f"\n±{sd:.3f}" if n > 1 else "")
                    colour = text_colour(style, norm, mean)
                else:
                    text, colour = "n/a", "#777777"
                ax.text(
                    column,
                    row,
                    text,
                    ha="center",
                    va="center",
                    fontsize=style.font_size * SMALL,
                    color=colour,
                )
            ax.set_facecolor(MISSING_COLOUR)
            image = ax.imshow(np.ma.masked_invalid(grid), cmap=style.cmap, norm=norm, aspect="auto")
            ax.set_title(label)
            ax.set_xticks(range(len(conditions)), [condition_tick(condition) for condition in conditions])
            ax.set_yticks(range(len(backbones)), backbones if index % columns == 0 else [])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        colourbar = figure.colorbar(image, ax=axes, shrink=0.9, aspect=30)
        colourbar.set_label("mean AUROC")
        save(figure, path, style)
    return figure


# --- ΔAUROC


def _comparison_colours(comparisons: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A comparison against the original image takes the masked condition's colour; others get extras."""
    colours: dict[tuple[str, str], str] = {}
    extras = iter(EXTRA_COLOURS * (1 + len(comparisons) // len(EXTRA_COLOURS)))
    for a, b in comparisons:
        colours[(a, b)] = CONDITION_COLOURS[b] if a == "original" and b in CONDITION_COLOURS else next(extras)
    return colours


def delta_auroc(delong_table: pd.DataFrame, path: str | os.PathLike[str], style: FigureSettings) -> Figure:
    """One panel per backbone: ΔAUROC (condition b - condition a) per label and comparison.

    Points are filled where the Holm-adjusted DeLong test is significant and open otherwise; bars are the
    table's own ``ci_low``..``ci_high`` intervals (DeLong, at the run's ``evaluate.alpha``). Holm p-values
    are printed in a column to the right of each panel, on the row of their point. Panels are
    ``style.width`` wide and ``0.17 * labels * comparisons + 1.3`` inches tall, three to a row.
    """
    required = ["backbone", "label", "condition_a", "condition_b", "delta", "ci_low", "ci_high"]
    require(delong_table, [*required, "p_holm", "significant"], "DeLong table")
    ordered_conditions(
        unique(pd.concat([delong_table["condition_a"], delong_table["condition_b"]])), "DeLong table"
    )
    refuse_duplicates(delong_table, ["backbone", "label", "condition_a", "condition_b"], "DeLong table")
    table = delong_table.assign(
        significant=[as_bool(value, "DeLong table") for value in delong_table["significant"]],
        delta=delong_table["delta"].astype(float),
        p_holm=delong_table["p_holm"].astype(float),
    )
    backbones = unique(table["backbone"])
    labels = unique(table["label"])
    comparisons = unique(pd.Series(list(zip(table["condition_a"], table["condition_b"], strict=True))))
    colours = _comparison_colours(comparisons)
    # An undefined interval (a single case in a class) draws as a point, not as a bar to infinity.
    below = (table["delta"] - table["ci_low"].astype(float)).clip(lower=0).fillna(0.0)
    above = (table["ci_high"].astype(float) - table["delta"]).clip(lower=0).fillna(0.0)
    table = table.assign(below=below, above=above)
    extent = (np.abs(table["delta"]) + np.maximum(below, above)).to_numpy()
    extent = extent[np.isfinite(extent)]
    reach = 1.15 * float(extent.max()) if extent.size and extent.max() > 0 else 0.01
    n_rows = len(labels) * len(comparisons)
    step = 1.0 / (len(comparisons) + 1)
    rows, columns = panel_grid(len(backbones), 3)
    panel_height = 0.17 * n_rows + 1.3
    with style_context(style):
        figure = new_figure(style, columns * style.width, rows * panel_height)
        axes = panels(figure, len(backbones), rows, columns)
        for index, (ax, backbone) in enumerate(zip(axes, backbones, strict=True)):
            ax.axvline(0.0, color="#777777", linewidth=0.8, zorder=0)
            part = table[table["backbone"] == backbone]
            for (row, label), (offset, comparison) in product(enumerate(labels), enumerate(comparisons)):
                match = part[(part["label"] == label) & (part["condition_a"] == comparison[0])]
                match = match[match["condition_b"] == comparison[1]]
                if match.empty:
                    continue
                entry = match.iloc[0]
                y = row + (offset - (len(comparisons) - 1) / 2) * step
                colour = colours[comparison]
                drawable = bool(np.isfinite(entry["delta"]))
                ax.errorbar(
                    entry["delta"],
                    y,
                    xerr=[[entry["below"]], [entry["above"]]],
                    fmt=MARKERS[comparisons.index(comparison) % len(MARKERS)],
                    color=colour,
                    markerfacecolor=colour if entry["significant"] else "white",
                    markersize=4.5,
                    elinewidth=1.0,
                    capsize=0,
                )
                ax.text(
                    1.02,
                    y,
                    format_p(entry["p_holm"]) + ("*" if entry["significant"] else "") if drawable else "n/a",
                    transform=ax.get_yaxis_transform(),
                    ha="left",
                    va="center",
                    fontsize=style.font_size * SMALL,
                    color=colour,
                    fontweight="bold" if entry["significant"] else "normal",
                    clip_on=False,
                )
            ax.set_xlim(-reach, reach)
            ax.set_ylim(len(labels) - 0.5, -0.5)
            ax.set_yticks(range(len(labels)), labels if index % columns == 0 else [])
            ax.tick_params(axis="y", length=0)
            for boundary in range(1, len(labels)):
                ax.axhline(boundary - 0.5, color="#e6e6e6", linewidth=0.6, zorder=0)
            ax.set_title(backbone)
            ax.text(
                1.02,
                1.0,
                "p (Holm)",
                transform=ax.transAxes,
                ha="left",
                va="bottom",
                fontsize=style.font_size * SMALL,
            )
            ax.set_xlabel("ΔAUROC")
        handles = [
            Line2D([], [], color=colours[c], marker=MARKERS[i % len(MARKERS)], linestyle="", markersize=5)
            for i, c in enumerate(comparisons)
        ]
        names = [f"{b} \u2212 {a}" for a, b in comparisons]
        handles.append(Line2D([], [], color="#555555", marker="o", markerfacecolor="white", linestyle=""))
        names.append("not significant (Holm)")
        bottom_legend(figure, handles, names, columns)
        save(figure, path, style)
    return figure


# --- mask gallery


def _outline(ax: Axes, mask: np.ndarray, colour: str, linestyle: str = "-") -> None:
    """Trace a mask's boundary; padding closes regions that touch the image edge."""
    for contour in find_contours(np.pad(mask.astype(float), 1), 0.5):
        ax.plot(contour[:, 1] - 1, contour[:, 0] - 1, color=colour, linewidth=1.1, linestyle=linestyle)


def mask_gallery(
    samples: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    style: FigureSettings,
    columns: int = 4,
) -> Figure:
    """Images in grey with the tight, loose and (when given) ground-truth lung outlines; one legend.

    Each sample has ``image`` (uint8 H x W), ``tight`` and ``loose`` (bool H x W), ``title`` and optionally
    ``truth`` (bool H x W). Panels are square (``style.width`` inches), ``columns`` to a row.
    """
    if not samples:
        raise InputError("mask_gallery: no samples given; pass at least one image with its masks.")
    if columns < 1:
        raise ConfigError(f"mask_gallery: columns is {columns}; use 1 or more.")
    for number, sample in enumerate(samples):
        _check_sample(sample, number)
    has_truth = any(sample.get("truth") is not None for sample in samples)
    rows, n_columns = panel_grid(len(samples), columns)
    with style_context(style):
        figure = new_figure(style, n_columns * style.width, rows * style.width)
        axes = panels(figure, len(samples), rows, n_columns)
        for ax, sample in zip(axes, samples, strict=True):
            ax.imshow(sample["image"], cmap="gray", vmin=0, vmax=255, interpolation="bilinear")
            _outline(ax, sample["loose"], CONDITION_COLOURS["loose"])
            _outline(ax, sample["tight"], CONDITION_COLOURS["tight"])
            if sample.get("truth") is not None:
                _outline(ax, sample["truth"], TRUTH_COLOUR, linestyle="--")
            ax.set_title(str(sample["title"]))
            ax.set_axis_off()
        handles = [
            Line2D([], [], color=CONDITION_COLOURS["tight"], linewidth=1.5),
            Line2D([], [], color=CONDITION_COLOURS["loose"], linewidth=1.5),
        ]
        names = ["tight mask", "loose mask"]
        if has_truth:
            handles.append(Line2D([], [], color=TRUTH_COLOUR, linewidth=1.5, linestyle="--"))
            names.append("ground truth")
        bottom_legend(figure, handles, names, n_columns)
        save(figure, path, style)
    return figure


def _check_sample(sample: Mapping[str, Any], number: int) -> None:
    """Fail by sample when keys are missing or an image and its masks disagree in shape."""
    missing = [key for key in ("image", "tight", "loose", "title") if key not in sample]
    name = f"gallery sample {number} ({sample.get('title', 'untitled')!s})"
    if missing:
        raise InputError(f"{name} lacks key(s) {', '.join(missing)}.")
    image = np.asarray(sample["image"])
    if image.ndim != 2:
        raise InputError(f"{name}: image has shape {image.shape}; expected a 2-D grey image.")
    for key in ("tight", "loose", "truth"):
        mask = sample.get(key)
        if mask is not None and np.shape(mask) != image.shape:
            raise InputError(f"{name}: {key} mask has shape {np.shape(mask)}, image has {image.shape}.")


# --- training curves


def training_curves(
    histories: Mapping[str, pd.DataFrame], path: str | os.PathLike[str], style: FigureSettings
) -> Figure:
    """Validation macro AUROC and training loss by epoch, one line per mask condition.

    ``histories`` maps a condition to its history table (epoch, train_loss, val_macro_auroc, seconds).
    Two panels side by side, each ``style.width`` wide and ``0.8 * style.width`` tall.
    """
    if not histories:
        raise InputError("training_curves: no histories given; pass one table per mask condition.")
    conditions = ordered_conditions(list(histories), "training_curves histories")
    for condition in conditions:
        require(
            histories[condition], ["epoch", "train_loss", "val_macro_auroc"], f"history for {condition!r}"
        )
    with style_context(style):
        figure = new_figure(style, 2 * style.width, 0.8 * style.width)
        auroc_ax, loss_ax = panels(figure, 2, 1, 2)
        for condition in conditions:
            history = histories[condition].sort_values("epoch")
            line = {"color": CONDITION_COLOURS[condition], "linewidth": 1.3, "marker": "o", "markersize": 2.5}
            auroc_ax.plot(history["epoch"], history["val_macro_auroc"], label=condition, **line)
            loss_ax.plot(history["epoch"], history["train_loss"], **line)
        auroc_ax.set_ylabel("Validation macro AUROC")
        loss_ax.set_ylabel("Training loss")
        for ax in (auroc_ax, loss_ax):
            ax.set_xlabel("Epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
        figure.legend(loc="outside lower center", ncols=legend_columns(len(conditions), 2), frameon=False)
        save(figure, path, style)
    return figure
