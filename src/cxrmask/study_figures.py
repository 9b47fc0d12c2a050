"""Figures for the study's answers: No Finding score distributions, training efficiency, saliency.

They follow :mod:`cxrmask.figures`' conventions (one ``FigureSettings``, fixed
Okabe-Ito colours per condition, vector output when ``figures.format`` is pdf
or svg, byte-identical files) and draw with :mod:`cxrmask.figure_style`, so every figure of a run
looks alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from skimage.measure import find_contours

from cxrmask.config import FigureSettings
from cxrmask.errors import InputError
from cxrmask.figure_style import (
    CONDITION_COLOURS,
    MARKERS,
    TRUTH_COLOUR,
    bottom_legend,
    legend_columns,
    new_figure,
    ordered_conditions,
    panel_grid,
    panels,
    require,
    save,
    style_context,
    unique,
)
from cxrmask.vocabulary import NO_FINDING


def no_finding_distributions(
    predictions: Mapping[str, pd.DataFrame],
    path: str | os.PathLike[str],
    style: FigureSettings,
    title: str = "",
) -> Figure:
    """No Finding scores of normal and abnormal test images, one panel per mask condition.

    The paper's No Finding result is about how well the derived score
    separates normal from abnormal images; the two histograms (same bins in
    every panel, densities) show that separation directly. Panels are
    ``style.width`` wide and ``0.75 * style.width`` tall.
    """
    if not predictions:
        raise InputError("no_finding_distributions: no predictions given; pass one table per condition.")
    conditions = ordered_conditions(list(predictions), "No Finding predictions")
    columns = [f"true_{NO_FINDING}", f"score_{NO_FINDING}"]
    for condition in conditions:
        require(predictions[condition], columns, f"predictions for {condition!r}")
    scores = np.concatenate([predictions[c][columns[1]].to_numpy(float) for c in conditions])
    bins = np.linspace(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1, 21)
    with style_context(style):
        figure = new_figure(style, len(conditions) * style.width, 0.75 * style.width)
        axes = panels(figure, len(conditions), 1, len(conditions))
        for ax, condition in zip(axes, conditions, strict=True):
            frame = predictions[condition]
            normal = frame[columns[0]].to_numpy() == 1
            score = frame[columns[1]].to_numpy(float)
            colour = CONDITION_COLOURS[condition]
            ax.hist(score[normal], bins=bins, density=True, color=colour, alpha=0.55, label="No Finding")
            ax.hist(
                score[~normal],
                bins=bins,
                density=True,
                histtype="step",
                color=colour,
                linewidth=1.4,
                linestyle="--",
                label="abnormal",
            )
            ax.set_title(condition)
            ax.set_xlabel("No Finding score")
        axes[0].set_ylabel("Density")
        handles = [
            Line2D([], [], color="#555555", alpha=0.55, linewidth=6, label="No Finding images"),
            Line2D([], [], color="#555555", linestyle="--", label="abnormal images"),
        ]
        figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        if title:
            figure.suptitle(title)
        save(figure, path, style)
    return figure


def training_efficiency(
    training: pd.DataFrame, path: str | os.PathLike[str], style: FigureSettings
) -> Figure:
    """Time and epochs to the best validation macro AUROC per backbone and condition (the "trains faster"
    claim): bars are means over seeds, dots single seeds. Two panels, each ``style.width`` wide per
    backbone-group and ``0.8 * style.width`` tall."""
    require(training, ["backbone", "mask", "seed", "seconds_to_best", "best_epoch"], "training table")
    conditions = ordered_conditions(unique(training["mask"]), "training table")
    backbones = unique(training["backbone"])
    width = 0.8 / len(conditions)
    with style_context(style):
        figure = new_figure(style, 2 * max(style.width, 0.9 * len(backbones)), 0.8 * style.width)
        axes = panels(figure, 2, 1, 2)
        for ax, column, name in zip(
            axes, ["seconds_to_best", "best_epoch"], ["Seconds to best epoch", "Best epoch"], strict=True
        ):
            for j, condition in enumerate(conditions):
                for i, backbone in enumerate(backbones):
                    values = training.loc[
                        (training["backbone"] == backbone) & (training["mask"] == condition), column
                    ].astype(float)
                    if values.empty:
                        continue
                    x = i + (j - (len(conditions) - 1) / 2) * width
                    colour = CONDITION_COLOURS[condition]
                    ax.bar(
                        x,
                        values.mean(),
                        width=0.9 * width,
                        color=colour,
                        alpha=0.8,
                        label=condition if i == 0 else None,
                    )
                    ax.plot(np.full(len(values), x), values, "o", color="black", markersize=2.5)
            ax.set_xticks(range(len(backbones)), backbones, rotation=20, ha="right")
            ax.set_ylabel(name)
        axes[1].yaxis.get_major_locator().set_params(integer=True)
        figure.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside lower center",
            ncols=legend_columns(len(conditions), 2),
            frameon=False,
        )
        save(figure, path, style)
    return figure


def _label_panels(
    values: pd.DataFrame,
    conditions: list[str],
    path: str | os.PathLike[str],
    style: FigureSettings,
    xlabel: str,
    draw: Callable[..., None],
    decorate: Callable[..., None] | None = None,
    extra_legend: tuple[tuple[Line2D, str], ...] = (),
) -> Figure:
    """A panel per backbone (``style.width`` wide, three to a row), a row per label, one marker per condition.

    ``values`` is indexed by (backbone, condition, label), in the order to show them. ``draw(ax, row, y,
    step, marker)`` plots one entry at height ``y`` (``step`` is the spacing of conditions within a row;
    ``marker`` the condition's matplotlib marker keywords, legend label included); ``decorate(ax)`` adds
    to every panel; ``extra_legend`` joins the conditions in the legend.
    """
    backbones = list(dict.fromkeys(values.index.get_level_values(0)))
    labels = list(dict.fromkeys(values.index.get_level_values(2)))
    rows, columns = panel_grid(len(backbones), 3)
    step = 0.6 / len(conditions)
    with style_context(style):
        figure = new_figure(style, columns * style.width, rows * (0.22 * len(labels) + 1.4))
        axes = panels(figure, len(backbones), rows, columns)
        for index, (ax, backbone) in enumerate(zip(axes, backbones, strict=True)):
            if decorate is not None:
                decorate(ax)
            for j, condition in enumerate(conditions):
                marker = {
                    "marker": MARKERS[j % len(MARKERS)],
                    "linestyle": "none",
                    "color": CONDITION_COLOURS[condition],
                    "markersize": 4.5,
                }
                for i, label in enumerate(labels):
                    key = (backbone, condition, label)
                    if key in values.index:
                        y = i + (j - (len(conditions) - 1) / 2) * step
                        draw(ax, values.loc[key], y, step, {**marker, "label": condition if i == 0 else None})
            ax.set_ylim(len(labels) - 0.5, -0.5)
            ax.set_yticks(range(len(labels)), labels if index % columns == 0 else [])
            ax.set_xlabel(xlabel)
            ax.set_title(backbone)
        handles, names = axes[0].get_legend_handles_labels()
        for handle, name in extra_legend:
            handles.append(handle)
            names.append(name)
        bottom_legend(figure, handles, names, columns)
        save(figure, path, style)
    return figure


def saliency_fractions(table: pd.DataFrame, path: str | os.PathLike[str], style: FigureSettings) -> Figure:
    """Share of Grad-CAM mass inside the lungs per label, a marker per condition, a panel per backbone.

    ``table`` has backbone, mask, label, inside_fraction_present (the mean
    over the test images that have the label, averaged over seeds here: a
    label's Grad-CAM points at its evidence only where there is some) and
    lung_area; the dashed line is what saliency spread evenly over the image
    would give (the lungs' share of the image), so a point below it means the
    model looks outside the lungs more than at random.
    """
    measure = "inside_fraction_present"
    require(table, ["backbone", "mask", "label", measure, "lung_area"], "saliency table")
    conditions = ordered_conditions(unique(table["mask"]), "saliency table")
    mean = table.groupby(["backbone", "mask", "label"], sort=False)[[measure, "lung_area"]].mean()

    def draw(ax, row, y, step, marker) -> None:
        ax.plot(row[measure], y, **marker)
        ax.plot([row["lung_area"]] * 2, [y - step / 2, y + step / 2], color="#777777", ls="--", lw=0.8)

    lung_share = (Line2D([], [], color="#777777", linestyle="--"), "lung share of the image")
    return _label_panels(
        mean,
        conditions,
        path,
        style,
        "Saliency inside the lungs",
        draw,
        decorate=lambda ax: ax.set_xlim(0, 1.02),
        extra_legend=(lung_share,),
    )


def shift_drops(table: pd.DataFrame, path: str | os.PathLike[str], style: FigureSettings) -> Figure:
    """AUROC lost from the test set to the shifted test set, per label, a marker per condition, a panel
    per backbone.

    ``table`` is ``tables/shift.csv``; its ``drop`` rows are plotted with
    their intervals as horizontal bars. Right of the zero line a classifier
    did worse once the shortcut no longer went with the label.
    """
    require(table, ["kind", "backbone", "condition", "label", "estimate", "ci_low", "ci_high"], "shift table")
    drops = table[table["kind"] == "drop"]
    if drops.empty:
        raise InputError("the shift table has no drop rows: rerun evaluate_shift.")
    conditions = ordered_conditions(unique(drops["condition"]), "shift table")

    def draw(ax, row, y, step, marker) -> None:
        # a percentile interval of few resamples may lie to one side of the estimate: the bar then
        # stops at the estimate on that side instead of being refused as negative
        below = max(row["estimate"] - row["ci_low"], 0.0)
        above = max(row["ci_high"] - row["estimate"], 0.0)
        ax.errorbar(row["estimate"], y, xerr=[[below], [above]], elinewidth=1.0, **marker)

    return _label_panels(
        drops.set_index(["backbone", "condition", "label"]),
        conditions,
        path,
        style,
        "AUROC drop, test - shifted",
        draw,
        decorate=lambda ax: ax.axvline(0.0, color="#777777", linewidth=0.8),
    )


def saliency_overlays(
    examples: Mapping[str, Mapping[str, np.ndarray]],
    label: str,
    path: str | os.PathLike[str],
    style: FigureSettings,
    count: int = 4,
) -> Figure:
    """Grad-CAM of ``label`` over test images, a column per condition, lungs outlined in yellow.

    ``examples`` maps a condition to what :func:`cxrmask.saliency.cell_saliency`
    returns as its sample (images, lungs, maps, labels, names), the same test
    images in every condition. Each panel is ``style.width / 2`` inches square.
    """
    if not examples:
        raise InputError("saliency_overlays: no examples given; pass one sample per condition.")
    conditions = ordered_conditions(list(examples), "saliency examples")
    first = examples[conditions[0]]
    if label not in list(first["labels"]):
        raise InputError(f"saliency examples have no maps for {label!r}; they have {list(first['labels'])}.")
    k = list(first["labels"]).index(label)
    n = min(count, len(first["images"]))
    if n == 0:
        raise InputError("saliency examples hold no images; raise the number of examples kept.")
    side = style.width / 2
    with style_context(style):
        figure = new_figure(style, len(conditions) * side, n * side + 0.4)
        axes = np.array(figure.subplots(n, len(conditions), squeeze=False))
        for column, condition in enumerate(conditions):
            sample = examples[condition]
            for row in range(n):
                ax = axes[row, column]
                ax.imshow(sample["images"][row], cmap="gray", vmin=0, vmax=1)
                ax.imshow(sample["maps"][row, k], cmap="inferno", alpha=0.45, vmin=0, vmax=1)
                for contour in find_contours(sample["lungs"][row].astype(float), 0.5):
                    ax.plot(contour[:, 1], contour[:, 0], color=TRUTH_COLOUR, linewidth=0.8)
                ax.set_axis_off()
                if row == 0:
                    ax.set_title(condition)
        figure.suptitle(f"Grad-CAM for {label}")
        save(figure, path, style)
    return figure


def masks_vs_reference(
    scored: pd.DataFrame,
    labels: pd.DataFrame,
    qc: pd.DataFrame | None,
    bad_dice: float,
    path: str | os.PathLike[str],
    style: FigureSettings,
) -> Figure:
    """Left: each finding's tight-mask Dice with the reference on its positive images against its negative
    ones (a row a finding, dots the images). Right, where the masks carry a QC score: the score against the
    reference Dice, flagged masks marked, the line below which a mask counts as bad."""
    require(scored, ["image", "dice"], "mask-vs-reference table")
    findings = [c for c in labels.columns if c not in ("image", "patient_id")]
    table = scored.merge(labels, on="image", how="left", validate="one_to_one")
    with style_context(style):
        figure = new_figure(style, 2 * style.width if qc is not None else style.width, 0.9 * style.width)
        axes = panels(figure, 2 if qc is not None else 1, 1, 2 if qc is not None else 1)
        ax = axes[0]
        rng = np.random.default_rng(0)
        for row, finding in enumerate(findings):
            for side, offset, colour in ((1, -0.18, CONDITION_COLOURS["tight"]), (0, 0.18, "0.55")):
                values = table.loc[table[finding] == side, "dice"].to_numpy()
                if not len(values):
                    continue
                y = row + offset + rng.uniform(-0.07, 0.07, len(values))
                ax.plot(values, y, ".", color=colour, markersize=2.5, alpha=0.6)
                ax.plot(
                    [values.mean()] * 2, [row + offset - 0.15, row + offset + 0.15], color="black", lw=1.2
                )
        ax.set_yticks(range(len(findings)), findings)
        ax.invert_yaxis()
        ax.set_xlabel("Dice with the reference lungs")
        handles = [
            Line2D([], [], marker=".", ls="", color=CONDITION_COLOURS["tight"], label="with the finding"),
            Line2D([], [], marker=".", ls="", color="0.55", label="without"),
            Line2D([], [], color="black", label="mean"),
        ]
        if qc is not None:
            merged = scored.merge(qc[["image", "qc_score", "flag"]], on="image", how="inner")
            flagged = merged["flag"].astype(bool)
            axes[1].plot(merged.loc[~flagged, "dice"], merged.loc[~flagged, "qc_score"], ".", color="0.55")
            axes[1].plot(
                merged.loc[flagged, "dice"], merged.loc[flagged, "qc_score"], "x", color=TRUTH_COLOUR
            )
            axes[1].axvline(bad_dice, color="black", lw=0.8, ls="--")
            axes[1].set_xlabel("Dice with the reference lungs")
            axes[1].set_ylabel("QC score (no ground truth)")
            handles.append(Line2D([], [], marker="x", ls="", color=TRUTH_COLOUR, label="flagged by QC"))
        bottom_legend(figure, handles, [h.get_label() for h in handles], len(handles))
        save(figure, path, style)
    return figure
