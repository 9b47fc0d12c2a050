"""Fine-tune a segmenter into a bundle, scored honestly: train fits, val selects and calibrates, test reports.

The encoder runs once per image (decoder mode); the lung-map head, the
decoder and every evaluation reuse those embeddings. QC's estimated Dice is
calibrated on the validation split. The summary carries, for the zero-shot
and the fine-tuned model and for each prompt, the test split's mean and
10th-percentile Dice, IoU and HD95, and on validation and test how well the
QC score ranks masks by their true Dice and how right its flag is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from cxrmask.config import FinetuneSettings, HeadSettings
from cxrmask.errors import InputError
from cxrmask.segment.autoprompt import AutoPrompt, encode_all
from cxrmask.segment.boxhead import LungMapHead, train_box_head
from cxrmask.segment.bundle import SegmenterBundle
from cxrmask.segment.dataset import SegData
from cxrmask.segment.evaluation import evaluate_prompts
from cxrmask.segment.finetune import FinetuneResult, finetune
from cxrmask.segment.models import PromptableSegmenter
from cxrmask.segment.opacities import with_opacities
from cxrmask.segment.prompts import BoxPrior
from cxrmask.segment.qc import QCReference, flag_precision_recall, no_truth_signals
from cxrmask.segment.scoring import mask_scores

log = logging.getLogger(__name__)


def _split_embeddings(embeddings: torch.Tensor, data: SegData, name: str) -> torch.Tensor:
    return embeddings[torch.from_numpy(data.split == name)].float()


def _on(device: torch.device, auto: AutoPrompt) -> AutoPrompt:
    """The prompt with its head on ``device`` (trained on the CPU, where the embeddings are kept)."""
    if auto.head is not None:
        auto.head.to(device)
    return auto


def _head(embeddings: torch.Tensor, data: SegData, settings: HeadSettings, seed: int) -> LungMapHead:
    return train_box_head(
        _split_embeddings(embeddings, data, "train"),
        torch.from_numpy(data.subset("train").masks),
        _split_embeddings(embeddings, data, "val"),
        torch.from_numpy(data.subset("val").masks),
        settings,
        seed=seed,
    )[0]


def qc_table(
    model: PromptableSegmenter, auto: AutoPrompt, reference: QCReference, embeddings: torch.Tensor
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """QC rows and cleaned masks (decoder grid) for embeddings, with the bundle's prompt."""
    rows, masks = [], []
    with torch.no_grad():
        for start in range(0, len(embeddings), 16):
            batch = embeddings[start : start + 16].float()
            logits, boxes = auto(model, batch)
            for raw, mask, sure, agree, on_map in no_truth_signals(model, auto.head, batch, logits, boxes):
                rows.append(reference.assess(raw, mask, sure, agree, on_map))
                masks.append(mask)
    return rows, np.stack(masks)


def qc_validation(
    rows: list[dict[str, Any]], masks: np.ndarray, truth: np.ndarray, bad_dice: float
) -> dict[str, float | None]:
    """Spearman of QC score with true Dice, the flag's precision and recall for masks with Dice below
    ``bad_dice``, and the Dice of flagged against unflagged masks (None where undefined)."""
    dice = mask_scores(masks, truth)["dice"]
    scores = np.array([row["qc_score"] for row in rows])
    flags = np.array([row["flag"] for row in rows], dtype=bool)
    precision, recall = flag_precision_recall(flags, dice, bad_dice)
    rho = spearmanr(scores, dice).statistic if len(set(scores)) > 1 else None
    return {
        "spearman_qc_dice": None if rho is None else float(rho),
        "flagged": int(flags.sum()),
        "n": len(rows),
        "n_bad": int((dice < bad_dice).sum()),
        "flag_precision": precision,
        "flag_recall": recall,
        "dice_flagged_mean": float(dice[flags].mean()) if flags.any() else None,
        "dice_unflagged_mean": float(dice[~flags].mean()) if (~flags).any() else None,
    }


def calibrate_qc(
    model: PromptableSegmenter, auto: AutoPrompt, embeddings: torch.Tensor, truth: np.ndarray, bad_dice: float
) -> QCReference:
    """The QC reference calibrated on held-out masks (the validation split's): their certainties against
    their true Dice, with the bundle's own prompt."""
    rows, masks = qc_table(model, auto, QCReference(bad_dice=bad_dice), embeddings)
    scores = np.array([row["certainty"] for row in rows])
    return QCReference.calibrate(scores, mask_scores(masks, truth)["dice"], bad_dice)


