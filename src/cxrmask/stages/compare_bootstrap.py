"""Rule compare_bootstrap: paired patient-bootstrap contrasts between cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.cells import by_condition, load_cells
from cxrmask.config import EvaluateSettings
from cxrmask.uncertainty import condition_contrasts
from cxrmask.vocabulary import NO_FINDING, STUDY_CONDITIONS


def compare_bootstrap(
    predictions: Sequence[str],
    contrasts: str,
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: EvaluateSettings,
    pairs: Sequence[Sequence[str]],
    seed: int,
) -> pd.DataFrame:
    """Each cell, each condition difference, each backbone interaction and each cell of the study's own
    conditions against the best of them (the paper's *best* claim is about its grid; a CheXmask condition
    is judged against its segmenter twin instead).

    Scores are averaged over seeds per backbone x condition first, as for the DeLong tests.
    """
    frames = by_condition(load_cells(predictions, cells))
    table = condition_contrasts(
        frames, [*labels, NO_FINDING], pairs, settings.alpha, settings.n_boot, seed, STUDY_CONDITIONS
    )
    write_csv(contrasts, table)
    return table
