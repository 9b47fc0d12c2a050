"""Rule dilate_masks: the loose condition, one shard's tight masks dilated."""

from __future__ import annotations

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.config import LooseSettings
from cxrmask.segment.apply import dilate_listed


def dilate_masks(
    tight: str, tight_table: str, truth: str | None, masks: str, table: str, settings: LooseSettings
) -> pd.DataFrame:
    """Dilate every tight mask of a shard by the configured radius; with ``truth``, the lung it covers."""
    qc = dilate_listed(pd.read_csv(tight_table)["image"], tight, masks, settings, truth)
    write_csv(table, qc)
    return qc
