"""Rule finetune_medsam: fine-tune the segmenter on the lung masks into a bundle with its prompt and QC."""

from __future__ import annotations

import logging

import pandas as pd

from cxrmask.atomic import write_csv, write_json
from cxrmask.config import FinetuneSettings, SegmenterSettings
from cxrmask.resume import resume_path
from cxrmask.segment.dataset import SegData
from cxrmask.segment.fit import fit_segmenter
from cxrmask.segment.models import load_segmenter
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)


def _test_metrics(summary: dict) -> dict[str, float]:
    """The test table flattened for MLflow: test_<model>_<prompt>_<metric>."""
    return {
        f"test_{model}_{prompt}_{metric}": value
        for model, by_prompt in summary["test"].items()
        for prompt, numbers in by_prompt.items()
        for metric, value in numbers.items()
        if metric != "n"
    }


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
) -> dict:
    """Fine-tune from ``start_weights``; save the bundle (weights, prompt, QC reference), history, summary
    (zero-shot vs fine-tuned on the test split per prompt, QC against true Dice) and run record.

    ``checkpoint`` is the starting weights as a file Snakemake tracks (None
    for LiteMedSAM's bundled weights); ``start_weights`` is what loads them.
    A per-epoch resume file beside ``model`` (``cxrmask.resume``) lets a killed job continue.
    """
    set_threads(threads)
    seed_everything(seed)
    recorder = RunRecorder(
        "finetune_medsam",
        {},
        {"segmenter": segmenter.model_dump(), "finetune": settings.model_dump(), "seed": seed},
    )
    network = load_segmenter(segmenter.spec, start_weights)
    resume = resume_path(model)
    bundle, result = fit_segmenter(
        network,
        SegData.load(data),
        BoxPrior.load(prior),
        settings,
        resolve_device(device),
        seed=seed,
        checkpoint=resume,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
    )
    scores = dict(bundle.summary)
    if scores["finetuned_val_dice"] <= scores["zero_shot_val_dice"]:
        log.warning("fine-tuning did not beat the zero-shot model on val Dice: keeping the zero-shot weights")
    bundle.save(model)
    write_csv(history, pd.DataFrame(result.history))
    write_json(summary, scores)
    recorder.log_metrics(
        {
            **_test_metrics(scores),
            **{
                f"qc_{split}_{k}": v
                for split in ("val", "test")
                for k, v in scores[f"qc_{split}"].items()
                if v is not None
            },
            "qc_dice_offset": scores["qc_calibration"]["dice_offset"],
            "qc_dice_slope": scores["qc_calibration"]["dice_slope"],
            "qc_dice_spread": scores["qc_calibration"]["dice_spread"],
        }
    )
    recorder.log_artifact(history)
    recorder.log_artifact(summary)
    recorder.save(record)
    resume.unlink(missing_ok=True)
    return scores
