"""Rule generate_test_set_masks: tight lung masks for one external test set, by the study's segmenter."""

from __future__ import annotations

import logging

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.config import SegmenterSettings, SegmentSettings
from cxrmask.datasets.manifest import mask_name
from cxrmask.segment.apply import log_flagged, readable, segment_listed
from cxrmask.torchutil import set_threads

log = logging.getLogger(__name__)


def generate_test_set_masks(
    model: str,
    manifest: str,
    masks: str,
    table: str,
    segmenter: SegmenterSettings,
    settings: SegmentSettings,
    on_bad: str,
    device: str,
    test_set: str,
    threads: int,
) -> pd.DataFrame:
    """Segment every image of test set ``test_set`` with the fine-tuned segmenter that made NIH's masks,
    so a masked classifier meets the same kind of mask on every set; write the masks (named by
    :func:`~cxrmask.datasets.manifest.mask_name`) and their QC table, which also names each image."""
    set_threads(threads)
    frame = pd.read_csv(manifest).sort_values("image")
    names = frame["image"].map(mask_name)
    items = readable(list(zip(names, frame["path"], strict=True)), on_bad, threads)
    qc = segment_listed(model, items, masks, segmenter, settings, device)
    qc.insert(1, "source_image", qc["image"].map(dict(zip(names, frame["image"], strict=True))))
    write_csv(table, qc)
    log_flagged(qc, table)
    if len(qc):
        log.info(
            "test set %s: %d masks, %d QC-flagged, mean lung fraction %.3f",
            test_set,
            len(qc),
            int(qc["flag"].sum()),
            float(qc["lung_fraction"].mean()),
        )
    return qc
