"""Fine-tuning a SAM-family segmenter on lung masks, MedSAM's recipe.

Prompt encoder frozen; image encoder and mask decoder trained (``full``,
optionally with activation checkpointing over the ViT blocks) or
the decoder alone on embeddings computed once (``decoder``, the fast mode
for CPUs and quick runs); AdamW; Dice + BCE on the decoder's low-resolution
logits; each box side jittered outward. The zero-shot model is scored on
the same held-out images first, so the report can show what fine-tuning
bought, and the best epoch by validation Dice is kept.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from cxrmask.config import SAM_VIT_PRESETS, FinetuneSettings
from cxrmask.errors import ConfigError
from cxrmask.resume import EarlyStopping, Progress, identity, load_progress, save_progress
from cxrmask.segment.dataset import SegData
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.preprocess import to_model_input
from cxrmask.segment.prompts import BoxPrior, jitter_box
from cxrmask.segment.trainprompts import PromptSampler
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
        self,
        model: PromptableSegmenter,
        images: torch.Tensor,
        cache: bool,
        device,
        amp: bool,
        batch: int,
        precomputed: torch.Tensor | None = None,
    ):
        self.model, self.images, self.device, self.amp = model, images, device, amp
        self.cache = None
        if cache and precomputed is not None:
            self.cache = precomputed.to(device)
        elif cache:
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
            return self.cache[torch.as_tensor(index)].float()
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


def _check(model: PromptableSegmenter, settings: FinetuneSettings) -> None:
    """Settings that cannot apply to this model: one clear error before any work."""
    if settings.checkpointing and (settings.mode != "full" or model.arch["arch"] not in SAM_VIT_PRESETS):
        raise ConfigError(
            "finetune.checkpointing: applies to full fine-tuning of a SAM ViT (vit_b, vit_l, vit_h); "
            "set it to false for this arch or mode."
        )


class _Loop:
    """One fine-tuning run's state and steps: prepare, embed, validate, one epoch."""

    def __init__(
        self,
        model: PromptableSegmenter,
        data: SegData,
        prior: BoxPrior,
        settings: FinetuneSettings,
        device: torch.device,
        seed: int,
    ):
        """Prepare: the model on the device, the splits as tensors, the optimiser and the loop's generator."""
        self.model, self.data, self.settings, self.device = model, data, settings, device
        model.to(device)
        model.checkpointing = settings.checkpointing
        self.train, val = data.subset("train"), data.subset("val")
        size = model.input_size
        self.rng = np.random.default_rng(seed)
        self.train_masks = torch.from_numpy(self.train.masks).float()[:, None]
        self.val_images, self.val_masks = torch.from_numpy(val.images), torch.from_numpy(val.masks)
        prior_boxes = torch.from_numpy(prior.boxes("box_prior", size, size).astype(np.float32))
        self.val_boxes = {
            "val_dice": torch.from_numpy(val.boxes)[:, None],
            "val_dice_prior_box": prior_boxes[None].expand(len(val), -1, -1),
        }
        for parameter in model.image_encoder.parameters():
            parameter.requires_grad_(settings.mode == "full")
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.sample_boxes = _box_sampler(
            settings, self.train, prior, size, settings.box_jitter * size / 1024.0
        )
        self.run = identity(
            settings=settings.model_dump(mode="json"), seed=int(seed), keys=data.keys.tolist()
        )

    @property
    def parts(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        return {"model": self.model, "optimizer": self.optimizer}

    @property
    def generators(self) -> dict[str, np.random.Generator]:
        return {"rng": self.rng}

    def embed(self, embeddings: torch.Tensor | None) -> None:
        """The encoders of both splits: embeddings cached once (decoder mode) or computed per batch."""
        cache = self.settings.mode == "decoder"
        self.model.eval()

        def embedder(images: torch.Tensor, split: str) -> _Embedder:
            given = None if embeddings is None else embeddings[torch.from_numpy(self.data.split == split)]
            settings = self.settings
            return _Embedder(self.model, images, cache, self.device, settings.amp, settings.batch_size, given)

        self.val_embed = embedder(self.val_images, "val")
        self.train_embed = embedder(torch.from_numpy(self.train.images), "train")

    def validate(self) -> dict[str, float]:
        """Validation Dice with the ground-truth box (MedSAM's protocol) and with the prior box."""
        settings = self.settings
        return {
            name: _evaluate(
                self.model,
                self.val_embed,
                self.val_masks,
                boxes,
                settings.batch_size,
                self.device,
                settings.amp,
            )
            for name, boxes in self.val_boxes.items()
        }

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch on the train split, then validate; the epoch's history row."""
        settings, model, device = self.settings, self.model, self.device
        started = time.perf_counter()
        model.train()
        _freeze_batchnorm(model)
        if settings.mode == "decoder":
            model.image_encoder.eval()
        order = self.rng.permutation(len(self.train))
        losses = []
        for start in tqdm(
            range(0, len(order), settings.batch_size), desc=f"epoch {epoch}", unit="batch", leave=False
        ):
            index = order[start : start + settings.batch_size]
            boxes = self.sample_boxes(index, self.rng)
            with autocast(device, settings.amp):
                logits = model.decode(self.train_embed(index), torch.from_numpy(boxes).to(device))
                loss = segmentation_loss(logits, self.train_masks[index].to(device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **self.validate()}
        row["seconds"] = time.perf_counter() - started
        log.info(
            "epoch %d: loss %.4f, val Dice %.4f (prior box %.4f)",
            epoch,
            row["train_loss"],
            row["val_dice"],
            row["val_dice_prior_box"],
        )
        return row


def finetune(
    model: PromptableSegmenter,
    data: SegData,
    prior: BoxPrior,
    settings: FinetuneSettings,
    device: torch.device,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    embeddings: torch.Tensor | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> FinetuneResult:
    """Fine-tune ``model`` on ``data``'s train split; keep the epoch best on ``settings.select_on``.

    Validation reports Dice both with the ground-truth box (MedSAM's
    protocol) and with the prior box used on NIH images, which is what the
    downstream masks will actually see. ``embeddings`` (decoder mode) are
    the encoder's outputs for ``data``'s items, computed once elsewhere.
    With ``checkpoint``, the state after every epoch is written there
    (:mod:`cxrmask.resume`), and a run that finds one continues after its
    epoch with the same result as an uninterrupted run; epochs restored are
    replayed to ``on_epoch``.
    """
    _check(model, settings)
    loop = _Loop(model, data, prior, settings, device, seed)
    # Restored before the embeddings are made: a resumed run embeds with the checkpoint's encoder.
    progress = load_progress(checkpoint, loop.run, loop.parts, loop.generators)
    loop.embed(embeddings)
    key = settings.select_on
    if progress is None:
        zero_shot = loop.validate()
        log.info(
            "zero-shot: val Dice %.4f (GT box), %.4f (prior box)",
            zero_shot["val_dice"],
            zero_shot["val_dice_prior_box"],
        )
        progress = Progress(EarlyStopping(settings.patience))
        progress.history.append({"epoch": 0, "train_loss": float("nan"), "seconds": 0.0, **zero_shot})
        progress.stopping.offer(zero_shot[key], progress.history[0], model)
    for row in progress.history:
        if on_epoch:
            on_epoch(row)
    for epoch in range(progress.history[-1]["epoch"] + 1, settings.epochs + 1):
        if progress.stopped:
            break
        row = loop.epoch(epoch)
        progress.history.append(row)
        progress.stopped = progress.stopping.offer(row[key], row, model)
        if checkpoint is not None:
            save_progress(checkpoint, loop.run, loop.parts, loop.generators, progress)
        if on_epoch:
            on_epoch(row)
    zero_shot = {name: progress.history[0][name] for name in loop.val_boxes}
    stopping = progress.stopping
    return FinetuneResult(
        state=stopping.best_state(), history=progress.history, zero_shot=zero_shot, best=stopping.row
    )


def _box_sampler(
    settings: FinetuneSettings, train: SegData, prior: BoxPrior, size: int, jitter: float
) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """The training prompt of ``settings.train_prompt`` for the train items."""
    if settings.train_prompt == "truth":
        return lambda index, rng: np.stack([jitter_box(train.boxes[i], jitter, size, rng) for i in index])
    return PromptSampler(
        truth=train.boxes,
        prior=prior.boxes("box_prior", size, size)[0].astype(np.float32),
        size=size,
        outward=jitter,
        both=settings.inward_jitter * size / 1024.0,
        prior_share=settings.prior_share,
    )
