"""Fine-tuning a SAM-family segmenter on lung masks, MedSAM's recipe.

Prompt encoder frozen; image encoder and mask decoder trained (``full``) or
the decoder alone on embeddings computed once (``decoder``, the fast mode
for CPUs and quick runs); AdamW; Dice + BCE on the decoder's low-resolution
logits; each box side jittered outward. The zero-shot model is scored on
the same held-out images first, so the report can show what fine-tuning
bought, and the best epoch by validation Dice is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cxrmask.config import FinetuneSettings
from cxrmask.early_stopping import EarlyStopping
from cxrmask.segment.dataset import SegData
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.preprocess import to_model_input
from cxrmask.segment.prompts import BoxPrior, jitter_box
from cxrmask.torchutil import autocast

log = logging.getLogger(__name__)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice + BCE, MedSAM's loss, averaged over the batch."""
    logits = logits.float()
    probs = torch.sigmoid(logits)
    dims = tuple(range(1, logits.ndim))
    intersection = (probs * target).sum(dims)
    dice = 1 - (2 * intersection + 1e-6) / (probs.sum(dims) + target.sum(dims) + 1e-6)
    return dice.mean() + F.binary_cross_entropy_with_logits(logits, target)


def batch_dice(logits: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Hard Dice per image of ``logits > 0`` against boolean targets."""
    pred = logits > 0
    target = target.bool()
    inter = (pred & target).flatten(1).sum(1).float()
    total = pred.flatten(1).sum(1).float() + target.flatten(1).sum(1).float()
    dice = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
    return dice.cpu().numpy()


def _freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm statistics fixed: fine-tuning batches of 2-8 images would wreck them."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


class _Embedder:
    """Gives embeddings for item indices: cached once (decoder mode) or computed per batch (full mode)."""

    def __init__(
        self, model: PromptableSegmenter, images: torch.Tensor, cache: bool, device, amp: bool, batch: int
    ):
        self.model, self.images, self.device, self.amp = model, images, device, amp
        self.cache = None
        if cache:
            # A CPU encodes fastest one image at a time (batches only add memory traffic); a GPU batches.
            step = batch if device.type == "cuda" else 1
            parts = []
            with torch.no_grad():
                for start in tqdm(range(0, len(images), step), desc="embed images", unit="batch"):
                    parts.append(self._encode(images[start : start + step]).float())
            self.cache = torch.cat(parts)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp):
            return self.model.encode(to_model_input(images.to(self.device)))

    def __call__(self, index: np.ndarray) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[torch.as_tensor(index)]
        return self._encode(self.images[torch.as_tensor(index)])


def _evaluate(
    model, embed: _Embedder, masks: torch.Tensor, boxes: torch.Tensor, batch: int, device, amp
) -> float:
    """Mean hard Dice over items, with the given per-item boxes (N, K, 4); K boxes are unioned."""
    model.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, len(masks), batch):
            index = np.arange(start, min(start + batch, len(masks)))
            with autocast(device, amp):
                logits = model.decode(embed(index), boxes[index].to(device)).amax(dim=1)
            scores.append(batch_dice(logits.float(), masks[index].to(device)))
    return float(np.concatenate(scores).mean())


@dataclass
class FinetuneResult:
    """Best weights, per-epoch history (epoch 0 = zero-shot) and the summary numbers."""

    state: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    zero_shot: dict[str, float]
    best: dict[str, float]


def finetune(
    model: PromptableSegmenter,
    data: SegData,
    prior: BoxPrior,
    settings: FinetuneSettings,
    device: torch.device,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``data``'s train split; select by val Dice with ground-truth boxes.

    Validation reports Dice both with the ground-truth box (MedSAM's
    protocol) and with the prior box used on NIH images, which is what the
    downstream masks will actually see.
    """
    model.to(device)
    train, val = data.subset("train"), data.subset("val")
    size, rng = model.input_size, np.random.default_rng(seed)
    jitter = settings.box_jitter * size / 1024.0
    train_images = torch.from_numpy(train.images)
    train_masks = torch.from_numpy(train.masks).float()[:, None]
    val_masks = torch.from_numpy(val.masks)
    val_gt_boxes = torch.from_numpy(val.boxes)[:, None]
    prior_boxes = torch.from_numpy(prior.boxes("box_prior", size, size).astype(np.float32))
    val_prior_boxes = prior_boxes[None].expand(len(val), -1, -1)

    cache = settings.mode == "decoder"
    model.eval()
    val_embed = _Embedder(
        model, torch.from_numpy(val.images), cache, device, settings.amp, settings.batch_size
    )
    train_embed = _Embedder(model, train_images, cache, device, settings.amp, settings.batch_size)
    for parameter in model.image_encoder.parameters():
        parameter.requires_grad_(settings.mode == "full")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)

    def validate() -> dict[str, float]:
        return {
            "val_dice": _evaluate(
                model, val_embed, val_masks, val_gt_boxes, settings.batch_size, device, settings.amp
            ),
            "val_dice_prior_box": _evaluate(
                model, val_embed, val_masks, val_prior_boxes, settings.batch_size, device, settings.amp
            ),
        }

    zero_shot = validate()
    log.info(
        "zero-shot: val Dice %.4f (GT box), %.4f (prior box)",
        zero_shot["val_dice"],
        zero_shot["val_dice_prior_box"],
    )
    history = [{"epoch": 0, "train_loss": float("nan"), "seconds": 0.0, **zero_shot}]
    if on_epoch:
        on_epoch(history[0])
    stopping = EarlyStopping(settings.patience)
    stopping.offer(zero_shot["val_dice"], history[0], model)
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        model.train()
        _freeze_batchnorm(model)
        if cache:
            model.image_encoder.eval()
        order = rng.permutation(len(train))
        losses = []
        for start in tqdm(
            range(0, len(order), settings.batch_size), desc=f"epoch {epoch}", unit="batch", leave=False
        ):
            index = order[start : start + settings.batch_size]
            boxes = np.stack([jitter_box(train.boxes[i], jitter, size, rng) for i in index])
            with autocast(device, settings.amp):
                logits = model.decode(train_embed(index), torch.from_numpy(boxes).to(device))
                loss = segmentation_loss(logits, train_masks[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **validate()}
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        log.info(
            "epoch %d: loss %.4f, val Dice %.4f (prior box %.4f)",
            epoch,
            row["train_loss"],
            row["val_dice"],
            row["val_dice_prior_box"],
        )
        if on_epoch:
            on_epoch(row)
        if stopping.offer(row["val_dice"], row, model):
            break
    return FinetuneResult(
        state=stopping.best_state(), history=history, zero_shot=zero_shot, best=stopping.row
    )
