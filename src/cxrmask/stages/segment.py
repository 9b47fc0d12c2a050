"""Rules of the segmentation stage: fine-tune, generate masks (sharded), dilate."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from cxrmask.atomic import atomic_dir, write_csv, write_json
from cxrmask.config import settings_from
from cxrmask.imageio import read_mask, write_png
from cxrmask.segment.dataset import SegData
from cxrmask.segment.finetune import FinetuneSettings, finetune
from cxrmask.segment.inference import InferenceSettings, generate_masks, shard
from cxrmask.segment.models import arch_spec, load_segmenter, save_segmenter
from cxrmask.segment.postprocess import dice, dilate, dilation_radius
from cxrmask.segment.prompts import BoxPrior
from cxrmask.torchutil import resolve_device, seed_everything, set_threads
from cxrmask.tracking import RunRecorder

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def finetune_segmenter(
    seg_data: PathLike,
    prior: PathLike,
    checkpoint: str | None,
    out_model: PathLike,
    out_history: PathLike,
    out_summary: PathLike,
    out_record: PathLike,
    segmenter: Mapping[str, Any],
    settings: Mapping[str, Any],
    device: str,
    seed: int,
    threads: int,
) -> dict[str, float]:
    """Fine-tune the segmenter; save best weights, history, zero-shot vs fine-tuned Dice, run record."""
    set_threads(threads)
    seed_everything(seed)
    recorder = RunRecorder(
        "finetune_medsam", {}, {"segmenter": segmenter, "finetune": settings, "seed": seed}
    )
    spec = arch_spec(segmenter["arch"], segmenter.get("image_size"), segmenter.get("encoder"))
    model = load_segmenter(spec, checkpoint)
    data, box_prior = SegData.load(seg_data), BoxPrior.load(prior)
    result = finetune(
        model,
        data,
        box_prior,
        FinetuneSettings.from_config(settings),
        resolve_device(device),
        seed=seed,
        on_epoch=lambda row: recorder.log_metrics(
            {k: v for k, v in row.items() if k != "epoch"}, row["epoch"]
        ),
    )
    summary = {
        "zero_shot_val_dice": result.zero_shot["val_dice"],
        "zero_shot_val_dice_prior_box": result.zero_shot["val_dice_prior_box"],
        "finetuned_val_dice": result.best["val_dice"],
        "finetuned_val_dice_prior_box": result.best["val_dice_prior_box"],
        "best_epoch": result.best["epoch"],
        "n_train": int((data.split == "train").sum()),
        "n_val": int((data.split == "val").sum()),
    }
    if summary["finetuned_val_dice"] <= summary["zero_shot_val_dice"]:
        log.warning("fine-tuning did not beat the zero-shot model on val Dice: keeping the zero-shot weights")
    model.load_state_dict(result.state)
    save_segmenter(model, out_model, {"summary": summary, "source_checkpoint": str(checkpoint)})
    write_csv(out_history, pd.DataFrame(result.history))
    write_json(out_summary, summary)
    recorder.log_metrics(summary)
    recorder.log_artifact(out_history)
    recorder.log_artifact(out_summary)
    recorder.save(out_record)
    return summary


def masks(
    model_path: PathLike,
    prior: PathLike,
    index: PathLike,
    shard_index: int,
    out_dir: PathLike,
    out_table: PathLike,
    out_record: PathLike,
    segmenter: Mapping[str, Any],
    settings: Mapping[str, Any],
    device: str,
    threads: int,
    truth_dir: PathLike | None = None,
) -> pd.DataFrame:
    """Segment one shard of the curated images (those that decoded) into tight lung masks."""
    set_threads(threads)
    shards = settings["shards"]
    recorder = RunRecorder(
        "generate_masks", {"shard": shard_index}, {"segmenter": segmenter, "segment": settings}
    )
    table = pd.read_csv(index)
    table = table[table["ok"]].sort_values("image")
    items = shard(list(zip(table["image"], table["path"], strict=True)), shard_index, shards)
    spec = arch_spec(segmenter["arch"], segmenter.get("image_size"), segmenter.get("encoder"))
    model = load_segmenter(spec, model_path)
    inference = settings_from(InferenceSettings, "segment", settings, ignore=("shards",))
    with atomic_dir(out_dir) as tmp:
        qc = generate_masks(
            model,
            [(n, Path(p)) for n, p in items],
            BoxPrior.load(prior),
            tmp,
            inference,
            resolve_device(device),
            truth_dir,
        )
    write_csv(out_table, qc)
    metrics = {"images": len(qc), "fallback": int(qc["fallback"].sum()) if len(qc) else 0}
    if len(qc):
        metrics["mean_lung_fraction"] = float(qc["lung_fraction"].mean())
    if "dice" in qc and qc["dice"].notna().any():
        metrics["mean_dice_vs_truth"] = float(qc["dice"].mean())
        log.info("shard %d: mean Dice against ground truth %.4f", shard_index, metrics["mean_dice_vs_truth"])
    recorder.log_metrics(metrics)
    recorder.log_artifact(out_table)
    recorder.save(out_record)
    return qc


def loose_masks(
    tight_dir: PathLike,
    tight_table: PathLike,
    out_dir: PathLike,
    out_table: PathLike,
    settings: Mapping[str, Any],
    truth_dir: PathLike | None = None,
) -> pd.DataFrame:
    """Dilate every tight mask of a shard by the configured radius (the loose condition)."""
    table = pd.read_csv(tight_table)
    rows = []
    with atomic_dir(out_dir) as tmp:
        for name in tqdm(table["image"], desc="dilate", unit="mask"):
            tight = read_mask(Path(tight_dir) / name)
            radius = dilation_radius(settings["radius"], settings["units"], tight.shape[1])
            loose = dilate(tight, radius)
            write_png(tmp / name, loose)
            row = {"image": name, "radius_px": radius, "lung_fraction": float(loose.mean())}
            if truth_dir is not None and (Path(truth_dir) / name).is_file():
                truth = read_mask(Path(truth_dir) / name)
                row["truth_coverage"] = float(np.logical_and(loose, truth).sum() / max(truth.sum(), 1))
                row["dice"] = dice(loose, truth)
            rows.append(row)
    columns = ["image", "radius_px", "lung_fraction"] + (["truth_coverage", "dice"] if truth_dir else [])
    qc = pd.DataFrame(rows, columns=columns)
    write_csv(out_table, qc)
    return qc
