"""Rule plot_saliency: the share of Grad-CAM inside the lungs per label, condition and backbone."""

from __future__ import annotations

import pandas as pd

from cxrmask import study_figures
from cxrmask.config import FigureSettings


def plot_saliency(table: str, figure: str, style: FigureSettings) -> None:
    """One panel per backbone, a marker per condition, a row per label."""
    study_figures.saliency_fractions(pd.read_csv(table), figure, style)
