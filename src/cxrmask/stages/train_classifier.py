"""Rule train_classifier: one cell of the grid, a backbone x mask condition x seed."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import torch

from cxrmask.atomic import atomic_path, write_csv, write_json
from cxrmask.classify.cache import load_cache
from cxrmask.classify.train import predict, prediction_table, split_data, trained_network
from cxrmask.classify.train import train_classifier as train
from cxrmask.config import TrainSettings
from cxrmask.resume import resume_path
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder
from cxrmask.vocabulary import SHIFTED

log = logging.getLogger(__name__)


def train_classifier(
    images: str,
    index: str,
    masks: str | None,
    predictions: str,
    predictions_shifted: str,
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
    training state is checkpointed after every epoch to ``model.resume.pt`` beside
    the weights (not a declared output, so Snakemake keeps it when a job dies);
    a rerun of a killed job resumes from it, and it is removed once the cell is
    written. ``predictions_shifted`` holds the same model's predictions on the
    shifted test set (``nih.shifted_list``, the demo's twins); without one it
    has the columns and no rows.
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
    checkpoint = resume_path(model)
    run_on = resolve_device(device)
    result = train(
        architecture,
        train_split,
        val_split,
        test_split,
        test_table,
        labels,
        settings,
        run_on,
        seed,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
        checkpoint=checkpoint,
    )
    write_csv(predictions, result.predictions)
    shifted = table[(table["split"] == SHIFTED) & table["ok"]]
    if shifted.empty:
        write_csv(predictions_shifted, result.predictions.iloc[:0])
    else:
        data, rows = split_data(image_cache, mask_cache, table, labels, SHIFTED)
        net = trained_network(architecture, result.state, len(labels), settings, run_on)
        probs = predict(net, data, settings, run_on)
        write_csv(
            predictions_shifted,
            prediction_table(rows, data.targets.numpy(), probs, labels, settings.no_finding_score),
        )
        log.info("predicted %d images of the shifted test set", len(rows))
    write_csv(history, result.history)
    write_json(summary, {**cell, **result.summary})
    with atomic_path(model) as tmp:
        torch.save({"model": result.state, "meta": {**cell, "labels": list(labels)}}, tmp)
    recorder.log_metrics(result.summary)
    for path in (predictions, predictions_shifted, history, summary):
        recorder.log_artifact(path)
    recorder.save(record)
    checkpoint.unlink(missing_ok=True)
    return result.summary
