"""Rule plot_no_finding: No Finding score distributions of one backbone, a panel per condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cxrmask import study_figures
from cxrmask.cells import load_cells, seed_averaged
from cxrmask.config import FigureSettings


def plot_no_finding(
    predictions: Sequence[str],
    figure: str,
    cells: Sequence[Mapping[str, Any]],
    architecture: str,
    style: FigureSettings,
) -> None:
    """Seed-averaged No Finding scores of normal and abnormal test images per condition."""
    loaded = load_cells(predictions, cells)
    conditions = dict.fromkeys(cell["mask"] for cell, _ in loaded if cell["backbone"] == architecture)
    frames = {condition: seed_averaged(loaded, architecture, condition) for condition in conditions}
    study_figures.no_finding_distributions(frames, figure, style, title=architecture)
