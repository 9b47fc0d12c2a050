"""Rule predict_test_set: one trained cell's predictions on one external test set."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import torch

from cxrmask.atomic import write_csv
from cxrmask.classify.cache import load_cache
from cxrmask.classify.train import predict, prediction_table, split_data, trained_network
from cxrmask.config import TrainSettings
from cxrmask.errors import InputError
from cxrmask.torchutil import resolve_device, set_threads

log = logging.getLogger(__name__)


def predict_test_set(
    images: str,
    index: str,
    masks: str | None,
    model: str,
    predictions: str,
    architecture: str,
    mask: str,
    labels: Sequence[str],
    settings: TrainSettings,
    device: str,
    test_set: str,
    threads: int,
) -> pd.DataFrame:
    """Predict every decoded image of ``test_set`` with the cell's selected weights (``model.pt``, the
    weights that predicted the internal test set), its images masked by the set's own masks of the cell's
    condition (``masks``; None for original images). A finding the set cannot express keeps a blank
    truth, so no later stage counts it as a negative."""
    set_threads(threads)
    saved = torch.load(model, map_location="cpu", weights_only=True)
    trained_for = saved["meta"]["labels"]
    if list(trained_for) != list(labels):
        raise InputError(
            f"{model} was trained for labels {trained_for}, the config names {list(labels)}: "
            "rerun train_classifier for this cell."
        )
    table = pd.read_csv(index)
    if not table["ok"].any():
        raise InputError(f"{index}: no image of test set {test_set} decoded; see its cache log.")
    data, rows = split_data(load_cache(images), load_cache(masks) if masks else None, table, labels, test_set)
    run_on = resolve_device(device)
    net = trained_network(architecture, saved["model"], len(labels), settings, run_on)
    out = prediction_table(
        rows, data.targets.numpy(), predict(net, data, settings, run_on), labels, settings.no_finding_score
    )
    write_csv(predictions, out)
    log.info("%s / %s: predicted %d images of test set %s", architecture, mask, len(out), test_set)
    return out
