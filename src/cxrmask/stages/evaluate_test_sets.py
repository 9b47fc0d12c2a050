"""Rule evaluate_test_sets: every cell's AUROC on every external test set, and its drop from the internal
test set."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import by_condition, load_cells
from cxrmask.comparisons import delong_rows
from cxrmask.config import CompareSettings, EvaluateSettings
from cxrmask.errors import InputError
from cxrmask.metrics import MACRO
from cxrmask.shift import SHIFT_COLUMNS, shift_table
from cxrmask.uncertainty import auroc_intervals
from cxrmask.vocabulary import DELONG_COLUMNS, NO_FINDING, TEST_SET_AUROC_COLUMNS

log = logging.getLogger(__name__)


MACRO_UNDEFINED = "undefined: no finding of the set has both classes"


def undefined_note(n_pos: int, n_neg: int) -> str:
    """Why a finding's AUROC cannot be computed on a set, '' when it can: it is undefined, never 0.5 or
    dropped."""
    if n_pos == 0 and n_neg == 0:
        return "undefined: the collection does not label this finding"
    if n_pos == 0:
        return "undefined: no positive image"
    if n_neg == 0:
        return "undefined: no negative image"
    return ""


def evaluate_test_sets(
    predictions: Sequence[str],
    external: Sequence[str],
    auroc: str,
    delong: str,
    shift: str,
    cells: Sequence[Mapping[str, Any]],
    test_sets: Sequence[str],
    labels: Sequence[str],
    settings: EvaluateSettings,
    compare: CompareSettings,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Write per test set the AUROC table (as ``auroc.csv``, plus ``test_set`` and ``note``), the paired
    DeLong tests between conditions (as ``delong.csv``, Holm within backbone and set) and the shift table
    (as ``shift.csv``, where ``auroc_shifted`` is the external set's AUROC and the drop is internal minus
    external; the macro AUROCs average the findings both sets can score).

    ``external`` holds one predictions file per test set and cell, sets in ``test_sets`` order, cells in
    ``cells`` order.
    """
    if len(external) != len(test_sets) * len(cells):
        raise InputError(
            f"{len(external)} external prediction files for {len(test_sets)} sets x {len(cells)} cells."
        )
    everything = [*labels, NO_FINDING]
    internal = by_condition(load_cells(predictions, cells))
    aurocs, tests, shifts = [], [], []
    for k, name in enumerate(test_sets):
        loaded = load_cells(external[k * len(cells) : (k + 1) * len(cells)], cells)
        for cell, frame in loaded:
            table = auroc_intervals(frame, everything, settings.alpha, settings.n_boot, seed).assign(**cell)
            table["note"] = [
                (MACRO_UNDEFINED if pd.isna(value) else "") if label == MACRO else undefined_note(p, n)
                for label, value, p, n in zip(
                    table["label"], table["auroc"], table["n_pos"], table["n_neg"], strict=True
                )
            ]
            aurocs.append(table.assign(test_set=name))
        tests.append(delong_rows(loaded, labels, compare.pairs, settings.alpha).assign(test_set=name))
        drops = shift_table(internal, by_condition(loaded), everything, settings.alpha, settings.n_boot, seed)
        shifts.append(drops.assign(test_set=name))
        macro = drops[(drops["kind"] == "drop") & (drops["label"] == MACRO)]
        log.info(
            "test set %s: macro AUROC drop from the internal test set\n%s",
            name,
            macro[["backbone", "condition", "estimate"]],
        )
    auroc_table = pd.concat(aurocs)[list(TEST_SET_AUROC_COLUMNS)]
    delong_table = pd.concat(tests)[["test_set", *DELONG_COLUMNS]]
    shift_rows = pd.concat(shifts)[["test_set", *SHIFT_COLUMNS]]
    undefined = auroc_table[auroc_table["note"] != ""].drop_duplicates(["test_set", "label"])
    for name, label, note in undefined[["test_set", "label", "note"]].itertuples(index=False):
        log.warning("test set %s: the AUROC of %s is %s", name, label, note)
    write_csv(auroc, auroc_table)
    write_csv(delong, delong_table)
    write_csv(shift, shift_rows)
    return auroc_table, delong_table, shift_rows
