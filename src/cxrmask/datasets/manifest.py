"""The manifest every collection is read into, and the checks that make it one.

One row per image: a unique ``image`` id, its ``path``, its ``patient_id``
(namespaced by collection, so two collections' ids never meet by accident),
its ``view`` in the collection's own spelling, and per finding 1, 0 or
unknown (NaN), plus No Finding. Unknown is not negative: a finding a
collection cannot express, or an uncertain label kept uncertain, is left out
of that finding's AUROC.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrmask.errors import InputError
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)

ID_COLUMNS: tuple[str, ...] = ("image", "path", "patient_id", "view")
"""The manifest's columns before the findings."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files a collection's folder is searched for (PadChest ships PNG, CheXpert and MIMIC JPEG)."""

NAMED = 5
"""How many examples an error or a log line names."""


def mask_name(image: str) -> str:
    """The flat PNG file name of an image's lung masks: collections' ids can be paths (CheXpert's
    ``patient1/study1/view1_frontal.jpg``), masks live in one folder per condition. An NIH id is its own
    mask name."""
    return str(Path(image.replace("/", "__")).with_suffix(".png"))


def columns(labels: Sequence[str]) -> list[str]:
    """The manifest's columns for the study's ``labels``."""
    return [*ID_COLUMNS, *labels, NO_FINDING]


def unknown_label_error(strings: Sequence[str], collection: str, table: str | Path) -> InputError:
    """The error for label strings no map knows: name them, the table and the map to edit."""
    shown = ", ".join(repr(s) for s in sorted(strings)[:NAMED])
    return InputError(
        f"{table}: {len(strings)} label strings of {collection} are in no label map ({shown}). "
        f"If the table is {collection}'s, add each string to a finding or to the known others in "
        f"cxrmask/datasets/labelmaps.py; otherwise set test_sets.<name>.collection to the table's collection."
    )


def require_columns(frame: pd.DataFrame, needed: Sequence[str], collection: str, table: str | Path) -> None:
    """Refuse a table without ``needed`` columns: it is not ``collection``'s, whatever its name says."""
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"{table}: no column {missing} ({len(frame.columns)} columns, e.g. {list(frame.columns)[:6]}); "
            f"this is not {collection}'s label table. Point test_sets.<name>.table at that table, "
            "or set the collection the table is from."
        )


def find_images(folder: str | Path) -> dict[str, str]:
    """Every image under ``folder`` (searched recursively) by its path relative to ``folder``, its file
    name and its stem: collections name images by one of the three. Where two images share a name, the
    first in a walk sorted by folder, then by name, keeps it.

    A release such as CheXpert's has a folder per study (about 250,000 of them), so the walk works on
    strings with ``os.walk``: pathlib's objects per file cost several times as much as the listing."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: image folder not found; set test_sets.<name>.images to the folder.")
    found: dict[str, str] = {}
    base = str(root)
    for directory, subfolders, files in os.walk(base):
        subfolders.sort()
        relative = os.path.relpath(directory, base)
        prefix = "" if relative == os.curdir else relative.replace(os.sep, "/") + "/"
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() not in IMAGE_SUFFIXES:
                continue
            path = os.path.join(directory, name)
            found.setdefault(prefix + name, path)
            found.setdefault(name, path)
            found.setdefault(stem, path)
    return found


def attach_paths(
    frame: pd.DataFrame, keys: pd.Series, images: Mapping[str, str], max_missing: float, where: str
) -> pd.DataFrame:
    """Give each row its file (``keys`` looked up in ``images``); rows without one are counted, named and
    left out, and past ``max_missing`` of the rows the run stops."""
    paths = keys.map(lambda key: str(images[key]) if key in images else None)
    missing = keys[paths.isna()]
    if len(frame) and len(missing):
        share = len(missing) / len(frame)
        named = ", ".join(missing.astype(str).head(NAMED))
        message = (
            f"{where}: {len(missing)} of {len(frame)} listed images are not in the folder (e.g. {named})"
        )
        if share > max_missing:
            raise InputError(
                f"{message}: {share:.1%} is past test_sets.<name>.max_missing ({max_missing:.1%}). "
                "Fetch the missing images, point images at the right folder, or raise max_missing."
            )
        log.warning("%s; they are left out", message)
    out = frame.assign(path=paths)
    return out[out["path"].notna()].reset_index(drop=True)


def finish(frame: pd.DataFrame, labels: Sequence[str], where: str) -> pd.DataFrame:
    """Check and order a collection's rows into the manifest: ids unique, findings in {1, 0, NaN}.

    A study label the collection's map lacks is all unknown, and said so once.
    """
    duplicated = frame["image"][frame["image"].duplicated()]
    if len(duplicated):
        raise InputError(
            f"{where}: {len(duplicated)} image ids appear twice (e.g. {duplicated.iloc[0]!r}); "
            "one row per image is needed. Remove the repeated rows."
        )
    names = frame["image"].map(mask_name)
    clashing = frame["image"][names.duplicated(keep=False)]
    if len(clashing):
        raise InputError(
            f"{where}: image ids {sorted(clashing)[:2]} would share one mask file; rename one of them."
        )
    for label in [*labels, NO_FINDING]:
        if label not in frame.columns:
            log.warning("%s: the collection has no label for %s; it is unknown for every image", where, label)
            frame[label] = np.nan
        values = frame[label].astype(float)
        bad = values[values.notna() & ~values.isin([0.0, 1.0])]
        if len(bad):
            shown = str(bad.iloc[0])
            raise InputError(f"{where}: {label} holds {shown!r}; a finding is 1, 0 or blank (unknown).")
        frame[label] = values
    out = frame[columns(labels)].sort_values("image").reset_index(drop=True)
    out["patient_id"] = out["patient_id"].astype(str)
    return out


def summarise(manifest: pd.DataFrame, labels: Sequence[str]) -> dict:
    """Images, patients, and per finding the positives, negatives and unknowns, with the findings that
    have no positive (their AUROC is undefined on this set, not 0.5)."""
    per_label = {
        label: {
            "positive": int((manifest[label] == 1).sum()),
            "negative": int((manifest[label] == 0).sum()),
            "unknown": int(manifest[label].isna().sum()),
        }
        for label in [*labels, NO_FINDING]
    }
    return {
        "images": len(manifest),
        "patients": int(manifest["patient_id"].nunique()),
        "views": {str(k): int(v) for k, v in manifest["view"].value_counts().sort_index().items()},
        "labels": per_label,
        "undefined_auroc": [
            label for label, n in per_label.items() if n["positive"] == 0 or n["negative"] == 0
        ],
    }
