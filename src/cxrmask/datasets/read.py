"""An external test set's manifest from its settings: the one place that knows which adapter reads what."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cxrmask.config import ExternalSetSettings
from cxrmask.datasets import chexpert, mimic, padchest, plain, vindr

#: Each collection key's name as a reader knows it, for headings and logs.
COLLECTION_NAMES = {
    "padchest": padchest.COLLECTION,
    "chexpert": chexpert.COLLECTION,
    "mimic": mimic.COLLECTION,
    "vindr": vindr.COLLECTION,
    "csv": "plain-CSV",
}


def read_test_set(
    table: str,
    images: str,
    settings: ExternalSetSettings,
    labels: Sequence[str],
    metadata: str | None = None,
) -> pd.DataFrame:
    """The manifest (:mod:`cxrmask.datasets.manifest`) of ``table`` and its ``images`` folder, read by the
    adapter of ``settings.collection`` with that collection's options; ``metadata`` is MIMIC-CXR-JPG's
    image table (None: ``settings.metadata``)."""
    common = {"views": settings.views, "max_missing": settings.max_missing}
    where = (table, images, labels)
    if settings.collection == "padchest":
        return padchest.read(*where, physician_only=settings.physician_only, **common)
    if settings.collection == "chexpert":
        return chexpert.read(*where, uncertain=settings.uncertain, **common)
    if settings.collection == "mimic":
        metadata = metadata or settings.metadata
        return mimic.read(table, metadata, images, labels, uncertain=settings.uncertain, **common)
    if settings.collection == "vindr":
        return vindr.read(*where, min_readers=settings.min_readers, **common)
    return plain.read(*where, **common)
