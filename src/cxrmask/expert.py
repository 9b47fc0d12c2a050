"""Expert labels as a second reading of NIH's test images: Google's adjudicated "Nodule or mass".

NIH's labels were mined from reports by NLP. Majkowska et al. (Radiology 2020)
had three radiologists adjudicate four findings on 4,376 NIH images (its
validation and test sets, ``four_findings_expert_labels``); torchxrayvision
ships the same labels merged with NIH's table as
``google2019_nih-chest-xray-labels.csv.gz``. "Nodule or mass" does not tell
the two apart, so the Mass and Nodule outputs, and the larger of the two,
are each scored against it, beside the same outputs scored against NIH's own
labels on the same images: whether a masking condition's Mass/Nodule AUROC
holds when the truth is a radiologist's, not a report parser's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxrmask.cells import seed_averaged
from cxrmask.errors import InputError
from cxrmask.stats import delong_ci

log = logging.getLogger(__name__)

IMAGE = "Image Index"
FINDING = "Nodule or mass"
VALUES = {"YES": 1, "NO": 0}
"""The table's readings of a finding."""
EXPERT_FINDINGS = ("Mass", "Nodule")
"""The study's findings "Nodule or mass" reads."""
EITHER = "Mass or Nodule"
"""The score of either finding: the larger of the Mass and Nodule outputs."""
EXPERT_COLUMNS = (
    "backbone",
    "mask",
    "output",
    "reading",
    "auroc",
    "ci_low",
    "ci_high",
    "n_pos",
    "n_neg",
)
"""Columns of ``tables/auroc_expert.csv``: per cell (seeds averaged) and output, the AUROC against NIH's
labels (``reading`` nlp) and against the experts' (expert) on the test images the experts read."""


def read_expert_labels(path: str) -> pd.DataFrame:
    """The experts' "Nodule or mass" per image (``image``, ``expert`` 1/0) from Google's table or
    torchxrayvision's copy; refuse a table without the columns, a reading other than YES/NO, and an image
    read twice two ways."""
    try:
        frame = pd.read_csv(path, usecols=lambda c: c in (IMAGE, FINDING), dtype=str)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the expert labels ({exc}); check nih.expert_labels.") from None
    missing = [c for c in (IMAGE, FINDING) if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: no column {missing}; this is not Google's NIH expert-label table "
            "(four_findings_expert_labels, or torchxrayvision's google2019_nih-chest-xray-labels.csv.gz)."
        )
    values = frame[FINDING].str.strip().str.upper()
    bad = frame[IMAGE][~values.isin(list(VALUES))]
    if len(bad):
        raise InputError(
            f"{path}: {FINDING!r} of {bad.iloc[0]} is {frame[FINDING][bad.index[0]]!r}; it must be YES or NO."
        )
    out = pd.DataFrame({"image": frame[IMAGE].str.strip(), "expert": values.map(VALUES).astype(int)})
    out = out.drop_duplicates()
    twice = out["image"][out["image"].duplicated()]
    if len(twice):
        raise InputError(f"{path}: image {twice.iloc[0]} is read both YES and NO; keep one of its rows.")
    return out.reset_index(drop=True)


def _auroc_row(truth: np.ndarray, score: np.ndarray, alpha: float) -> dict[str, float]:
    """AUROC and DeLong interval; NaN where the covered images hold one class."""
    n_pos = int(truth.sum())
    row = {"n_pos": n_pos, "n_neg": int(truth.size - n_pos)}
    if n_pos in (0, truth.size):
        return {**row, "auroc": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    ci = delong_ci(truth.astype(bool), score, alpha)
    return {**row, "auroc": ci.auc, "ci_low": ci.low, "ci_high": ci.high}


def expert_aurocs(
    loaded: list[tuple[dict, pd.DataFrame]], expert: pd.DataFrame, labels: Sequence[str], alpha: float
) -> pd.DataFrame:
    """Per backbone x condition (seeds averaged): the Mass, Nodule and either output's AUROC against NIH's
    labels and against the experts', on the test images the expert table covers; no rows where it covers
    none (the reading is off, and the log says why)."""
    findings = [label for label in EXPERT_FINDINGS if label in labels]
    if not findings:
        raise InputError(
            f"nih.expert_labels reads {FINDING!r}, but nih.labels {list(labels)} has neither Mass nor Nodule."
        )
    rows = []
    keys = dict.fromkeys((cell["backbone"], cell["mask"]) for cell, _ in loaded)
    for backbone, condition in keys:
        frame = seed_averaged(loaded, backbone, condition).merge(expert, on="image", how="inner")
        if frame.empty:
            log.warning(
                "the expert table covers none of the test images; the second reading is off "
                "(its images are NIH's: check nih.expert_labels and the curated test split)"
            )
            return pd.DataFrame(columns=list(EXPERT_COLUMNS))
        outputs = {label: (frame[f"score_{label}"], frame[f"true_{label}"]) for label in findings}
        if len(findings) == 2:
            outputs[EITHER] = (
                frame[[f"score_{f}" for f in findings]].max(axis=1),
                frame[[f"true_{f}" for f in findings]].max(axis=1),
            )
        for output, (score, nlp) in outputs.items():
            for reading, truth in (("nlp", nlp), ("expert", frame["expert"])):
                rows.append(
                    {
                        "backbone": backbone,
                        "mask": condition,
                        "output": output,
                        "reading": reading,
                        **_auroc_row(truth.to_numpy().astype(int), score.to_numpy(dtype=np.float64), alpha),
                    }
                )
    log.info("expert labels: %d of the test images read by the experts", rows[0]["n_pos"] + rows[0]["n_neg"])
    return pd.DataFrame(rows)[list(EXPERT_COLUMNS)]
