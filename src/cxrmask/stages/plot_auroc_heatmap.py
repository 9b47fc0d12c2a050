"""Rule plot_auroc_heatmap: AUROC per backbone x condition, a panel per label."""

from __future__ import annotations

import pandas as pd

from cxrmask import figures
from cxrmask.config import FigureSettings


def plot_auroc_heatmap(auroc: str, figure: str, style: FigureSettings) -> None:
    """Draw the heatmap from the AUROC table."""
    figures.auroc_heatmap(pd.read_csv(auroc), figure, style)
