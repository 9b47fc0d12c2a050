"""Rule generate_masks: tight lung masks for one shard of the study's curated images."""

from __future__ import annotations

import logging

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.config import SegmenterSettings, SegmentSettings
from cxrmask.datasets.manifest import mask_name
from cxrmask.segment.apply import log_flagged, readable, segment_listed
from cxrmask.segment.inference import shard as shard_of
from cxrmask.torchutil import set_threads
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
    names = images["image"].map(mask_name)  # an NIH id is its own; a training_set's may be a path
    items = shard_of(list(zip(names, images["path"], strict=True)), shard, settings.shards)
    items = readable(items, on_bad, threads)
    qc = segment_listed(model, items, masks, segmenter, settings, device, truth)
    write_csv(table, qc)
    log_flagged(qc, table)
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
