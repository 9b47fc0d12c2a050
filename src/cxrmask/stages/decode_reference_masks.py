"""Rule decode_reference_masks: one shard's tight masks cut from CheXmask's lungs instead of the segmenter's,
the mask source as a factor of the study (conditions chexmask-tight and, dilated, chexmask-loose)."""

from __future__ import annotations

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.chexmask import read_chexmask
from cxrmask.segment.reference import reference_masks


def decode_reference_masks(
    tight: str, tight_table: str, reference: str, masks: str, table: str, min_rca: float
) -> pd.DataFrame:
    """Write the reference lungs (a CheXmask CSV) of the shard's images, listed by the segmenter's shard
    table ``tight_table``, into ``masks``, at the size of the segmenter's masks in ``tight``; the shard's
    table says which images kept the segmenter's mask for want of reference lungs."""
    names = pd.read_csv(tight_table)["image"].tolist()
    rows = read_chexmask(reference, images=names)
    written = reference_masks(names, tight, rows, min_rca, masks)
    write_csv(table, written)
    return written
