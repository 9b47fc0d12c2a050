"""The fine-tuned segmenter applied to a list of images, and its masks dilated: the one path that NIH's
shards and every external test set go through, so the masks of both are made alike."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from cxrmask.atomic import atomic_dir
from cxrmask.config import LooseSettings, SegmenterSettings, SegmentSettings
from cxrmask.errors import DecodeError, InputError
from cxrmask.imageio import SKIP_HINT, decode_errors, read_mask, write_png
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.inference import generate_masks as segment_images
from cxrmask.segment.postprocess import dice, dilate, dilation_radius
from cxrmask.torchutil import resolve_device

log = logging.getLogger(__name__)


def readable(items: list[tuple[str, str]], on_bad: str, threads: int) -> list[tuple[str, str]]:
    """``items`` (mask name, image path) less the images that cannot be decoded, with ``on_bad: skip``
    (counted and the first named); with ``fail`` all of them, and the segmenter fails on the first."""
    if on_bad != "skip":
        return items
    errors = decode_errors([path for _, path in items], threads)
    skipped = [error for error in errors if error]
    if skipped:
        log.warning(
            "%d unreadable images get no mask (data.on_bad_image: skip); first: %s", len(skipped), skipped[0]
        )
    return [item for item, error in zip(items, errors, strict=True) if not error]


def segment_listed(
    model: str,
    items: Sequence[tuple[str, str]],
    masks: str,
    segmenter: SegmenterSettings,
    settings: SegmentSettings,
    device: str,
    truth: str | None = None,
) -> pd.DataFrame:
    """Segment ``items`` (mask file name, image path) with the fine-tuning bundle ``model`` into the folder
    ``masks`` (written whole or not at all); return the QC table, one row per mask.

    The bundle carries the weights, the no-ground-truth prompt and the QC reference, so every row has a
    QC score and flag; ``truth`` is a folder of ground-truth lungs by mask name, for a Dice per mask.
    """
    bundle = SegmenterBundle.load(model)
    if bundle.model.arch != segmenter.spec:
        raise InputError(
            f"{model}: fine-tuned as {bundle.model.arch['arch']}, but segmenter is {segmenter.arch}. "
            "Rerun finetune_medsam with this config."
        )
    run_on = resolve_device(device)
    if bundle.prompt.head is not None:
        bundle.prompt.head.to(run_on)
    try:
        with atomic_dir(masks) as tmp:
            return segment_images(
                bundle.model,
                [(n, Path(p)) for n, p in items],
                bundle.prompt,
                tmp,
                settings,
                run_on,
                truth,
                qc=bundle.qc,
            )
    except DecodeError as exc:
        raise InputError(f"{exc} {SKIP_HINT}") from exc


def log_flagged(qc: pd.DataFrame, table: str) -> None:
    """Say how many masks QC flagged, and the first with its reason: a mask the segmenter got wrong (an
    image without visible lungs, another body part) is kept, counted and named, never silently used."""
    if "flag" not in qc or not qc["flag"].any():
        return
    flagged = qc[qc["flag"].astype(bool)]
    first = flagged.iloc[0]
    log.warning(
        "QC flagged %d of %d masks (listed in %s; the report shows the worst), first %s: %s. "
        "finetune.qc_bad_dice (plus the estimate's spread on the validation split) sets the estimated Dice "
        "below which a mask is flagged.",
        len(flagged),
        len(qc),
        table,
        first["image"],
        first["reason"],
    )


def dilate_listed(
    names: Sequence[str], tight: str, masks: str, settings: LooseSettings, truth: str | None = None
) -> pd.DataFrame:
    """Dilate the tight masks ``names`` in folder ``tight`` by the configured radius into folder ``masks``
    (written whole or not at all); with ``truth``, the share of the true lung each covers."""
    rows = []
    with atomic_dir(masks) as tmp:
        for name in tqdm(names, desc="dilate", unit="mask"):
            tight_mask = read_mask(Path(tight) / name)
            radius = dilation_radius(settings.radius, settings.units, tight_mask.shape[1])
            loose = dilate(tight_mask, radius)
            write_png(tmp / name, loose)
            row = {"image": name, "radius_px": radius, "lung_fraction": float(loose.mean())}
            if truth is not None and (Path(truth) / name).is_file():
                true_lungs = read_mask(Path(truth) / name)
                row["truth_coverage"] = float(
                    np.logical_and(loose, true_lungs).sum() / max(true_lungs.sum(), 1)
                )
                row["dice"] = dice(loose, true_lungs)
            rows.append(row)
    columns = ["image", "radius_px", "lung_fraction"] + (["truth_coverage", "dice"] if truth else [])
    return pd.DataFrame(rows, columns=columns)
