"""Rule plot_shift: AUROC lost on the shifted test set per label, condition and backbone."""

from __future__ import annotations

import pandas as pd

from cxrmask import study_figures
from cxrmask.config import FigureSettings


def plot_shift(shift: str, figure: str, style: FigureSettings) -> None:
    """One panel per backbone, a marker with its interval per condition, a row per label."""
    study_figures.shift_drops(pd.read_csv(shift), figure, style)
