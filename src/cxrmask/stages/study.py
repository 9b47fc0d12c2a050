"""Rules of the study's answers: paired contrasts, the claims' summary, saliency per cell, their figures."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cxrmask import study_figures
from cxrmask.atomic import atomic_path, write_csv
from cxrmask.claims import write_summary
from cxrmask.classify.backbones import build_backbone
from cxrmask.classify.cache import load_cache
from cxrmask.classify.train import TrainSettings, split_data
from cxrmask.errors import InputError
from cxrmask.figures import FigureStyle
from cxrmask.metrics import NO_FINDING
from cxrmask.saliency import cell_saliency, summarise
from cxrmask.stages.evaluate import seed_averaged
from cxrmask.torchutil import resolve_device, set_threads
from cxrmask.tracking import RunRecorder
from cxrmask.uncertainty import condition_contrasts

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _loaded(paths: Sequence[PathLike], cells: Sequence[Mapping[str, Any]]) -> list[tuple[dict, pd.DataFrame]]:
    if len(paths) != len(cells):
        raise InputError(f"{len(paths)} files for {len(cells)} cells: the rule's inputs and cells disagree.")
    return [(dict(cell), pd.read_csv(path)) for path, cell in zip(paths, cells, strict=True)]


def _style(style: Mapping[str, Any]) -> FigureStyle:
    return FigureStyle.from_config({k: v for k, v in style.items() if k != "gallery"})


def compare_bootstrap(
    predictions: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: Mapping[str, Any],
    pairs: Sequence[Sequence[str]],
    seed: int,
    out: PathLike,
) -> pd.DataFrame:
    """Paired patient-bootstrap contrasts (per cell, between conditions and backbones, against the best).

    Scores are averaged over seeds per backbone x condition first, as for the DeLong tests.
    """
    loaded = _loaded(predictions, cells)
    frames = {
        key: seed_averaged(loaded, *key)
        for key in dict.fromkeys((c["backbone"], c["mask"]) for c, _ in loaded)
    }
    table = condition_contrasts(
        frames, [*labels, NO_FINDING], pairs, settings["alpha"], settings["n_boot"], seed
    )
    write_csv(out, table)
    return table


def summarise_claims(
    contrasts: PathLike,
    delong: PathLike,
    training: PathLike,
    out_summary: PathLike,
    out_table: PathLike,
    alpha: float,
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """``summary.md`` and ``tables/claims.csv`` from the contrasts, DeLong and training tables."""
    return write_summary(
        contrasts,
        delong,
        training,
        out_summary,
        out_table,
        alpha=alpha,
        margin=settings["margin"],
        reference=settings["reference"],
    )


def saliency_classifier(
    images: PathLike,
    index: PathLike,
    masks: PathLike | None,
    lungs: PathLike,
    model: PathLike,
    out_table: PathLike,
    out_examples: PathLike,
    out_record: PathLike,
    backbone: str,
    condition: str,
    seed: int,
    labels: Sequence[str],
    settings: Mapping[str, Any],
    examples: int,
    device: str,
    threads: int,
) -> pd.DataFrame:
    """Grad-CAM of every label on one cell's test images; the share inside the lungs per image and label.

    ``lungs`` is a mask cache row-aligned with the image cache: the tight
    masks, or the ground-truth lungs where they are known (the demo).
    """
    set_threads(threads)
    train_settings = TrainSettings.from_config(settings)
    table = pd.read_csv(index)
    mask_cache = load_cache(masks) if masks else None
    test, test_table = split_data(load_cache(images), mask_cache, table, labels, "test")
    lung_rows = table[(table["split"] == "test") & table["ok"]]["cache_row"].to_numpy()
    lung_masks = torch.from_numpy(np.asarray(load_cache(lungs)[lung_rows]))
    saved = torch.load(model, map_location="cpu", weights_only=True)
    net = build_backbone(backbone, False, len(labels))
    net.load_state_dict(saved["model"])
    target = resolve_device(device)
    per_image, sample = cell_saliency(
        net.to(target), test, lung_masks, test_table, labels, train_settings, target, examples
    )
    wildcards = {"backbone": backbone, "mask": condition, "seed": seed}
    per_image = per_image.assign(**wildcards)
    write_csv(out_table, per_image)
    with atomic_path(out_examples) as tmp:
        np.savez_compressed(tmp, **sample)
    recorder = RunRecorder("saliency", wildcards, {"labels": list(labels), "examples": examples})
    summary = summarise(per_image).set_index("label")
    recorder.log_metrics({f"inside_lungs_{k}": float(v) for k, v in summary["inside_fraction"].items()})
    recorder.log_artifact(out_table)
    recorder.save(out_record)
    return per_image


def saliency_table(tables: Sequence[PathLike], out: PathLike) -> pd.DataFrame:
    """Per cell and label: mean share of saliency inside the lungs (all test images, and positives)."""
    frames = []
    for path in tables:
        per_image = pd.read_csv(path)
        cell = per_image.iloc[0][["backbone", "mask", "seed"]].to_dict()
        frames.append(summarise(per_image).assign(**cell))
    table = pd.concat(frames, ignore_index=True)
    table = table[
        ["backbone", "mask", "seed", *[c for c in table.columns if c not in ("backbone", "mask", "seed")]]
    ]
    write_csv(out, table)
    return table


def plot_saliency(table: PathLike, style: Mapping[str, Any], out: PathLike) -> None:
    """Share of Grad-CAM inside the lungs per label, condition and backbone."""
    study_figures.saliency_fractions(pd.read_csv(table), out, _style(style))


def plot_saliency_overlays(
    examples: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    backbone: str,
    label: str,
    style: Mapping[str, Any],
    out: PathLike,
) -> None:
    """Grad-CAM overlays of ``label`` for one backbone, a column per condition (first seed of each)."""
    samples: dict[str, dict[str, np.ndarray]] = {}
    for path, cell in zip(examples, cells, strict=True):
        if cell["backbone"] == backbone and cell["mask"] not in samples:
            with np.load(path, allow_pickle=False) as data:
                samples[cell["mask"]] = {key: data[key] for key in data.files}
    study_figures.saliency_overlays(samples, label, out, _style(style))


def plot_no_finding(
    predictions: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    backbone: str,
    style: Mapping[str, Any],
    out: PathLike,
) -> None:
    """No Finding score distributions of one backbone, a panel per condition (seed-averaged scores)."""
    loaded = _loaded(predictions, cells)
    frames = {}
    for condition in dict.fromkeys(c["mask"] for c, _ in loaded if c["backbone"] == backbone):
        frames[condition] = seed_averaged(loaded, backbone, condition)
    study_figures.no_finding_distributions(frames, out, _style(style), title=backbone)


def plot_training_efficiency(summaries: Sequence[PathLike], style: Mapping[str, Any], out: PathLike) -> None:
    """Time and epochs to the best validation AUROC per backbone and condition."""
    table = pd.DataFrame([json.loads(Path(p).read_text()) for p in summaries])
    study_figures.training_efficiency(table, out, _style(style))
