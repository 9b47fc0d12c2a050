"""Rule plot_training_curves: validation AUROC and training loss per epoch, one backbone's conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask import figures
from cxrmask.config import FigureSettings


def plot_training_curves(
    histories: Sequence[str],
    figure: str,
    cells: Sequence[Mapping[str, Any]],
    architecture: str,
    style: FigureSettings,
) -> None:
    """One curve per condition (its first seed)."""
    frames = {}
    for path, cell in zip(histories, cells, strict=True):
        if cell["backbone"] == architecture and cell["mask"] not in frames:
            frames[cell["mask"]] = pd.read_csv(path)
    figures.training_curves(frames, figure, style)
