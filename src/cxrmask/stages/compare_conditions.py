"""Rule compare_conditions: paired DeLong tests between mask conditions, Holm-corrected per backbone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import load_cells, seed_averaged
from cxrmask.config import CompareSettings
from cxrmask.errors import InputError
from cxrmask.stats import delong_test, holm
from cxrmask.vocabulary import DELONG_COLUMNS, NO_FINDING

log = logging.getLogger(__name__)


def delong_rows(
    loaded: list[tuple[dict, pd.DataFrame]],
    labels: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    alpha: float,
) -> pd.DataFrame:
    """One paired DeLong test per backbone, label and condition pair; Holm within each backbone.

    With several seeds, each condition's scores are averaged over seeds first
    (a seed ensemble), so the test compares conditions, not seed noise.
    """
    rows = []
    for backbone in dict.fromkeys(c["backbone"] for c, _ in loaded):
        family = []
        for a, b in pairs:
            frame_a, frame_b = seed_averaged(loaded, backbone, a), seed_averaged(loaded, backbone, b)
            if frame_a is None or frame_b is None:
                continue
            merged = frame_a.merge(frame_b, on="image", suffixes=("_a", "_b"), validate="one_to_one")
            for label in [*labels, NO_FINDING]:
                row = {"backbone": backbone, "label": label, "condition_a": a, "condition_b": b}
                try:
                    result = delong_test(
                        merged[f"true_{label}_a"],
                        merged[f"score_{label}_a"],
                        merged[f"score_{label}_b"],
                        alpha=alpha,
                    )
                    row.update(result.as_dict())
                except InputError as exc:
                    log.warning("%s %s %s vs %s: %s", backbone, label, a, b, exc)
                    row.update(p_value=np.nan, auc_a=np.nan, auc_b=np.nan, delta=np.nan, z=np.nan)
                family.append(row)
        adjusted = holm([row["p_value"] for row in family]) if family else []
        for row, p in zip(family, adjusted, strict=True):
            row["p_holm"] = float(p)
            row["significant"] = bool(p < alpha)
        rows.extend(family)
    return pd.DataFrame(rows).reindex(columns=list(DELONG_COLUMNS))


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
