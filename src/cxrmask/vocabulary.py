"""The study's words, defined once: NIH's findings, the No Finding label, mask conditions, table columns.

Every module that names a label, a condition or a table column imports it
from here, so renaming one is one edit and a typo is an ImportError, not a
silently empty column.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

NO_FINDING = "No Finding"
"""NIH's label for an image without findings; the classifiers score it from the five findings' outputs."""

NIH_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)
"""NIH ChestX-ray14's fourteen findings, as spelt in ``Data_Entry_2017_v2020.csv``."""

STUDY_LABELS: tuple[str, ...] = ("Mass", "Nodule", "Pneumonia", "Edema", "Fibrosis")
"""The five findings the paper classifies (the config's default ``nih.labels``)."""

ORIGINAL = "original"
TIGHT, LOOSE = "tight", "loose"
EXTENTS: tuple[str, ...] = (TIGHT, LOOSE)
"""How much of the image a mask keeps: the lungs alone, or the lungs dilated (``loose.radius``)."""

REFERENCE_SOURCE = "chexmask"
"""The second source of lung masks: CheXmask's (HybridGNet) lungs on NIH, the ground truth in the demo."""

STUDY_CONDITIONS: tuple[str, ...] = (ORIGINAL, TIGHT, LOOSE)
"""The paper's three conditions, masks by the study's own segmenter: the default grid, and the conditions
the paper's claims are judged on."""

REFERENCE_CONDITIONS: tuple[str, ...] = tuple(f"{REFERENCE_SOURCE}-{extent}" for extent in EXTENTS)
"""The same two extents cut from CheXmask's lungs instead of the segmenter's (mask source x extent)."""

CONDITIONS: tuple[str, ...] = STUDY_CONDITIONS + REFERENCE_CONDITIONS
"""Every mask condition, in the order every table and figure lists them: baseline first, then increasing
context, the segmenter's masks before CheXmask's."""

MASKED_CONDITIONS: tuple[str, ...] = CONDITIONS[1:]
"""Conditions whose images are masked (each has a mask folder per shard)."""

LOOSE_CONDITIONS: tuple[str, ...] = tuple(c for c in MASKED_CONDITIONS if c.endswith(LOOSE))
"""The conditions whose masks are dilated from a tight condition of their source (:func:`tight_of`)."""


def extent_of(condition: str) -> str:
    """A masked condition's extent (``tight`` or ``loose``), whichever source cut it."""
    return condition.removeprefix(f"{REFERENCE_SOURCE}-")


def tight_of(condition: str) -> str:
    """The tight condition a loose one is dilated from, of the same source; a ValueError for any other."""
    if condition not in LOOSE_CONDITIONS:
        raise ValueError(f"{condition!r} is not a loose condition; those are {list(LOOSE_CONDITIONS)}")
    return condition.removesuffix(LOOSE) + TIGHT


def source_pairs(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """Each extent's segmenter condition against CheXmask's, where both are in ``conditions``: the
    comparisons that say whether the mask source changes the answer."""
    return [
        (extent, reference)
        for extent, reference in zip(EXTENTS, REFERENCE_CONDITIONS, strict=True)
        if extent in conditions and reference in conditions
    ]


def default_pairs(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """The condition pairs compared when ``compare.pairs`` is not given: every pair of the study's
    conditions in ``conditions``, then :func:`source_pairs`."""
    study = [condition for condition in STUDY_CONDITIONS if condition in conditions]
    return [*combinations(study, 2), *source_pairs(conditions)]


SHIFTED = "shifted"
"""The split of a second test set under a distribution shift (``nih.shifted_list``; the demo's twins)."""

CELL_KEYS: tuple[str, ...] = ("backbone", "mask", "seed")
"""What identifies one trained classifier: a cell of the backbone x mask condition x seed grid."""

AUROC_COLUMNS: tuple[str, ...] = (
    *CELL_KEYS,
    "label",
    "auroc",
    "ci_low",
    "ci_high",
    "ci_method",
    "n_pos",
    "n_neg",
    "n_patients",
)
"""Columns of ``tables/auroc.csv``."""

TEST_SET_AUROC_COLUMNS: tuple[str, ...] = ("test_set", *AUROC_COLUMNS, "note")
"""Columns of ``tables/auroc_test_sets.csv``: ``auroc.csv``'s per external test set, and why an AUROC is
undefined there (``note``)."""

DELONG_COLUMNS: tuple[str, ...] = (
    "backbone",
    "label",
    "condition_a",
    "condition_b",
    "auc_a",
    "auc_b",
    "delta",
    "se",
    "z",
    "p_value",
    "p_holm",
    "significant",
    "ci_low",
    "ci_high",
    "n_pos",
    "n_neg",
)
"""Columns of ``tables/delong.csv``: one paired test per backbone, label and condition pair."""
