"""Rule plot_qc_gallery: the masks the no-ground-truth QC scores worst, with why they were flagged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from cxrmask import figures
from cxrmask.config import FigureSettings
from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.preprocess import resize_grey, resize_mask
from cxrmask.stages.plot_mask_gallery import PANEL_SIZE


def plot_qc_gallery(
    index: str,
    tables: Sequence[str],
    tight: Sequence[str],
    loose: Sequence[str],
    truth: str | None,
    figure: str,
    style: FigureSettings,
) -> Figure:
    """The ``style.gallery`` lowest QC scores over all shards, titled with score and first reason."""
    qc = pd.concat([pd.read_csv(table) for table in tables]).sort_values(["qc_score", "image"])
    worst = qc.head(style.gallery)
    paths = dict(zip(*pd.read_csv(index)[["image", "path"]].T.values, strict=True))
    tight_files = {p.name: p for d in tight for p in Path(d).glob("*.png")}
    loose_files = {p.name: p for d in loose for p in Path(d).glob("*.png")}
    samples = []
    for row in worst.itertuples(index=False):
        reason = (
            str(row.reason).split(" (")[0] if isinstance(row.reason, str) and row.reason else "not flagged"
        )
        sample = {
            "image": resize_grey(read_grey(paths[row.image]), PANEL_SIZE),
            "tight": resize_mask(read_mask(tight_files[row.image]), PANEL_SIZE),
            "loose": resize_mask(read_mask(loose_files[row.image]), PANEL_SIZE),
            "title": f"{row.image}\nQC {row.qc_score:.2f}: {reason}",
        }
        if truth and (Path(truth) / row.image).is_file():
            sample["truth"] = resize_mask(read_mask(Path(truth) / row.image), PANEL_SIZE)
        samples.append(sample)
    return figures.mask_gallery(samples, figure, style)
