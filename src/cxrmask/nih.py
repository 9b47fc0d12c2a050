"""NIH ChestX-ray14: the label table as shipped, and the study's curated subset.

The real ``Data_Entry_2017_v2020.csv`` has bracketed header names that contain
commas (``OriginalImage[Width,Height]``), so a naive reader sees eleven
mismatched column names; this module assigns canonical names by position
after checking the header really is NIH's. Curation keeps patients whole:
the official patient-wise test list is the test split, and validation is
carved from ``train_val_list.txt`` by patient, never by image.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrmask.errors import ConfigError, InputError
from cxrmask.vocabulary import NIH_LABELS, NO_FINDING

log = logging.getLogger(__name__)

HEADER_PREFIX = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position"
COLUMNS = (
    "image",
    "finding_labels",
    "follow_up",
    "patient_id",
    "age",
    "sex",
    "view",
    "width",
    "height",
    "spacing_x",
    "spacing_y",
)


def read_label_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``Data_Entry_2017*.csv`` (plain or gzipped) into canonical columns.

    Every label must belong to NIH's vocabulary: an unknown one means the file
    is not the table we think it is, and silently treating it as "no finding"
    would corrupt the negatives.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: NIH label table not found. "
            "Download it (rule download; by hand from NIH's Box folder) or fix nih.metadata_urls."
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as handle:
            first_line = handle.readline().strip()
        frame = pd.read_csv(path, header=None, skiprows=1, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, EOFError) as exc:
        raise InputError(f"{path}: cannot parse the NIH label table ({exc}). Download it again.") from exc
    if not first_line.startswith(HEADER_PREFIX):
        raise InputError(
            f"{path}: header {first_line[:80]!r} is not NIH's "
            f"(expected it to start with {HEADER_PREFIX[:40]!r}...)."
        )
    frame = frame.loc[:, (frame != "").any(axis=0)]
    if frame.shape[1] != len(COLUMNS):
        raise InputError(f"{path}: expected {len(COLUMNS)} fields per row, found {frame.shape[1]}.")
    frame.columns = list(COLUMNS)
    try:
        for column in ("follow_up", "patient_id", "width", "height"):
            frame[column] = frame[column].astype(int)
        for column in ("age", "spacing_x", "spacing_y"):
            frame[column] = frame[column].astype(float)
    except ValueError as exc:
        raise InputError(f"{path}: a numeric column holds text ({exc}).") from exc
    labels = frame["finding_labels"].str.split("|")
    known = set(NIH_LABELS) | {NO_FINDING}
    unknown = sorted({label for row in labels for label in row} - known)
    if unknown:
        raise InputError(f"{path}: unknown finding labels {unknown}; NIH's labels are {sorted(known)}.")
    frame["labels"] = labels.map(tuple)
    return frame


def read_split_list(path: str | os.PathLike[str]) -> list[str]:
    """Read ``train_val_list.txt`` or ``test_list.txt``: one image name per line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: split list not found. Download it (rule download; by hand from NIH's Box folder) "
            "or fix nih.metadata_urls."
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def check_labels(labels: Sequence[str]) -> None:
    """Reject a config label that NIH does not have, before any work starts."""
    unknown = [label for label in labels if label not in NIH_LABELS]
    if unknown or not labels:
        raise ConfigError(f"nih.labels: {unknown or 'empty'} not among NIH's findings {list(NIH_LABELS)}.")


def find_images(folders: Iterable[str | os.PathLike[str]]) -> dict[str, Path]:
    """Map image name to path for every PNG under ``folders`` (searched recursively).

    The NIH archives each extract to their own ``images/`` folder; a user who
    fetched only some archives gets a subset, and curation selects from what
    is present.
    """
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.png")):
            found.setdefault(path.name, path)
    return found


def _patient_split(patients: np.ndarray, fraction: float, seed: int) -> set[int]:
    """Choose ``fraction`` of ``patients`` for validation, reproducibly from ``seed``.

    A positive fraction gives at least one validation patient and never
    every patient: early stopping needs a validation set, training needs data.
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(np.unique(patients))
    n_val = round(fraction * len(shuffled))
    if fraction > 0 and len(shuffled) > 0:
        n_val = min(max(n_val, 1), len(shuffled) - 1)
    return {int(p) for p in shuffled[:n_val]}


def curate(
    table: pd.DataFrame,
    train_val: Sequence[str],
    test: Sequence[str],
    *,
    shifted: Sequence[str] = (),
    labels: Sequence[str],
    images: dict[str, Path] | None = None,
    no_finding: int | None = None,
    val_fraction: float,
    views: Sequence[str] | None = None,
    seed: int,
) -> pd.DataFrame:
    """Select the study's subset: images with any of ``labels``, plus No Finding images.

    Images whose only findings are outside ``labels`` are neither positive
    nor clean negatives, so they are left out (and counted in the log).
    ``no_finding`` caps the number of No Finding images (sampled by seed;
    ``None`` keeps all). ``images`` restricts the subset to files present.
    Returns one row per image: image, patient_id, split, view, path, and a
    0/1 column per label plus ``No Finding``. Images in ``shifted`` (a second
    test set under a distribution shift) get split ``shifted``; like test
    images, they are never trained on.
    """
    check_labels(labels)
    lists = {"train_val_list": set(train_val), "test_list": set(test), "nih.shifted_list": set(shifted)}
    frame = _present(_assign_splits(table, lists), views, images)
    subset = _select(frame, labels, no_finding, seed)
    val_patients = _patient_split(
        subset.loc[subset["split"] == "train", "patient_id"].to_numpy(), val_fraction, seed
    )
    is_val = (subset["split"] == "train") & subset["patient_id"].isin(val_patients)
    subset.loc[is_val, "split"] = "val"
    return _study_table(subset, labels, images)


def _assign_splits(table: pd.DataFrame, lists: dict[str, set[str]]) -> pd.DataFrame:
    """Each listed image's split (train, test, shifted); the lists and their patients must not overlap."""
    for (name_a, a), (name_b, b) in itertools.combinations(lists.items(), 2):
        if a & b:
            raise InputError(
                f"{len(a & b)} images are in both {name_a} and {name_b} (e.g. {sorted(a & b)[0]})."
            )
    frame = table.copy()
    split = pd.Series(pd.NA, index=frame.index, dtype="object")
    split[frame["image"].isin(lists["train_val_list"])] = "train"
    split[frame["image"].isin(lists["test_list"])] = "test"
    split[frame["image"].isin(lists["nih.shifted_list"])] = "shifted"
    frame["split"] = split
    unlisted = int(frame["split"].isna().sum())
    if unlisted:
        log.warning("%d images are in no split list; they are left out", unlisted)
    frame = frame[frame["split"].notna()]
    trained = set(frame.loc[frame["split"] == "train", "patient_id"])
    for held_out, source in (("test", "test list"), ("shifted", "nih.shifted_list")):
        crossing = sorted(trained & set(frame.loc[frame["split"] == held_out, "patient_id"]))
        if crossing:
            raise InputError(
                f"{len(crossing)} patients appear in both the train_val list and the {source} "
                f"(e.g. patient {int(crossing[0])}); held-out images must be patient-wise."
            )
    return frame


def _present(
    frame: pd.DataFrame, views: Sequence[str] | None, images: dict[str, Path] | None
) -> pd.DataFrame:
    """The images of the kept views that are on disk (all of them where ``images`` is None)."""
    if views:
        frame = frame[frame["view"].isin(list(views))]
    if images is not None:
        missing = int((~frame["image"].isin(images.keys())).sum())
        if missing:
            log.info("%d listed images are not present on disk and are left out", missing)
        frame = frame[frame["image"].isin(images.keys())]
    return frame


def _select(frame: pd.DataFrame, labels: Sequence[str], no_finding: int | None, seed: int) -> pd.DataFrame:
    """Images with a target finding, and No Finding images up to the cap; others left out (counted)."""
    wanted = set(labels)
    # astype(bool): on an empty frame map() gives an object Series, which [] would take for column names.
    positive = frame["labels"].map(lambda row: bool(wanted.intersection(row))).astype(bool)
    clean = frame["labels"].map(lambda row: row == (NO_FINDING,)).astype(bool)
    log.info(
        "%d images with a target finding, %d No Finding, %d with other findings only (left out)",
        int(positive.sum()),
        int(clean.sum()),
        int((~positive & ~clean).sum()),
    )
    # The cap draws from the study's own splits only, so adding a shifted set leaves them as they were.
    negatives = frame[clean & (frame["split"] != "shifted")]
    if no_finding is not None and len(negatives) > no_finding:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(negatives), size=no_finding, replace=False))
        negatives = negatives.iloc[keep]
    shifted_negatives = frame[clean & (frame["split"] == "shifted")]
    subset = (
        pd.concat([frame[positive], negatives, shifted_negatives]).sort_values("image").reset_index(drop=True)
    )
    if subset.empty:
        raise InputError(
            "the curated NIH subset is empty: no present image carries a target label or No Finding."
        )
    return subset


