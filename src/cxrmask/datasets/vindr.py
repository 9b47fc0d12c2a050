"""VinDr-CXR (Nguyen et al., Scientific Data 2022): its local-label table as released.

``train.csv`` has one row per radiologist per finding (``image_id``,
``class_name``, ``rad_id`` and the finding's box); each training image was
read by three radiologists. A finding is positive when at least
``min_readers`` of an image's readers name it (two: the majority), and the
image is No Finding when every reader found nothing. An image with a
finding named by fewer readers is neither, and is left out, as are images
with other findings only. VinDr-CXR's images are posteroanterior and carry
no patient id, so each image is its own patient and its view is PA.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.datasets import labelmaps
from cxrmask.datasets.manifest import attach_paths, find_images, finish, require_columns, unknown_label_error
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

COLLECTION = "VinDr-CXR"
COLUMNS = ("image_id", "class_name", "rad_id")
VIEW = "PA"
KNOWN = (
    labelmaps.VINDR_OTHER
    | {labelmaps.VINDR_NO_FINDING}
    | frozenset().union(*labelmaps.VINDR_FINDINGS.values())
)


def read(
    table: str | Path,
    images: str | Path,
    labels: Sequence[str],
    *,
    views: Sequence[str],
    min_readers: int,
    max_missing: float,
) -> pd.DataFrame:
    """The manifest of a VinDr-CXR table and its folder of images named by ``image_id``."""
    frame = pd.read_csv(table, usecols=lambda c: c in COLUMNS, dtype=str)
    require_columns(frame, COLUMNS, COLLECTION, table)
    unknown = sorted(set(frame["class_name"].dropna()) - KNOWN)
    if unknown:
        raise unknown_label_error(unknown, COLLECTION, table)
    # Readers per image and class: a reader who marks one finding twice (two boxes) counts once.
    readers = (
        frame.drop_duplicates().groupby(["image_id", "class_name"])["rad_id"].nunique().unstack(fill_value=0)
    )
    total = frame.groupby("image_id")["rad_id"].nunique().reindex(readers.index)
    out = pd.DataFrame({"image": readers.index, "patient_id": "vindr:" + readers.index, "view": VIEW})
    for label in labels:
        classes = labelmaps.VINDR_FINDINGS.get(label)
        if classes is not None:
            named = readers.reindex(columns=sorted(classes), fill_value=0).max(axis=1)
            out[label] = (named >= min_readers).astype(float).to_numpy()
    nothing = readers.get(labelmaps.VINDR_NO_FINDING, pd.Series(0, index=readers.index))
    out[NO_FINDING] = (nothing == total).astype(float).to_numpy()
    known = [label for label in labels if label in labelmaps.VINDR_FINDINGS]
    positive = out[known].eq(1).any(axis=1) if known else pd.Series(False, index=out.index)
    kept = (positive | out[NO_FINDING].eq(1)) & out["view"].isin(list(views))
    log.info(
        "%s: %d images; %d with a finding named by >= %d readers, %d that every reader found clear, "
        "%d else (left out)",
        table,
        len(out),
        int(positive.sum()),
        min_readers,
        int(out[NO_FINDING].eq(1).sum()),
        int((~kept).sum()),
    )
    out = out[kept].reset_index(drop=True)
    return finish(
        attach_paths(out, out["image"], find_images(images), max_missing, str(table)), labels, str(table)
    )
