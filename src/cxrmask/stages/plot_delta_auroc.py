"""Rule plot_delta_auroc: ΔAUROC between conditions with Holm-corrected DeLong significance."""

from __future__ import annotations

import pandas as pd

from cxrmask import figures
from cxrmask.config import FigureSettings


def plot_delta_auroc(delong: str, figure: str, style: FigureSettings) -> None:
    """Draw the ΔAUROC figure from the DeLong table."""
    figures.delta_auroc(pd.read_csv(delong), figure, style)
