"""Rule curate_nih: the study's NIH subset, with patient-wise splits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask import nih
from cxrmask.atomic import write_csv, write_json

log = logging.getLogger(__name__)


def curate_nih(
    labels_csv: str,
    train_val: str,
    test: str,
    shifted: str | None,
    images: Sequence[str],
    subset: str,
    summary: str,
    labels: Sequence[str],
    no_finding: int | None,
    views: Sequence[str],
    val_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Select the subset from the present images; write it (with each image's source archive) and counts.

    ``shifted`` is the optional list of a second, shifted test set (None: none).
    """
    table = nih.curate(
        nih.read_label_table(labels_csv),
        nih.read_split_list(train_val),
        nih.read_split_list(test),
        shifted=nih.read_split_list(shifted) if shifted else (),
        labels=labels,
        images=nih.find_images(images),
        no_finding=no_finding,
        val_fraction=val_fraction,
        views=views,
        seed=seed,
    )
    folders = [Path(d) for d in images]
    table["source"] = [next(f.name for f in folders if Path(p).is_relative_to(f)) for p in table["path"]]
    counts = nih.summarise(table, labels)
    log.info("curated subset: %s", counts)
    write_csv(subset, table)
    write_json(summary, counts)
    return table
