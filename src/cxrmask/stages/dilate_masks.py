"""Rule dilate_masks: the loose condition, one shard's tight masks dilated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from cxrmask.atomic import atomic_dir, write_csv
from cxrmask.config import LooseSettings
from cxrmask.imageio import read_mask, write_png
from cxrmask.segment.postprocess import dice, dilate, dilation_radius


def dilate_masks(
    tight: str, tight_table: str, truth: str | None, masks: str, table: str, settings: LooseSettings
) -> pd.DataFrame:
    """Dilate every tight mask of a shard by the configured radius; with ``truth``, the lung it covers."""
    names = pd.read_csv(tight_table)["image"]
    rows = []
    with atomic_dir(masks) as tmp:
        for name in tqdm(names, desc="dilate", unit="mask"):
            tight_mask = read_mask(Path(tight) / name)
            radius = dilation_radius(settings.radius, settings.units, tight_mask.shape[1])
            loose = dilate(tight_mask, radius)
            write_png(tmp / name, loose)
            row = {"image": name, "radius_px": radius, "lung_fraction": float(loose.mean())}
            if truth is not None and (Path(truth) / name).is_file():
                true_lungs = read_mask(Path(truth) / name)
                row["truth_coverage"] = float(
                    np.logical_and(loose, true_lungs).sum() / max(true_lungs.sum(), 1)
                )
                row["dice"] = dice(loose, true_lungs)
            rows.append(row)
    columns = ["image", "radius_px", "lung_fraction"] + (["truth_coverage", "dice"] if truth else [])
    qc = pd.DataFrame(rows, columns=columns)
    write_csv(table, qc)
    return qc
