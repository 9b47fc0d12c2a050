"""One look for every figure of a run: colours, markers, fonts, panels, legends, saving, input checks.

Both figure modules (:mod:`cxrmask.figures`, :mod:`cxrmask.study_figures`)
draw with these, so a condition has one colour and a figure one font
everywhere. Fonts and sizes come from :class:`FigureSettings` through a
temporary ``rc_context`` (:func:`style_context`), which covers ticks that
matplotlib creates lazily while saving; it changes process-wide settings for
its duration, so draw one figure at a time per process. :func:`save` writes
byte-identical files between runs: dates are left out of PDF and SVG
metadata and SVG ids use a fixed salt.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from cxrmask.atomic import atomic_path
from cxrmask.config import FigureSettings
from cxrmask.errors import ConfigError, InputError
from cxrmask.vocabulary import CONDITIONS

logger = logging.getLogger(__name__)

CONDITION_COLOURS: dict[str, str] = dict(
    zip(CONDITIONS, ("#333333", "#0072B2", "#D55E00", "#56B4E9", "#E69F00"), strict=True)
)
"""Fixed colours (Okabe-Ito, colour-blind safe) so a condition looks the same in every figure; an extent
keeps its hue across mask sources (blue tight, orange loose), CheXmask's in the lighter shade."""

MISSING_COLOUR = "#eeeeee"
"""Background of heatmap cells with no result, so a gap reads as missing rather than as a low value."""

TRUTH_COLOUR = "#F0E442"
"""Ground-truth outline in galleries: yellow stands out on grey radiographs and from both mask colours."""

EXTRA_COLOURS = ("#CC79A7", "#009E73", "#000000", "#999999")
MARKERS = ("o", "s", "D", "^", "v", "P")
SMALL = 0.8
"""Annotation text (p-values, cell values, notes) relative to the style's font size."""


@contextmanager
def style_context(style: FigureSettings) -> Iterator[None]:
    """Apply the style's fonts while drawing and saving, and make saved files reproducible."""
    with mpl.rc_context(
        {
            "font.size": style.font_size,
            "axes.titlesize": "medium",
            "axes.labelsize": "medium",
            "xtick.labelsize": "small",
            "ytick.labelsize": "small",
            "legend.fontsize": "small",
            "legend.title_fontsize": "small",
            "figure.titlesize": "large",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "pdf.fonttype": 42,
            "svg.hashsalt": "cxrmask",
            "image.cmap": style.cmap,
        }
    ):
        yield


def new_figure(style: FigureSettings, width: float, height: float) -> Figure:
    """A figure of exactly ``width`` x ``height`` inches; constrained layout keeps labels from overlapping."""
    return Figure(figsize=(width, height), dpi=style.dpi, layout="constrained")


def save(figure: Figure, path: str | os.PathLike[str], style: FigureSettings) -> Path:
    """Write ``figure`` atomically in the style's format, with date-free metadata."""
    path = Path(path)
    if path.suffix.lower() != f".{style.format}":
        raise ConfigError(
            f"{path}: figures.format is {style.format!r} but the file name ends in "
            f"{path.suffix or 'nothing'!r}; "
            "make the output's suffix follow figures.format."
        )
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(style.format)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=style.format, dpi=style.dpi, metadata=metadata)
    logger.info("wrote %s", path)
    return path


def panel_grid(n: int, max_columns: int) -> tuple[int, int]:
    """Rows and columns for ``n`` panels, filling rows first."""
    columns = max(1, min(n, max_columns))
    return math.ceil(n / columns), columns


def panels(figure: Figure, n: int, rows: int, columns: int) -> list[Axes]:
    """``n`` axes in a ``rows`` x ``columns`` grid; unused cells are removed."""
    axes = figure.subplots(rows, columns, squeeze=False).ravel().tolist()
    for spare in axes[n:]:
        spare.remove()
    return axes[:n]


def bottom_legend(figure: Figure, handles: list, names: list[str], columns: int) -> None:
    """One legend under all panels, in as many columns as the panels' grid allows."""
    figure.legend(
        handles,
        names,
        loc="outside lower center",
        ncols=legend_columns(len(handles), columns),
        frameon=False,
    )


def legend_columns(entries: int, panel_columns: int) -> int:
    """Legend entries per row: about two per panel width, so a figure-wide legend never runs off the page."""
    return max(1, min(entries, 2 * panel_columns))


def require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Fail by name when a table lacks columns the figure needs, before anything is drawn."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}.")
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {', '.join(missing)} (it has {', '.join(map(str, frame.columns))}); "
            "re-run the step that writes it."
        )
    if frame.empty:
        raise InputError(f"{what} has no rows; re-run the step that writes it.")


def refuse_duplicates(frame: pd.DataFrame, keys: Sequence[str], what: str) -> None:
    """A repeated key row would be averaged or dropped silently (a result counted twice), so it fails."""
    duplicated = frame[frame.duplicated(list(keys))]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise InputError(
            f"{what} has more than one row for {', '.join(f'{key}={first[key]}' for key in keys)}; "
            f"expected one row per {', '.join(keys)}."
        )


def ordered_conditions(names: Sequence[str], what: str) -> list[str]:
    """Known conditions in canonical order; anything else is an error rather than an unstyled extra."""
    unknown = sorted(set(names) - set(CONDITIONS))
    if unknown:
        raise InputError(
            f"{what}: unknown mask condition(s) {', '.join(unknown)}; expected {', '.join(CONDITIONS)}."
        )
    return [condition for condition in CONDITIONS if condition in set(names)]


def condition_tick(condition: str) -> str:
    """A condition's name as an axis tick: its source on a line above its extent, so five conditions fit
    under a heatmap panel (``chexmask-tight`` reads "chexmask" over "tight")."""
    return condition.replace("-", "\n")


def unique(values: pd.Series) -> list[Any]:
    """Distinct values in order of first appearance: the order the writing stage chose."""
    return list(dict.fromkeys(values.tolist()))


def format_p(p: float) -> str:
    """p-values as papers print them: three decimals, and a floor instead of 0.000."""
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def as_bool(value: Any, what: str) -> bool:
    """Accept true booleans and their CSV spellings; anything else would silently flip a result."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise InputError(f"{what}: 'significant' holds {value!r}; expected True or False.")


def text_colour(style: FigureSettings, norm: Normalize, value: float) -> str:
    """Black on light cells, white on dark ones, judged by the cell colour's luminance."""
    red, green, blue, _ = mpl.colormaps[style.cmap](norm(value))
    return "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.5 else "white"


# --- ROC curves


def binary_truth(frame: pd.DataFrame, column: str, what: str) -> np.ndarray:
    """The 0/1 truth column as integers; NaN or other codes would make a wrong curve, so they fail."""
    truth = frame[column].to_numpy()
    if pd.isna(truth).any() or not np.isin(truth, (0, 1)).all():
        raise InputError(f"{what}: column {column!r} must hold only 0 and 1.")
    return truth.astype(int)
