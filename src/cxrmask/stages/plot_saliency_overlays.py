"""Rule plot_saliency_overlays: Grad-CAM over test images of one backbone, a column per condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cxrmask import study_figures
from cxrmask.config import FigureSettings


def plot_saliency_overlays(
    examples: Sequence[str],
    figure: str,
    cells: Sequence[Mapping[str, Any]],
    architecture: str,
    label: str,
    style: FigureSettings,
) -> None:
    """Overlays of ``label``'s Grad-CAM, the first seed of each condition."""
    samples: dict[str, dict[str, np.ndarray]] = {}
    for path, cell in zip(examples, cells, strict=True):
        if cell["backbone"] == architecture and cell["mask"] not in samples:
            with np.load(path, allow_pickle=False) as data:
                samples[cell["mask"]] = {key: data[key] for key in data.files}
    study_figures.saliency_overlays(samples, label, figure, style)
