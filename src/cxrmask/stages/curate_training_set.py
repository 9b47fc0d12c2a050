"""Rule curate_training_set: the study's subset from a collection in NIH's place (``training_set``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from cxrmask import nih
from cxrmask.atomic import write_csv, write_json
from cxrmask.config import TrainingSetSettings
from cxrmask.datasets.read import COLLECTION_NAMES, read_test_set
from cxrmask.datasets.training import training_subset

log = logging.getLogger(__name__)


def curate_training_set(
    table: str,
    images: str,
    metadata: str | None,
    subset: str,
    summary: str,
    settings: TrainingSetSettings,
    labels: Sequence[str],
    val_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Read the collection through its adapter, as an external test set is read, and split its patients into
    train, val and test; write the subset every later stage reads, and its counts, as curate_nih does."""
    manifest = read_test_set(table, images, settings, labels, metadata)
    frame = training_subset(
        manifest,
        labels,
        val_fraction=val_fraction,
        test_fraction=settings.test_fraction,
        seed=seed,
        where=table,
    )
    name = COLLECTION_NAMES[settings.collection]
    counts = {"collection": name, **nih.summarise(frame, labels)}
    log.info("curated %s subset: %s", name, counts)
    write_csv(subset, frame)
    write_json(summary, counts)
    return frame
