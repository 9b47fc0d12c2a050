"""A grid's cells and their predictions: loading them, and averaging a condition's seeds.

Evaluation, comparison and figures all read ``predictions.csv`` per cell
with the cell's identity beside it; they share these so they agree on what
"one condition of one backbone" means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxrmask.errors import InputError


def load_cells(
    paths: Sequence[str | Path], cells: Sequence[Mapping[str, Any]]
) -> list[tuple[dict, pd.DataFrame]]:
    """Each cell (backbone, mask, seed) with its predictions table, in the given order."""
    if len(paths) != len(cells):
        raise InputError(f"{len(paths)} prediction files for {len(cells)} cells.")
    return [(dict(cell), pd.read_csv(path)) for path, cell in zip(paths, cells, strict=True)]


def seed_averaged(
    cells: list[tuple[dict, pd.DataFrame]], backbone: str, condition: str
) -> pd.DataFrame | None:
    """Mean scores over seeds of one backbone x condition, aligned by image (None when not trained)."""
    frames = [f.set_index("image") for c, f in cells if c["backbone"] == backbone and c["mask"] == condition]
    if not frames:
        return None
    first = frames[0]
    scores = [c for c in first.columns if c.startswith("score_")]
    for frame in frames[1:]:
        if not frame.index.equals(first.index):
            raise InputError(f"{backbone}/{condition}: seeds were tested on different images.")
    mean = sum(frame[scores] for frame in frames) / len(frames)
    return pd.concat([first.drop(columns=scores), mean], axis=1).reset_index()


def by_condition(cells: list[tuple[dict, pd.DataFrame]]) -> dict[tuple[str, str], pd.DataFrame]:
    """(backbone, condition) -> its seed-averaged predictions, for every trained pair, in grid order."""
    keys = dict.fromkeys((cell["backbone"], cell["mask"]) for cell, _ in cells)
    return {key: seed_averaged(cells, *key) for key in keys}
