"""Rules of the evaluation stage: AUROC tables, DeLong comparisons, figures, report, MLflow."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrmask import figures
from cxrmask.atomic import write_csv
from cxrmask.errors import InputError
from cxrmask.imageio import read_grey, read_mask
from cxrmask.nih import NO_FINDING
from cxrmask.segment.preprocess import resize_grey, resize_mask
from cxrmask.stats import delong_test, holm
from cxrmask.uncertainty import auroc_intervals

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
CELL_KEYS = ("backbone", "mask", "seed")


def _cells(paths: Sequence[PathLike], cells: Sequence[Mapping[str, Any]]) -> list[tuple[dict, pd.DataFrame]]:
    if len(paths) != len(cells):
        raise InputError(f"{len(paths)} prediction files for {len(cells)} cells.")
    return [(dict(cell), pd.read_csv(path)) for path, cell in zip(paths, cells, strict=True)]


def auroc_table(
    predictions: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    out: PathLike,
) -> pd.DataFrame:
    """Per-label AUROC with DeLong CIs and macro AUROC with a patient-bootstrap CI for every cell."""
    frames = []
    for cell, frame in _cells(predictions, cells):
        table = auroc_intervals(frame, [*labels, NO_FINDING], settings["alpha"], settings["n_boot"], seed)
        frames.append(table.assign(**cell))
    columns = ["label", "auroc", "ci_low", "ci_high", "ci_method", "n_pos", "n_neg", "n_patients"]
    table = pd.concat(frames)[[*CELL_KEYS, *columns]]
    write_csv(out, table)
    return table


def training_table(summaries: Sequence[PathLike], out: PathLike) -> pd.DataFrame:
    """Training time and convergence per cell (the "tight masks train faster" claim)."""
    table = pd.DataFrame([json.loads(Path(p).read_text()) for p in summaries])
    write_csv(out, table)
    return table


def seed_averaged(
    cells: list[tuple[dict, pd.DataFrame]], backbone: str, condition: str
) -> pd.DataFrame | None:
    """Mean scores over seeds of one backbone x condition, aligned by image (None when not trained)."""
    frames = [f.set_index("image") for c, f in cells if c["backbone"] == backbone and c["mask"] == condition]
    if not frames:
        return None
    first = frames[0]
    scores = [c for c in first.columns if c.startswith("score_")]
    for frame in frames[1:]:
        if not frame.index.equals(first.index):
            raise InputError(f"{backbone}/{condition}: seeds were tested on different images.")
    mean = sum(frame[scores] for frame in frames) / len(frames)
    return pd.concat([first.drop(columns=scores), mean], axis=1).reset_index()


def delong_table(
    predictions: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    settings: Mapping[str, Any],
    alpha: float,
    out: PathLike,
) -> pd.DataFrame:
    """Paired DeLong tests between mask conditions per backbone and label; Holm within each backbone.

    With several seeds, each condition's scores are averaged over seeds first
    (a seed ensemble), so the test compares conditions, not seed noise.
    """
    loaded = _cells(predictions, cells)
    rows = []
    for backbone in dict.fromkeys(c["backbone"] for c, _ in loaded):
        family = []
        for a, b in settings["pairs"]:
            frame_a, frame_b = seed_averaged(loaded, backbone, a), seed_averaged(loaded, backbone, b)
            if frame_a is None or frame_b is None:
                continue
            merged = frame_a.merge(frame_b, on="image", suffixes=("_a", "_b"), validate="one_to_one")
            for label in [*labels, NO_FINDING]:
                row = {"backbone": backbone, "label": label, "condition_a": a, "condition_b": b}
                try:
                    result = delong_test(
                        merged[f"true_{label}_a"],
                        merged[f"score_{label}_a"],
                        merged[f"score_{label}_b"],
                        alpha=alpha,
                    )
                    row.update(result.as_dict())
                except InputError as exc:
                    log.warning("%s %s %s vs %s: %s", backbone, label, a, b, exc)
                    row.update(p_value=np.nan, auc_a=np.nan, auc_b=np.nan, delta=np.nan, z=np.nan)
                family.append(row)
        adjusted = holm([row["p_value"] for row in family]) if family else []
        for row, p in zip(family, adjusted, strict=True):
            row["p_holm"] = float(p)
            row["significant"] = bool(p < alpha)
        rows.extend(family)
    columns = [
        "backbone",
        "label",
        "condition_a",
        "condition_b",
        "auc_a",
        "auc_b",
        "delta",
        "se",
        "z",
        "p_value",
    ]
    columns += ["p_holm", "significant", "ci_low", "ci_high", "n_pos", "n_neg"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    write_csv(out, table)
    return table


def roc_figure(
    predictions: Sequence[PathLike],
    cells: Sequence[Mapping[str, Any]],
    backbone: str,
    labels: Sequence[str],
    style: Mapping[str, Any],
    out: PathLike,
) -> None:
    """ROC curves of one backbone, a curve per mask condition (seed-averaged scores)."""
    loaded = _cells(predictions, cells)
    frames = {}
    for condition in figures.CONDITIONS:
        frame = seed_averaged(loaded, backbone, condition)
        if frame is not None:
            frames[condition] = frame
    figures.roc_curves(frames, [*labels, NO_FINDING], out, _style(style), title=backbone)


def _style(style: Mapping[str, Any]) -> figures.FigureStyle:
    return figures.FigureStyle.from_config({k: v for k, v in style.items() if k != "gallery"})


def heatmap_figure(auroc: PathLike, style: Mapping[str, Any], out: PathLike) -> None:
    """AUROC heatmap, backbone x condition, one panel per label."""
    figures.auroc_heatmap(pd.read_csv(auroc), out, _style(style))


def delta_figure(delong: PathLike, style: Mapping[str, Any], out: PathLike) -> None:
    """ΔAUROC between conditions with Holm-corrected DeLong significance."""
    figures.delta_auroc(pd.read_csv(delong), out, _style(style))


def training_figure(
    histories: Sequence[PathLike], cells: Sequence[Mapping], backbone: str, style, out
) -> None:
    """Validation macro AUROC and training loss per epoch for one backbone's conditions (first seed)."""
    frames = {}
    for path, cell in zip(histories, cells, strict=True):
        if cell["backbone"] == backbone and cell["mask"] not in frames:
            frames[cell["mask"]] = pd.read_csv(path)
    figures.training_curves(frames, out, _style(style))


