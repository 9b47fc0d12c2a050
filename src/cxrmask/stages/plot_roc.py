"""Rule plot_roc: one backbone's ROC curves, a curve per mask condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cxrmask import figures
from cxrmask.cells import load_cells, seed_averaged
from cxrmask.config import FigureSettings
from cxrmask.vocabulary import CONDITIONS, NO_FINDING


def plot_roc(
    predictions: Sequence[str],
    figure: str,
    cells: Sequence[Mapping[str, Any]],
    architecture: str,
    labels: Sequence[str],
    style: FigureSettings,
) -> None:
    """ROC curves per label, seed-averaged scores per condition."""
    loaded = load_cells(predictions, cells)
    frames = {}
    for condition in CONDITIONS:
        frame = seed_averaged(loaded, architecture, condition)
        if frame is not None:
            frames[condition] = frame
    figures.roc_curves(frames, [*labels, NO_FINDING], figure, style, title=architecture)