def _study_table(subset: pd.DataFrame, labels: Sequence[str], images: dict[str, Path] | None) -> pd.DataFrame:
    """The curated table every later stage reads: a 0/1 column per label and No Finding, paths if known."""
    out = subset[["image", "patient_id", "split", "view", "age", "sex"]].copy()
    for label in labels:
        out[label] = subset["labels"].map(lambda row, lab=label: int(lab in row))
    out[NO_FINDING] = subset["labels"].map(lambda row: int(row == (NO_FINDING,)))
    if images is not None:
        out["path"] = out["image"].map(lambda name: str(images[name]))
    return out


def summarise(subset: pd.DataFrame, labels: Sequence[str]) -> dict:
    """Counts per label and split, patients per split and the patient-overlap check (log and README)."""
    splits = ("train", "val", "test", *(("shifted",) if (subset["split"] == "shifted").any() else ()))
    per_split = {
        split: {
            "images": int((subset["split"] == split).sum()),
            "patients": int(subset.loc[subset["split"] == split, "patient_id"].nunique()),
            **{
                label: int(subset.loc[subset["split"] == split, label].sum())
                for label in [*labels, NO_FINDING]
            },
        }
        for split in splits
    }
    patient_sets = {split: set(subset.loc[subset["split"] == split, "patient_id"]) for split in splits}
    # The two held-out sets may share patients (the demo's twins are the test images redrawn).
    crossing = sum(
        len(patient_sets[a] & patient_sets[b])
        for a, b in itertools.combinations(splits, 2)
        if {a, b} != {"test", "shifted"}
    )
    return {"splits": per_split, "patients_in_two_splits": crossing, "images": len(subset)}
