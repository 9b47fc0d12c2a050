"""Rule finetune_medsam: fine-tune the segmenter on the lung masks."""

from __future__ import annotations

import logging

import pandas as pd

from cxrmask.atomic import write_csv, write_json
from cxrmask.config import FinetuneSettings, SegmenterSettings
from cxrmask.segment.dataset import SegData
from cxrmask.segment.finetune import finetune
from cxrmask.segment.models import load_segmenter, save_segmenter
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)


def finetune_medsam(
    data: str,
    prior: str,
    checkpoint: str | None,
    model: str,
    history: str,
    summary: str,
    record: str,
    start_weights: str | None,
    segmenter: SegmenterSettings,
    settings: FinetuneSettings,
    device: str,
    seed: int,
    threads: int,
) -> dict[str, float]:
    """Fine-tune from ``start_weights``; save the best weights, history, zero-shot vs fine-tuned Dice, record.

    ``checkpoint`` is the starting weights as a file Snakemake tracks (None
    for LiteMedSAM's bundled weights); ``start_weights`` is what loads them.
    """
    set_threads(threads)
    seed_everything(seed)
    recorder = RunRecorder(
        "finetune_medsam",
        {},
        {"segmenter": segmenter.model_dump(), "finetune": settings.model_dump(), "seed": seed},
    )
    network = load_segmenter(segmenter.spec, start_weights)
    seg, box_prior = SegData.load(data), BoxPrior.load(prior)
    result = finetune(
        network,
        seg,
        box_prior,
        settings,
        resolve_device(device),
        seed=seed,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
    )
    scores = {
        "zero_shot_val_dice": result.zero_shot["val_dice"],
        "zero_shot_val_dice_prior_box": result.zero_shot["val_dice_prior_box"],
        "finetuned_val_dice": result.best["val_dice"],
        "finetuned_val_dice_prior_box": result.best["val_dice_prior_box"],
        "best_epoch": result.best["epoch"],
        "n_train": int((seg.split == "train").sum()),
        "n_val": int((seg.split == "val").sum()),
    }
    if scores["finetuned_val_dice"] <= scores["zero_shot_val_dice"]:
        log.warning("fine-tuning did not beat the zero-shot model on val Dice: keeping the zero-shot weights")
    network.load_state_dict(result.state)
    save_segmenter(network, model, {"summary": scores, "source_checkpoint": str(start_weights)})
    write_csv(history, pd.DataFrame(result.history))
    write_json(summary, scores)
    recorder.log_metrics(scores)
    recorder.log_artifact(history)
    recorder.log_artifact(summary)
    recorder.save(record)
    return scores
