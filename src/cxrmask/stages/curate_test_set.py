"""Rule curate_test_set: one external test set's manifest, read from its collection's own table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from cxrmask.atomic import write_csv, write_json
from cxrmask.config import ExternalSetSettings
from cxrmask.datasets.manifest import NAMED, summarise
from cxrmask.datasets.read import read_test_set
from cxrmask.errors import InputError

log = logging.getLogger(__name__)


def curate_test_set(
    table: str,
    images: str,
    metadata: str | None,
    manifest: str,
    summary: str,
    settings: ExternalSetSettings,
    labels: Sequence[str],
    test_set: str,
    training: str | None = None,
) -> pd.DataFrame:
    """Write the set's manifest (split: its name) and its counts; warn for each finding without
    positives or negatives, whose AUROC this set cannot define. ``metadata`` is MIMIC-CXR-JPG's image
    table (None for the other collections); ``training`` is the training_set's subset, whose patients
    the set may not share (None for NIH, whose ids are not comparable with another collection's)."""
    frame = read_test_set(table, images, settings, labels, metadata).assign(split=test_set)
    if training is not None:
        trained = set(pd.read_csv(training, dtype={"patient_id": str})["patient_id"])
        shared = sorted(set(frame["patient_id"].astype(str)) & trained)
        if shared:
            raise InputError(
                f"test set {test_set}: {len(shared)} patients are also in the training_set "
                f"(e.g. {shared[:NAMED]}); an external set must be other patients. Remove them from "
                f"{table}, or test on another collection."
            )
    counts = {"test_set": test_set, "collection": settings.collection, **summarise(frame, labels)}
    for label in counts["undefined_auroc"]:
        log.warning("test set %s: %s has no positive or no negative; its AUROC is undefined", test_set, label)
    log.info("test set %s: %d images of %d patients", test_set, counts["images"], counts["patients"])
    write_csv(manifest, frame)
    write_json(summary, counts)
    return frame
