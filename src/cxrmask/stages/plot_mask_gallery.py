"""Rule plot_mask_gallery: test images with their tight and loose masks (and the true lungs when known)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrmask import figures
from cxrmask.config import FigureSettings
from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, read_mask
from cxrmask.segment.preprocess import resize_grey, resize_mask

PANEL_SIZE = 256
"""Side, in pixels, each gallery image is resized to."""


def plot_mask_gallery(
    index: str,
    tight: Sequence[str],
    loose: Sequence[str],
    truth: str | None,
    figure: str,
    style: FigureSettings,
) -> None:
    """``style.gallery`` test images spread over the split, by name."""
    table = pd.read_csv(index)
    table = table[table["ok"] & (table["split"] == "test")].sort_values("image")
    count = min(style.gallery, len(table))
    picks = table.iloc[np.linspace(0, len(table) - 1, count).round().astype(int)] if count else table
    tight_files = {p.name: p for d in tight for p in Path(d).glob("*.png")}
    loose_files = {p.name: p for d in loose for p in Path(d).glob("*.png")}
    samples = []
    for name, path in zip(picks["image"], picks["path"], strict=True):
        for kind, files, folders in (("tight", tight_files, tight), ("loose", loose_files, loose)):
            if name not in files:
                raise InputError(
                    f"test image {name} has no {kind} mask in {list(folders)}: the mask folders are not "
                    "the ones made from this index; rerun mask generation "
                    "(snakemake --forcerun generate_masks)."
                )
        sample = {
            "image": resize_grey(read_grey(path), PANEL_SIZE),
            "tight": resize_mask(read_mask(tight_files[name]), PANEL_SIZE),
            "loose": resize_mask(read_mask(loose_files[name]), PANEL_SIZE),
            "title": name,
        }
        if truth and (Path(truth) / name).is_file():
            sample["truth"] = resize_mask(read_mask(Path(truth) / name), PANEL_SIZE)
        samples.append(sample)
    figures.mask_gallery(samples, figure, style)
