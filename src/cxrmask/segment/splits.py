"""Train / validation / test splits that keep every patient on one side.

A fine-tuned segmenter scored on images that chose its best epoch, or on
another image of a patient it was trained on, looks better than it is. The
fine-tuning set is therefore cut three ways: ``train`` fits the weights,
``val`` picks the epoch, ``test`` is only ever reported. Where the set names
patients, whole patients are assigned (scikit-learn's group splitter);
otherwise each image is its own group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from cxrmask.errors import ConfigError

SPLITS = ("train", "val", "test")


def _cut(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken) with about ``fraction`` of the items taken, whole groups at a time."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    kept, taken = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return kept, taken


def group_split(
    n: int, val_fraction: float, test_fraction: float, seed: int, groups: Sequence[str] | None = None
) -> np.ndarray:
    """Label ``n`` items "train", "val" or "test"; items sharing a group share a label.

    ``test_fraction`` 0 gives the old two-way split. Fractions are of groups,
    so with unequal groups the image counts only approximate them.
    """
    if not 0 <= test_fraction < 1 or not 0 < val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"seg_data: val_fraction {val_fraction} and test_fraction {test_fraction} must each lie in "
            "[0, 1) and leave some images for training."
        )
    groups_array = np.asarray(groups if groups is not None else [str(i) for i in range(n)], dtype=str)
    if len(groups_array) != n:
        raise ConfigError(f"{len(groups_array)} patient ids given for {n} images.")
    if len(set(groups_array)) < (3 if test_fraction else 2):
        raise ConfigError(
            f"only {len(set(groups_array))} patients: a train/val{'/test' if test_fraction else ''} "
            "split needs one patient per split at least."
        )
    split = np.full(n, "train", dtype="<U5")
    rest = np.arange(n)
    if test_fraction:
        kept, taken = _cut(groups_array, test_fraction, seed)
        split[taken] = "test"
        rest = kept
    # The val share is of the whole set, so it is rescaled to what is left after the test cut.
    share = val_fraction / (1 - test_fraction)
    kept, taken = _cut(groups_array[rest], share, seed + 1)
    split[rest[taken]] = "val"
    return split
