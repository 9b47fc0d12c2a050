"""Paired DeLong tests between mask conditions: the internal test set's table and each external set's."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxrmask.cells import seed_averaged
from cxrmask.errors import InputError
from cxrmask.stats import delong_test, holm
from cxrmask.vocabulary import DELONG_COLUMNS, NO_FINDING, STUDY_CONDITIONS

log = logging.getLogger(__name__)


def delong_rows(
    loaded: list[tuple[dict, pd.DataFrame]],
    labels: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    alpha: float,
) -> pd.DataFrame:
    """One paired DeLong test per backbone, label and condition pair; Holm within each backbone and
    family: the pairs among the paper's three conditions are one family and any other pair (the mask
    source's) another, so adding CheXmask's conditions leaves the paper's comparisons as they were.

    With several seeds, each condition's scores are averaged over seeds first
    (a seed ensemble), so the test compares conditions, not seed noise. Images whose truth for a label is
    unknown (an external collection that cannot express it) are left out of that label's test.
    """
    rows = []
    for backbone in dict.fromkeys(c["backbone"] for c, _ in loaded):
        tested: list[dict] = []  # in the pairs' order
        families: dict[bool, list[dict]] = {True: [], False: []}
        for a, b in pairs:
            family = families[{a, b} <= set(STUDY_CONDITIONS)]
            frame_a, frame_b = seed_averaged(loaded, backbone, a), seed_averaged(loaded, backbone, b)
            if frame_a is None or frame_b is None:
                continue
            merged = frame_a.merge(frame_b, on="image", suffixes=("_a", "_b"), validate="one_to_one")
            for label in [*labels, NO_FINDING]:
                row = {"backbone": backbone, "label": label, "condition_a": a, "condition_b": b}
                known = merged[merged[f"true_{label}_a"].isin([0, 1])]  # an unknown truth is in neither class
                try:
                    result = delong_test(
                        known[f"true_{label}_a"].astype(int),
                        known[f"score_{label}_a"],
                        known[f"score_{label}_b"],
                        alpha=alpha,
                    )
                    row.update(result.as_dict())
                except InputError as exc:
                    log.warning("%s %s %s vs %s: %s", backbone, label, a, b, exc)
                    row.update(p_value=np.nan, auc_a=np.nan, auc_b=np.nan, delta=np.nan, z=np.nan)
                family.append(row)
                tested.append(row)
        for family in families.values():
            adjusted = holm([row["p_value"] for row in family]) if family else []
            for row, p in zip(family, adjusted, strict=True):
                row["p_holm"] = float(p)
                row["significant"] = bool(p < alpha)
        rows.extend(tested)
    return pd.DataFrame(rows).reindex(columns=list(DELONG_COLUMNS))
