"""Rule evaluate_shift: each cell's AUROC on the test set against the shifted test set, and the drop."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import by_condition, load_cells
from cxrmask.config import EvaluateSettings
from cxrmask.errors import InputError
from cxrmask.shift import shift_table
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)


def evaluate_shift(
    predictions: Sequence[str],
    predictions_shifted: Sequence[str],
    shift: str,
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: EvaluateSettings,
    seed: int,
) -> pd.DataFrame:
    """The drop table (:func:`cxrmask.shift.shift_table`) over seed-averaged cells."""
    test, shifted = load_cells(predictions, cells), load_cells(predictions_shifted, cells)
    empty = [path for path, (_, frame) in zip(predictions_shifted, shifted, strict=True) if frame.empty]
    if empty:
        raise InputError(
            f"{empty[0]} has no predictions: the curated subset has no shifted test images. "
            "Check nih.shifted_list (or demo.shortcut_rate_test) and rerun curate_nih."
        )
    table = shift_table(
        by_condition(test),
        by_condition(shifted),
        [*labels, NO_FINDING],
        settings.alpha,
        settings.n_boot,
        seed,
    )
    write_csv(shift, table)
    drops = table[(table["kind"] == "drop") & (table["label"] == "macro")]
    log.info("macro AUROC drop on the shifted set:\n%s", drops[["backbone", "condition", "estimate"]])
    return table
