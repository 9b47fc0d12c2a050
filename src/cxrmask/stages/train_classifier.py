"""Rule train_classifier: one cell of the grid, a backbone x mask condition x seed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from cxrmask.atomic import atomic_path, write_csv, write_json
from cxrmask.classify.cache import load_cache
from cxrmask.classify.train import split_data
from cxrmask.classify.train import train_classifier as train
from cxrmask.config import TrainSettings
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)

#: The per-epoch training checkpoint a killed cell resumes from, beside the cell's weights.
RESUME_NAME = "resume.pt"


def train_classifier(
    images: str,
    index: str,
    masks: str | None,
    predictions: str,
    history: str,
    summary: str,
    model: str,
    record: str,
    architecture: str,
    mask: str,
    seed: int,
    labels: Sequence[str],
    settings: TrainSettings,
    device: str,
    threads: int,
) -> dict[str, float]:
    """Train ``architecture`` on condition ``mask`` with ``seed``; write predictions, history, weights.

    ``masks`` is the condition's mask cache (None for original images). The
    training state is checkpointed after every epoch to ``resume.pt`` beside
    the weights (not a declared output, so Snakemake keeps it when a job dies);
    a rerun of a killed job resumes from it, and it is removed once the cell is
    written.
    """
    set_threads(threads)
    seed_everything(seed)
    cell = {"backbone": architecture, "mask": mask, "seed": seed}
    recorder = RunRecorder(
        "train_classifier", cell, {"classifier": settings.model_dump(), "labels": list(labels)}
    )
    table = pd.read_csv(index)
    image_cache = load_cache(images)
    mask_cache = load_cache(masks) if masks else None
    train_split, _ = split_data(image_cache, mask_cache, table, labels, "train")
    val_split, _ = split_data(image_cache, mask_cache, table, labels, "val")
    test_split, test_table = split_data(image_cache, mask_cache, table, labels, "test")
    log.info(
        "%s / %s / seed %d: %d train, %d val, %d test images",
        architecture,
        mask,
        seed,
        len(train_split.targets),
        len(val_split.targets),
        len(test_split.targets),
    )
    checkpoint = Path(model).parent / RESUME_NAME
    result = train(
        architecture,
        train_split,
        val_split,
        test_split,
        test_table,
        labels,
        settings,
        resolve_device(device),
        seed,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
        checkpoint=checkpoint,
    )
    write_csv(predictions, result.predictions)
    write_csv(history, result.history)
    write_json(summary, {**cell, **result.summary})
    with atomic_path(model) as tmp:
        torch.save({"model": result.state, "meta": {**cell, "labels": list(labels)}}, tmp)
    recorder.log_metrics(result.summary)
    for path in (predictions, history, summary):
        recorder.log_artifact(path)
    recorder.save(record)
    checkpoint.unlink(missing_ok=True)
    return result.summary
