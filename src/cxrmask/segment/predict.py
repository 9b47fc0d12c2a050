"""Lung masks for a folder of a user's own X-rays, through the workflow's own mask generation.

Any PNG the readers accept works: any size, 8- or 16-bit, grey, RGB or
RGBA. Masks are made by :func:`cxrmask.segment.inference.generate_masks`
with the bundle's no-ground-truth prompt and QC, exactly as the
``generate_masks`` rule makes them, and written at each image's size as
0/255 beside ``qc.csv``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import torch

from cxrmask.atomic import write_csv
from cxrmask.config import InferenceSettings
from cxrmask.errors import InputError
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.inference import generate_masks

log = logging.getLogger(__name__)

SUFFIXES = (".png",)


def predict_folder(
    bundle: SegmenterBundle,
    images: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    device: torch.device,
    settings: InferenceSettings,
    truth: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Segment every PNG in ``images`` into ``out_dir/<name>.png``; write and return ``out_dir/qc.csv``.

    With ``truth``, a folder of reference lung masks named like the images, ``qc.csv`` also gets each
    mask's Dice against its reference (NaN where there is none), to check the model on labelled images.
    """
    images, out_dir = Path(images), Path(out_dir)
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES) if images.is_dir() else []
    if not paths:
        raise InputError(f"{images}: no PNG image found. Point --images at a folder of .png X-rays.")
    if bundle.prompt.head is not None:
        bundle.prompt.head.to(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = [(path.stem + ".png", path) for path in paths]
    if truth is not None and not Path(truth).is_dir():
        raise InputError(f"{truth}: not a folder. Point --truth at a folder of reference masks.")
    table = generate_masks(
        bundle.model, items, bundle.prompt, out_dir, settings, device, truth_dir=truth, qc=bundle.qc
    )
    write_csv(out_dir / "qc.csv", table)
    log.info("%d masks in %s; %d flagged by QC", len(table), out_dir, int(table["flag"].sum()))
    if truth is not None:
        log.info("mean Dice against %s: %.4f", truth, float(table["dice"].mean()))
    return table
