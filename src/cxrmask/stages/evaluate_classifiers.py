"""Rule evaluate_classifiers: AUROC with intervals per cell, and each cell's training time."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import load_cells
from cxrmask.config import EvaluateSettings
from cxrmask.uncertainty import auroc_intervals
from cxrmask.vocabulary import AUROC_COLUMNS, NO_FINDING


def auroc_table(
    predictions: Sequence[str],
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: EvaluateSettings,
    seed: int,
) -> pd.DataFrame:
    """Per-label AUROC with DeLong intervals and macro AUROC with a patient-bootstrap interval per cell."""
    frames = [
        auroc_intervals(frame, [*labels, NO_FINDING], settings.alpha, settings.n_boot, seed).assign(**cell)
        for cell, frame in load_cells(predictions, cells)
    ]
    return pd.concat(frames)[list(AUROC_COLUMNS)]


def evaluate_classifiers(
    predictions: Sequence[str],
    summaries: Sequence[str],
    auroc: str,
    training: str,
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: EvaluateSettings,
    seed: int,
) -> None:
    """Write the AUROC table and the training table (time and convergence per cell)."""
    write_csv(auroc, auroc_table(predictions, cells, labels, settings, seed))
    write_csv(training, pd.DataFrame([json.loads(Path(p).read_text()) for p in summaries]))
