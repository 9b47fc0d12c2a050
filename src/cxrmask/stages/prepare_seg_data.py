"""Rule prepare_seg_data: the fine-tuning pairs decoded at the segmenter's sizes, split, and the box prior."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.config import SegmenterSettings
from cxrmask.segment.dataset import prepare
from cxrmask.segment.models import spec_sizes
from cxrmask.segment.pairs import find_pairs
from cxrmask.segment.prompts import BoxPrior

log = logging.getLogger(__name__)


def prepare_seg_data(
    root: str,
    data: str,
    prior: str,
    pairs: str,
    image_pattern: str,
    mask_patterns: Sequence[str],
    val_fraction: float,
    box_margin: float,
    segmenter: SegmenterSettings,
    seed: int,
    on_bad: str,
) -> None:
    """Pair images with masks under ``root``, decode and split them, and learn the lung-box prior."""
    found = find_pairs(root, image_pattern, mask_patterns)
    input_size, mask_size = spec_sizes(segmenter.spec)
    seg = prepare(found, input_size, mask_size, val_fraction, seed, on_bad)
    box_prior = BoxPrior.fit(list(seg.subset("train").masks), box_margin)
    seg.save(data)
    box_prior.save(prior)
    by_key = {pair.key: pair for pair in found}
    table = pd.DataFrame(
        {
            "key": seg.keys,
            "image": [str(by_key[k].image) for k in seg.keys],
            "masks": [";".join(map(str, by_key[k].masks)) for k in seg.keys],
            "split": seg.split,
        }
    )
    write_csv(pairs, table)
    log.info(
        "%d pairs (%d val); box prior %s", len(table), int((table["split"] == "val").sum()), box_prior.whole
    )
