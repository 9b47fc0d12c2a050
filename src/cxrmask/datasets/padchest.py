"""PadChest (Bustos et al., Medical Image Analysis 2020): its label table as released.

``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` has one row per
image; ``Labels`` is a Python-literal list of Spanish-report labels in
English, with stray spaces (``' pneumonia'``) that are stripped before the
map is read. 39,053 rows were labelled by physicians and the rest by a
model trained on them (``MethodLabel``), so ``physician_only`` keeps the
first. An image is kept when it carries a study finding or is normal and
nothing else: an image with other findings only is neither positive nor a
clean negative, as in NIH's curation.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.datasets import labelmaps
from cxrmask.datasets.manifest import attach_paths, find_images, finish, require_columns, unknown_label_error
from cxrmask.errors import InputError
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

COLLECTION = "PadChest"
COLUMNS = ("ImageID", "ImageDir", "PatientID", "Projection", "MethodLabel", "Labels")
PHYSICIAN = "Physician"
KNOWN = (
    labelmaps.PADCHEST_OTHER
    | labelmaps.PADCHEST_EXCLUDE
    | labelmaps.PADCHEST_IGNORED
    | {labelmaps.PADCHEST_NORMAL}
    | frozenset().union(*labelmaps.PADCHEST_FINDINGS.values())
)


def parse_labels(text: object, row: str) -> frozenset[str]:
    """One ``Labels`` cell as a set of stripped strings; a blank cell is no labels at all."""
    if not isinstance(text, str):
        return frozenset()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise InputError(
            f"PadChest image {row}: Labels {text[:60]!r} is not a list of strings ({exc})."
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
        raise InputError(f"PadChest image {row}: Labels {text[:60]!r} is not a list of strings.")
    return frozenset(s.strip() for s in parsed) - labelmaps.PADCHEST_IGNORED


def read(
    table: str | Path,
    images: str | Path,
    labels: Sequence[str],
    *,
    views: Sequence[str],
    physician_only: bool,
    max_missing: float,
) -> pd.DataFrame:
    """The manifest of a PadChest table and its image folder (the release's numbered folders, or flat)."""
    frame = pd.read_csv(table, usecols=lambda c: c in COLUMNS, dtype={"ImageID": str, "PatientID": str})
    require_columns(frame, COLUMNS, COLLECTION, table)
    sets = pd.Series([parse_labels(t, i) for t, i in zip(frame["Labels"], frame["ImageID"], strict=True)])
    unknown = frozenset().union(*sets) - KNOWN
    if unknown:
        raise unknown_label_error(sorted(unknown), COLLECTION, table)
    keep = frame["Projection"].isin(list(views)).to_numpy(copy=True)
    if physician_only:
        keep &= (frame["MethodLabel"] == PHYSICIAN).to_numpy()
    unlabelled = (sets.map(len) == 0).to_numpy()
    excluded = sets.map(lambda s: bool(s & labelmaps.PADCHEST_EXCLUDE)).to_numpy()
    frame, sets = frame[keep & ~unlabelled & ~excluded], sets[keep & ~unlabelled & ~excluded]
    out = pd.DataFrame(
        {
            "image": frame["ImageID"].to_numpy(),
            "patient_id": ("padchest:" + frame["PatientID"]).to_numpy(),
            "view": frame["Projection"].to_numpy(),
        }
    )
    for label in labels:
        strings = labelmaps.PADCHEST_FINDINGS.get(label)
        if strings is not None:
            out[label] = [float(bool(s & strings)) for s in sets]
    out[NO_FINDING] = [float(s == {labelmaps.PADCHEST_NORMAL}) for s in sets]
    known = [label for label in labels if label in labelmaps.PADCHEST_FINDINGS]
    positive = out[known].eq(1).any(axis=1) if known else pd.Series(False, index=out.index)
    kept = positive | out[NO_FINDING].eq(1)
    log.info(
        "%s: %d rows of views %s%s; %d unlabelled and %d marked exclude or suboptimal left out; "
        "%d with a study finding, %d normal, %d with other findings only (left out)",
        table,
        int(keep.sum()),
        list(views),
        ", physicians' labels only" if physician_only else "",
        int((keep & unlabelled).sum()),
        int((keep & excluded & ~unlabelled).sum()),
        int(positive.sum()),
        int(out[NO_FINDING].eq(1).sum()),
        int((~kept).sum()),
    )
    out, dirs = out[kept.to_numpy()], frame["ImageDir"].astype(str).to_numpy()[kept.to_numpy()]
    found = find_images(images)
    # The release unpacks into folders named by ImageDir; a flat folder holds the same file names.
    keys = pd.Series(
        [
            f"{d}/{name}" if f"{d}/{name}" in found else name
            for d, name in zip(dirs, out["image"], strict=True)
        ]
    )
    return finish(
        attach_paths(out.reset_index(drop=True), keys, found, max_missing, str(table)), labels, str(table)
    )
