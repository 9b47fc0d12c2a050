"""Rule compare_conditions: paired DeLong tests between mask conditions, Holm-corrected per backbone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import load_cells
from cxrmask.comparisons import delong_rows
from cxrmask.config import CompareSettings


def compare_conditions(
    predictions: Sequence[str],
    delong: str,
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: CompareSettings,
    alpha: float,
) -> pd.DataFrame:
    """Write the DeLong table for the configured condition pairs."""
    table = delong_rows(load_cells(predictions, cells), labels, settings.pairs, alpha)
    write_csv(delong, table)
    return table
