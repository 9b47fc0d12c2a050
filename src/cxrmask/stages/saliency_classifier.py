"""Rule saliency_classifier: Grad-CAM of one cell on the test images and the share inside the lungs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from cxrmask.atomic import atomic_path, write_csv
from cxrmask.classify.backbones import build_backbone
from cxrmask.classify.cache import load_cache
from cxrmask.classify.train import gather, split_data
from cxrmask.config import TrainSettings
from cxrmask.saliency import cell_saliency, summarise
from cxrmask.torchutil import resolve_device, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)


def saliency_classifier(
    images: str,
    index: str,
    masks: str | None,
    lungs: str,
    model: str,
    saliency: str,
    examples: str,
    record: str,
    architecture: str,
    mask: str,
    seed: int,
    labels: Sequence[str],
    settings: TrainSettings,
    keep: int,
    device: str,
    threads: int,
) -> pd.DataFrame:
    """Per test image and label, the share of Grad-CAM mass inside the lungs; ``keep`` examples for figures.

    ``lungs`` is a mask cache row-aligned with the image cache: the tight
    masks, or the ground-truth lungs where they are known (the demo).
    """
    set_threads(threads)
    table = pd.read_csv(index)
    mask_cache = load_cache(masks) if masks else None
    test, test_table = split_data(load_cache(images), mask_cache, table, labels, "test")
    lung_masks = gather(load_cache(lungs), test_table)  # the same rows as the images, by construction
    net = build_backbone(architecture, False, len(labels))
    net.load_state_dict(torch.load(model, map_location="cpu", weights_only=True)["model"])
    target = resolve_device(device)
    per_image, sample = cell_saliency(
        net.to(target), test, lung_masks, test_table, labels, settings, target, keep
    )
    cell = {"backbone": architecture, "mask": mask, "seed": seed}
    per_image = per_image.assign(**cell)
    write_csv(saliency, per_image)
    with atomic_path(examples) as tmp:
        np.savez_compressed(tmp, **sample)
    recorder = RunRecorder("saliency_classifier", cell, {"labels": list(labels), "examples": keep})
    means = summarise(per_image).set_index("label")["inside_fraction"]
    recorder.log_metrics({f"inside_lungs_{label}": float(value) for label, value in means.items()})
    recorder.log_artifact(saliency)
    recorder.save(record)
    return per_image
