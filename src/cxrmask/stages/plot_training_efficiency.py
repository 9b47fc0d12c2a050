"""Rule plot_training_efficiency: time and epochs to the best validation AUROC per cell."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask import study_figures
from cxrmask.config import FigureSettings


def plot_training_efficiency(summaries: Sequence[str], figure: str, style: FigureSettings) -> None:
    """Bars per backbone and condition, dots per seed."""
    table = pd.DataFrame([json.loads(Path(p).read_text()) for p in summaries])
    study_figures.training_efficiency(table, figure, style)
