"""The study's words, defined once: NIH's findings, the No Finding label, mask conditions, table columns.

Every module that names a label, a condition or a table column imports it
from here, so renaming one is one edit and a typo is an ImportError, not a
silently empty column.
"""

from __future__ import annotations

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
CONDITIONS: tuple[str, ...] = (ORIGINAL, "tight", "loose")
"""Mask conditions in the order every table and figure lists them: baseline first, then increasing context."""

MASKED_CONDITIONS: tuple[str, ...] = CONDITIONS[1:]
"""Conditions whose images are masked (each has a mask folder per shard)."""

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
