"""Rule saliency_table: the share of saliency inside the lungs per cell and label."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.saliency import summarise
from cxrmask.vocabulary import CELL_KEYS


def saliency_table(saliency: Sequence[str], table: str) -> pd.DataFrame:
    """Mean inside-lung share per cell and label, over all test images and over those with the label."""
    frames = []
    for path in saliency:
        per_image = pd.read_csv(path)
        cell = per_image.iloc[0][list(CELL_KEYS)].to_dict()
        frames.append(summarise(per_image).assign(**cell))
    out = pd.concat(frames, ignore_index=True)
    out = out[[*CELL_KEYS, *[c for c in out.columns if c not in CELL_KEYS]]]
    write_csv(table, out)
    return out