def gallery_figure(
    index: PathLike,
    tight_dirs: Sequence[PathLike],
    loose_dirs: Sequence[PathLike],
    truth_dir: PathLike | None,
    style: Mapping[str, Any],
    out: PathLike,
    size: int = 256,
) -> None:
    """Test images spread over the split, with tight and loose masks (and ground truth when known)."""
    table = pd.read_csv(index)
    table = table[table["ok"] & (table["split"] == "test")].sort_values("image")
    count = min(style.get("gallery", 8), len(table))
    picks = table.iloc[np.linspace(0, len(table) - 1, count).round().astype(int)] if count else table
    tight = {p.name: p for d in tight_dirs for p in Path(d).glob("*.png")}
    loose = {p.name: p for d in loose_dirs for p in Path(d).glob("*.png")}
    samples = []
    for name, path in zip(picks["image"], picks["path"], strict=True):
        sample = {
            "image": resize_grey(read_grey(path), size),
            "tight": resize_mask(read_mask(tight[name]), size),
            "loose": resize_mask(read_mask(loose[name]), size),
            "title": name,
        }
        if truth_dir and (Path(truth_dir) / name).is_file():
            sample["truth"] = resize_mask(read_mask(Path(truth_dir) / name), size)
        samples.append(sample)
    figures.mask_gallery(samples, out, _style(style))