def fit_segmenter(
    model: PromptableSegmenter,
    data: SegData,
    prior: BoxPrior,
    settings: FinetuneSettings,
    device: torch.device,
    seed: int = 0,
    checkpoint: str | os.PathLike[str] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    embeddings: torch.Tensor | None = None,
) -> tuple[SegmenterBundle, FinetuneResult]:
    """Fine-tune ``model`` on ``data`` (with a ``test`` split for reporting) into a bundle with summary.

    ``prior`` is the learned box of the train split's masks; the prompt's
    and QC's options come from ``settings``. With ``settings.opacity_copies``
    the train split gains painted copies (:mod:`cxrmask.segment.opacities`)
    before anything is encoded. ``embeddings`` are the starting encoder's
    outputs for ``data``'s items, computed elsewhere (several runs over one
    set); only the painted copies are then encoded here.
    """
    if not (data.split == "test").any():
        raise InputError("the fine-tuning set has no test split: set seg_data.test_fraction above 0.")
    model.to(device).eval()
    n_train, n_items = int((data.split == "train").sum()), len(data)
    data = with_opacities(data, settings.opacity_copies, seed)
    if embeddings is None:
        embeddings = encode_all(model, data.images)
    elif len(embeddings) != n_items:
        raise InputError(f"{len(embeddings)} embeddings given for a fine-tuning set of {n_items} items.")
    elif len(data) > n_items:
        embeddings = torch.cat([embeddings.cpu(), encode_all(model, data.images[n_items:]).cpu()])
    test = data.subset("test")
    options = {
        "start": settings.prompt_start,
        "steps": settings.refine_steps,
        "margin": settings.refine_margin,
        "fuse": settings.head_fusion,
    }
    zero_auto = AutoPrompt(prior=prior, head=_head(embeddings, data, settings.head, seed), **options)
    test_embeddings = _split_embeddings(embeddings, data, "test").to(device)
    zero_shot = evaluate_prompts(model, _on(device, zero_auto), test_embeddings, test)
    result = finetune(
        model,
        data,
        prior,
        settings,
        device,
        seed=seed,
        on_epoch=on_epoch,
        embeddings=embeddings if settings.mode == "decoder" else None,
        checkpoint=checkpoint,
    )
    model.load_state_dict(result.state)
    model.eval()
    if settings.mode == "full":
        embeddings = encode_all(model, data.images)
        test_embeddings = _split_embeddings(embeddings, data, "test").to(device)
    head = _head(embeddings, data, settings.head, seed) if settings.mode == "full" else zero_auto.head.cpu()
    auto = _on(device, AutoPrompt(prior=prior, head=head, **options))
    finetuned = evaluate_prompts(model, auto, test_embeddings, test)
    val = data.subset("val")
    val_embeddings = _split_embeddings(embeddings, data, "val").to(device)
    reference = calibrate_qc(model, auto, val_embeddings, val.masks, settings.qc_bad_dice)
    val_rows, val_masks = qc_table(model, auto, reference, val_embeddings)
    rows, masks = qc_table(model, auto, reference, test_embeddings)
    summary = {
        "n_train": n_train,
        "n_train_painted": int((data.split == "train").sum()) - n_train,
        "n_val": int((data.split == "val").sum()),
        "n_test": len(test),
        "best_epoch": int(result.best["epoch"]),
        "default_prompt": f"{auto.start}_refined" if auto.steps else auto.start,
        "zero_shot_val_dice": result.zero_shot["val_dice"],
        "zero_shot_val_dice_prior_box": result.zero_shot["val_dice_prior_box"],
        "finetuned_val_dice": result.best["val_dice"],
        "finetuned_val_dice_prior_box": result.best["val_dice_prior_box"],
        "test": {"zero_shot": zero_shot, "finetuned": finetuned},
        "qc_calibration": reference.to_dict(),
        "qc_val": qc_validation(val_rows, val_masks, val.masks, settings.qc_bad_dice),
        "qc_test": qc_validation(rows, masks, test.masks, settings.qc_bad_dice),
    }
    log.info(
        "test Dice by prompt (fine-tuned): %s", {k: round(v["dice_mean"], 4) for k, v in finetuned.items()}
    )
    log.info(
        "QC calibrated on %d validation masks (estimated Dice %+.4f + %.4f x certainty, spread %.4f); "
        "on validation: %s; on test: %s",
        reference.n_calibration,
        reference.dice_offset,
        reference.dice_slope,
        reference.dice_spread,
        summary["qc_val"],
        summary["qc_test"],
    )
    return SegmenterBundle(model.cpu(), _on(torch.device("cpu"), auto), reference, summary), result
