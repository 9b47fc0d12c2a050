"""Training one classifier cell: a backbone, a mask condition, a seed.

The split's images sit in memory as uint8 (on the GPU when there is one);
masks are applied per batch - zero outside the lungs, or crop to the lungs'
box - so all three conditions read the same cache. Multi-label BCE on the
findings; the best epoch by validation macro AUROC is kept (early stopping);
the No Finding score is derived from the findings' probabilities, not
trained, as in the study.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes, roi_align
from tqdm import tqdm

from cxrmask.classify.backbones import build_backbone
from cxrmask.config import TrainSettings
from cxrmask.errors import ConfigError
from cxrmask.metrics import auroc, no_finding_score
from cxrmask.resume import EarlyStopping, Progress, identity, load_progress, save_progress
from cxrmask.torchutil import autocast
from cxrmask.vocabulary import NO_FINDING

log = logging.getLogger(__name__)


def apply_mask(images: torch.Tensor, masks: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Images (B,1,S,S) in [0,1] restricted to their masks: zeroed outside, or cropped to the mask's box."""
    if masks is None:
        return images
    if mode == "zero":
        return images * masks
    return crop_to_mask_box(images * masks, masks)


def crop_to_mask_box(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each image (B,C,S,S) resampled from its mask's bounding box to the full S x S (crop geometry)."""
    size = images.shape[-1]
    # masks_to_boxes gives the last row and column inside the mask; roi_align (aligned) wants pixel
    # edges, so the box ends one pixel further and a full mask crops to the image itself.
    boxes = masks_to_boxes(masks[:, 0].bool())
    boxes[:, 2:] += 1
    rois = torch.cat(
        [torch.arange(len(boxes), device=boxes.device, dtype=boxes.dtype)[:, None], boxes], dim=1
    )
    return roi_align(images, rois, output_size=(size, size), aligned=True)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random affine per image (scale ±10 %, shift ±5 %, rotation ±7°); no flips: anatomy is lateral."""
    batch = images.shape[0]
    rand = torch.rand(batch, 4, generator=generator).to(images.device)
    scale = 0.9 + 0.2 * rand[:, 0]
    angle = (rand[:, 1] - 0.5) * 2 * np.deg2rad(7)
    shift = (rand[:, 2:] - 0.5) * 0.1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


@dataclass
class SplitData:
    """One split's uint8 images (N,S,S), optional 0/1 masks and 0/1 targets (N,K)."""

    images: torch.Tensor
    masks: torch.Tensor | None
    targets: torch.Tensor


def model_inputs(
    data: SplitData, index: torch.Tensor, settings: TrainSettings, device, gen=None
) -> torch.Tensor:
    """Model input for ``index``: scaled, masked, augmented when training, normalised."""
    x = data.images[index].to(device, non_blocking=True).float().div_(255)[:, None]
    masks = None if data.masks is None else data.masks[index].to(device, non_blocking=True).float()[:, None]
    x = apply_mask(x, masks, settings.mask_mode)
    if gen is not None and settings.augment:
        x = augment(x, gen)
    x = (x - 0.5) / 0.25
    return x.contiguous(memory_format=torch.channels_last) if settings.channels_last else x


def predict(model, data: SplitData, settings: TrainSettings, device) -> np.ndarray:
    """Sigmoid probabilities (N,K) for a split, in order."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(data.targets), settings.batch_size * 2):
            index = torch.arange(start, min(start + settings.batch_size * 2, len(data.targets)))
            with autocast(device, settings.amp):
                out.append(torch.sigmoid(model(model_inputs(data, index, settings, device)).float()).cpu())
    return torch.cat(out).numpy()


def macro_auroc(targets: np.ndarray, probs: np.ndarray) -> float:
    """Mean AUROC over labels that have both classes (NaN when none has)."""
    values = [auroc(targets[:, k], probs[:, k]) for k in range(targets.shape[1])]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


@dataclass
class TrainResult:
    """Test predictions, per-epoch history and summary numbers of one cell."""

    predictions: pd.DataFrame
    history: pd.DataFrame
    summary: dict[str, float]
    state: dict[str, torch.Tensor]


def cell_identity(
    backbone: str, labels: Sequence[str], settings: TrainSettings, seed: int, splits: Sequence[SplitData]
) -> str:
    """What a cell's checkpoint must match to be resumed: the cell, its settings and a digest of its data.

    The digest covers each split's image shape and targets (not every pixel,
    which would take seconds on the full cache); a changed subset changes them.
    """
    digest = hashlib.sha256()
    for split in splits:
        digest.update(str(tuple(split.images.shape)).encode())
        digest.update(split.targets.numpy().tobytes())
        if split.masks is not None:
            digest.update(str(tuple(split.masks.shape)).encode())
    return identity(
        backbone=backbone,
        labels=list(labels),
        settings=settings.model_dump(mode="json"),
        seed=int(seed),
        data=digest.hexdigest(),
    )


def train_classifier(
    backbone: str,
    train: SplitData,
    val: SplitData,
    test: SplitData,
    test_table: pd.DataFrame,
    labels: Sequence[str],
    settings: TrainSettings,
    device: torch.device,
    seed: int,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train, early-stop on validation macro AUROC, and predict the test split with the best weights.

    With ``checkpoint``, the whole training state is saved there after every
    epoch and a matching checkpoint found at the start is resumed from, so a
    job killed after epoch k continues with epoch k + 1 and ends with the
    predictions an uninterrupted run gives. Epochs already run are replayed
    to ``on_epoch`` so a run record stays complete.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    parts = _training_parts(backbone, len(labels), len(train.targets), settings, device)
    generators = {"generator": generator}
    run = cell_identity(backbone, labels, settings, seed, (train, val, test))
    progress = load_progress(checkpoint, run, parts, generators)
    progress = progress or Progress(EarlyStopping(settings.patience))
    for row in progress.history:
        if on_epoch:
            on_epoch(row)
    model = parts["model"]
    started = time.perf_counter() - progress.elapsed
    for epoch in range(len(progress.history) + 1, settings.epochs + 1):
        if progress.stopped:
            break
        epoch_start = time.perf_counter()
        train_loss = _train_epoch(parts, train, settings, device, generator, epoch)
        row = {"epoch": epoch, "train_loss": train_loss, **_validate(model, val, settings, device)}
        row["seconds"] = time.perf_counter() - epoch_start
        row["elapsed"] = time.perf_counter() - started
        progress.history.append(row)
        log.info(
            "epoch %d: loss %.4f, val macro AUROC %.4f", epoch, row["train_loss"], row["val_macro_auroc"]
        )
        score = row["val_macro_auroc"] if np.isfinite(row["val_macro_auroc"]) else -row["val_loss"]
        progress.stopped = progress.stopping.offer(score, row, model)
        progress.elapsed = row["elapsed"]
        if checkpoint:
            save_progress(checkpoint, run, parts, generators, progress)
        if on_epoch:
            on_epoch(row)
    return _finish(model, progress, test, test_table, labels, settings, device, started)


def _training_parts(
    backbone: str, n_labels: int, n_train: int, settings: TrainSettings, device: torch.device
) -> dict[str, Any]:
    """Prepare: the network on the device, AdamW and its one-cycle schedule (what a checkpoint holds)."""
    model = build_backbone(backbone, settings.pretrained, n_labels).to(device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # Fused AdamW: one kernel per step for all parameters instead of several per tensor.
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=device.type == "cuda"
    )
    steps = settings.epochs * max(1, -(-n_train // settings.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=steps, pct_start=0.15
    )
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler}


def _train_epoch(
    parts: dict[str, Any],
    train: SplitData,
    settings: TrainSettings,
    device: torch.device,
    generator: torch.Generator,
    epoch: int,
) -> float:
    """One pass over the train split in the generator's order; the mean training loss."""
    model, optimizer, scheduler = parts["model"], parts["optimizer"], parts["scheduler"]
    model.train()
    order = torch.randperm(len(train.targets), generator=generator)
    # Summed on the device: reading each step's loss would make the host wait for the GPU every step.
    loss_sum, starts = torch.zeros((), device=device), range(0, len(order), settings.batch_size)
    for start in tqdm(starts, desc=f"epoch {epoch}", leave=False):
        index = order[start : start + settings.batch_size]
        with autocast(device, settings.amp):
            logits = model(model_inputs(train, index, settings, device, generator))
            loss = F.binary_cross_entropy_with_logits(logits.float(), train.targets[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach()
    return float(loss_sum) / len(starts)


def _validate(
    model: torch.nn.Module, val: SplitData, settings: TrainSettings, device: torch.device
) -> dict[str, float]:
    """Validation loss and macro AUROC (the early-stopping score)."""
    probs = predict(model, val, settings, device)
    return {
        "val_loss": float(F.binary_cross_entropy(torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7), val.targets)),
        "val_macro_auroc": macro_auroc(val.targets.numpy(), probs),
    }


def _finish(
    model: torch.nn.Module,
    progress: Progress,
    test: SplitData,
    test_table: pd.DataFrame,
    labels: Sequence[str],
    settings: TrainSettings,
    device: torch.device,
    started: float,
) -> TrainResult:
    """Predict the test split with the best epoch's weights; the predictions, history and summary."""
    best = progress.stopping.row
    model.load_state_dict(progress.stopping.state)
    probs = predict(model, test, settings, device)
    predictions = prediction_table(test_table, test.targets.numpy(), probs, labels, settings.no_finding_score)
    summary = {
        "best_epoch": best["epoch"],
        "best_val_macro_auroc": best["val_macro_auroc"],
        "epochs_run": len(progress.history),
        "train_seconds": time.perf_counter() - started,
        "seconds_to_best": best["elapsed"],
        "test_macro_auroc": macro_auroc(test.targets.numpy(), probs),
    }
    return TrainResult(predictions, pd.DataFrame(progress.history), summary, progress.stopping.best_state())


def prediction_table(
    table: pd.DataFrame, targets: np.ndarray, probs: np.ndarray, labels: Sequence[str], score_method: str
) -> pd.DataFrame:
    """The predictions format every later stage reads: true_/score_ columns per label and No Finding.

    A truth is 1 or 0, or blank where an external collection leaves it unknown (:func:`truth_column`).
    """
    out = pd.DataFrame({"image": table["image"].to_numpy(), "patient_id": table["patient_id"].to_numpy()})
    for k, label in enumerate(labels):
        out[f"true_{label}"] = truth_column(targets[:, k])
        out[f"score_{label}"] = probs[:, k]
    out[f"true_{NO_FINDING}"] = truth_column(table[NO_FINDING].to_numpy(dtype=np.float64))
    out[f"score_{NO_FINDING}"] = no_finding_score(probs, score_method)
    return out


def truth_column(values: np.ndarray) -> pd.Series:
    """0/1 truths as integers, NaN (unknown) kept as a blank: never read as a negative downstream."""
    return pd.Series(values, dtype=np.float64).astype("Int64")


def split_rows(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """One split's rows of the cache index (only images that decoded), in the order every stage uses.

    The one definition of "the test images" (or any split's): the classifier's
    predictions, its shifted-set predictions and saliency's lung masks all
    gather cache rows through it (:func:`gather`), so no two stages can line
    up different images.
    """
    rows = table[(table["split"] == split) & table["ok"]]
    if rows.empty:
        raise ConfigError(
            f"the {split} split is empty: the curated subset is too small for nih.val_fraction."
        )
    return rows.reset_index(drop=True)


def gather(cache: np.ndarray, rows: pd.DataFrame) -> torch.Tensor:
    """The cache entries of ``rows`` (from :func:`split_rows`), in their order."""
    return torch.from_numpy(np.asarray(cache[rows["cache_row"].to_numpy()]))


def split_data(
    images: np.ndarray, masks: np.ndarray | None, table: pd.DataFrame, labels: Sequence[str], split: str
) -> tuple[SplitData, pd.DataFrame]:
    """Gather one split's cache rows into memory (only images that decoded); the data and its rows."""
    rows = split_rows(table, split)
    data = SplitData(
        images=gather(images, rows),
        masks=None if masks is None else gather(masks, rows),
        targets=torch.from_numpy(rows[list(labels)].to_numpy().astype(np.float32)),
    )
    return data, rows


def trained_network(
    architecture: str, state: dict, n_labels: int, settings: TrainSettings, device: torch.device
) -> torch.nn.Module:
    """A cell's network with its selected weights, laid out as in training: what predicts every test set."""
    net = build_backbone(architecture, False, n_labels)
    net.load_state_dict(state)
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if settings.channels_last else net
