"""Rule generate_masks: tight lung masks for one shard of the curated NIH images."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cxrmask.atomic import atomic_dir, write_csv
from cxrmask.config import SegmenterSettings, SegmentSettings
from cxrmask.errors import DecodeError, InputError
from cxrmask.imageio import SKIP_HINT, decode_errors
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.inference import generate_masks as segment_images
from cxrmask.segment.inference import shard as shard_of
from cxrmask.torchutil import resolve_device, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)


def generate_masks(
    model: str,
    subset: str,
    truth: str | None,
    masks: str,
    table: str,
    record: str,
    shard: int,
    segmenter: SegmenterSettings,
    settings: SegmentSettings,
    on_bad: str,
    device: str,
    threads: int,
) -> pd.DataFrame:
    """Segment shard ``shard`` of the curated images; write masks, a QC table and a run record.

    The shard comes from the curated image list, not from the classifier's
    image cache, so changing the classifier's image size reruns no
    segmentation. An image that cannot be read fails the job by name, or,
    with ``on_bad: skip``, gets no mask (the caches skip it too: same reader).
    ``truth`` is a folder of ground-truth lung masks where the images have
    them (the demo), for a Dice per mask; None for NIH. ``model`` is the
    fine-tuning bundle: weights, no-ground-truth prompt and QC reference, so
    every row carries a QC score and flag that need no ground truth.
    """
    set_threads(threads)
    recorder = RunRecorder(
        "generate_masks",
        {"shard": shard},
        {"segmenter": segmenter.model_dump(), "segment": settings.model_dump()},
    )
    images = pd.read_csv(subset).sort_values("image")
    items = shard_of(list(zip(images["image"], images["path"], strict=True)), shard, settings.shards)
    if on_bad == "skip":
        errors = decode_errors([path for _, path in items], threads)
        skipped = [error for error in errors if error]
        if skipped:
            log.warning(
                "%d unreadable images get no mask (data.on_bad_image: skip); first: %s",
                len(skipped),
                skipped[0],
            )
        items = [item for item, error in zip(items, errors, strict=True) if not error]
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
            qc = segment_images(
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
    write_csv(table, qc)
    _log_flagged(qc, table)
    metrics = {
        "images": len(qc),
        "fallback": int(qc["fallback"].sum()) if len(qc) else 0,
        "qc_flagged": int(qc["flag"].sum()) if len(qc) else 0,
    }
    if len(qc):
        metrics["mean_lung_fraction"] = float(qc["lung_fraction"].mean())
    if "dice" in qc and qc["dice"].notna().any():
        metrics["mean_dice_vs_truth"] = float(qc["dice"].mean())
        log.info("shard %d: mean Dice against ground truth %.4f", shard, metrics["mean_dice_vs_truth"])
    recorder.log_metrics(metrics)
    recorder.log_artifact(table)
    recorder.save(record)
    return qc


def _log_flagged(qc: pd.DataFrame, table: str) -> None:
    """Say how many masks QC flagged, and the first with its reason: a mask the segmenter got wrong (an
    image without visible lungs, another body part) is kept, counted and named, never silently used."""
    if "flag" not in qc or not qc["flag"].any():
        return
    flagged = qc[qc["flag"].astype(bool)]
    first = flagged.iloc[0]
    log.warning(
        "QC flagged %d of %d masks (listed in %s; the report shows the worst), first %s: %s. "
        "finetune.qc_bad_dice sets the estimated Dice below which a mask is flagged.",
        len(flagged),
        len(qc),
        table,
        first["image"],
        first["reason"],
    )
