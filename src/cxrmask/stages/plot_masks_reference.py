"""Rule plot_masks_reference: tight-mask Dice with the reference by finding, and the QC score against it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask import study_figures
from cxrmask.config import FigureSettings


def plot_masks_reference(
    table: str,
    subset: str,
    tables: Sequence[str],
    qc: str,
    labels: Sequence[str],
    figure: str,
    style: FigureSettings,
) -> None:
    """The figure of :func:`cxrmask.study_figures.masks_vs_reference` from the comparison's tables."""
    scored = pd.read_csv(table)
    curated = pd.read_csv(subset)[["image", *labels]]
    check = json.loads(Path(qc).read_text())
    shards = (
        pd.concat([pd.read_csv(path) for path in tables], ignore_index=True) if check["available"] else None
    )
    study_figures.masks_vs_reference(scored, curated, shards, check["bad_dice"], figure, style)
