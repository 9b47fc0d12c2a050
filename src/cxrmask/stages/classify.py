"""Rules of the classification stage: image and mask caches, one classifier cell."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cxrmask.atomic import atomic_path, write_csv, write_json
from cxrmask.classify.cache import build_cache, image_index, load_cache
from cxrmask.classify.train import TrainSettings, split_data, train_classifier
from cxrmask.errors import InputError
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
#: The per-epoch training checkpoint a killed cell resumes from, beside the cell's weights.
RESUME_NAME = "resume.pt"


def cache_images(
    subset: PathLike, out_cache: PathLike, out_index: PathLike, size: int, on_bad: str, threads: int
):
    """Decode every curated image once at the classifier's size; index which decoded."""
    table = pd.read_csv(subset)
    errors, digests = build_cache(
        table["path"], size, out_cache, on_bad=on_bad, num_workers=max(0, threads - 1)
    )
    write_csv(out_index, image_index(table, errors, digests))


def cache_masks(index: PathLike, mask_dirs: Sequence[PathLike], out_cache: PathLike, size: int, threads: int):
    """Gather one condition's masks from its shard folders into a cache row-aligned with the image cache.

    Images that did not decode have no mask; their rows stay zero and the
    index keeps them out of training.
    """
    table = pd.read_csv(index)
    found = {path.name: path for folder in mask_dirs for path in Path(folder).glob("*.png")}
    missing = [name for name, ok in zip(table["image"], table["ok"], strict=True) if ok and name not in found]
    if missing:
        raise InputError(f"no mask for {len(missing)} images (e.g. {missing[0]}): rerun the mask rules.")
    paths = [found[name] if ok else Path(name) for name, ok in zip(table["image"], table["ok"], strict=True)]
    with atomic_path(out_cache) as tmp:
        errors, _ = build_cache(
            paths, size, tmp, is_mask=True, on_bad="skip", num_workers=max(0, threads - 1)
        )
        bad = [error for error, ok in zip(errors, table["ok"], strict=True) if ok and error]
        if bad:
            raise InputError(f"{len(bad)} masks could not be read: {bad[0]} Rerun the mask rules.")


def train_cell(
    images: PathLike,
    index: PathLike,
    masks: PathLike | None,
    out_predictions: PathLike,
    out_history: PathLike,
    out_summary: PathLike,
    out_model: PathLike,
    out_record: PathLike,
    backbone: str,
    condition: str,
    seed: int,
    labels: Sequence[str],
    settings: Mapping[str, Any],
    device: str,
    threads: int,
) -> dict[str, float]:
    """Train one backbone x mask x seed; write predictions, history, summary, weights, run record.

    The training state is checkpointed after every epoch to ``resume.pt`` beside
    the weights (not a declared output, so Snakemake keeps it when a job dies);
    a rerun of a killed job resumes from it, and it is removed once the cell is
    written.
    """
    set_threads(threads)
    seed_everything(seed)
    train_settings = TrainSettings.from_config(settings)
    wildcards = {"backbone": backbone, "mask": condition, "seed": seed}
    recorder = RunRecorder(
        "train_classifier", wildcards, {"classifier": train_settings.__dict__, "labels": labels}
    )
    table = pd.read_csv(index)
    image_cache = load_cache(images)
    mask_cache = load_cache(masks) if masks else None
    train, _ = split_data(image_cache, mask_cache, table, labels, "train")
    val, _ = split_data(image_cache, mask_cache, table, labels, "val")
    test, test_table = split_data(image_cache, mask_cache, table, labels, "test")
    log.info(
        "%s / %s / seed %d: %d train, %d val, %d test images",
        backbone,
        condition,
        seed,
        len(train.targets),
        len(val.targets),
        len(test.targets),
    )
    checkpoint = Path(out_model).parent / RESUME_NAME
    result = train_classifier(
        backbone,
        train,
        val,
        test,
        test_table,
        labels,
        train_settings,
        resolve_device(device),
        seed,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
        checkpoint=checkpoint,
    )
    write_csv(out_predictions, result.predictions)
    write_csv(out_history, result.history)
    write_json(out_summary, {**wildcards, **result.summary})
    with atomic_path(out_model) as tmp:
        torch.save({"model": result.state, "meta": {**wildcards, "labels": list(labels)}}, tmp)
    recorder.log_metrics(result.summary)
    for path in (out_predictions, out_history, out_summary):
        recorder.log_artifact(path)
    recorder.save(out_record)
    checkpoint.unlink(missing_ok=True)
    return result.summary
