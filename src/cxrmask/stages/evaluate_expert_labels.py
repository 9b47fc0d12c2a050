"""Rule evaluate_expert_labels: Mass and Nodule AUROC against Google's adjudicated labels beside NIH's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import load_cells
from cxrmask.config import EvaluateSettings
from cxrmask.expert import expert_aurocs, read_expert_labels


def evaluate_expert_labels(
    predictions: Sequence[str],
    expert: str,
    auroc: str,
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: EvaluateSettings,
) -> pd.DataFrame:
    """Write ``tables/auroc_expert.csv`` (:func:`cxrmask.expert.expert_aurocs`) for the internal test set."""
    table = expert_aurocs(load_cells(predictions, cells), read_expert_labels(expert), labels, settings.alpha)
    write_csv(auroc, table)
    return table
