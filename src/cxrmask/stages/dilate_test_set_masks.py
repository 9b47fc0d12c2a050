"""Rule dilate_test_set_masks: the loose condition on one external test set, its tight masks dilated."""

from __future__ import annotations

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.config import LooseSettings
from cxrmask.segment.apply import dilate_listed


def dilate_test_set_masks(
    tight: str, tight_table: str, masks: str, table: str, settings: LooseSettings
) -> pd.DataFrame:
    """Dilate every tight mask of the set by the radius NIH's loose masks get (scaled to each image)."""
    qc = dilate_listed(pd.read_csv(tight_table)["image"], tight, masks, settings)
    write_csv(table, qc)
    return qc
