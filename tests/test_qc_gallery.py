"""Rule plot_qc_gallery: the lowest QC scores over all shards, worst first, titled with score and reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tinysam import write_lung_set

from cxrmask.config import FigureSettings
from cxrmask.imageio import read_mask, write_png
from cxrmask.stages.plot_qc_gallery import plot_qc_gallery


def test_the_worst_scored_masks_are_shown_worst_first_with_their_reason(tmp_path: Path) -> None:
    keys = write_lung_set(tmp_path, [(200, 180)] * 4, seed=3)
    names = [f"{key}.png" for key in keys]
    pd.DataFrame({"image": names, "path": [str(tmp_path / "images" / n) for n in names]}).to_csv(
        tmp_path / "index.csv", index=False
    )
    scores = [0.97, 0.41, 0.88, 0.12]
    reasons = [
        "",
        "lungs in one body (expected two)",
        "",
        "estimated Dice 0.120 < 0.93 + 0.010 (certainty 0.090, calibrated as +0.030 + 1.000 x certainty, "
        "spread 0.010); lungs in one body",
    ]
    for shard, part in enumerate((slice(0, 2), slice(2, 4))):
        folder = tmp_path / f"tight{shard}"
        for name in names[part]:
            write_png(folder / name, read_mask(tmp_path / "masks" / name))
        table = pd.DataFrame({"image": names[part], "qc_score": scores[part], "reason": reasons[part]})
        table.to_csv(tmp_path / f"shard{shard}.csv", index=False)
    figure = plot_qc_gallery(
        index=str(tmp_path / "index.csv"),
        tables=[str(tmp_path / "shard0.csv"), str(tmp_path / "shard1.csv")],
        tight=[str(tmp_path / "tight0"), str(tmp_path / "tight1")],
        loose=[str(tmp_path / "tight0"), str(tmp_path / "tight1")],
        truth=str(tmp_path / "masks"),
        figure=str(tmp_path / "qc.png"),
        style=FigureSettings(dpi=40, gallery=3),
    )
    assert (tmp_path / "qc.png").stat().st_size > 0
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == [
        f"{names[3]}\nQC 0.12: estimated Dice 0.120 < 0.93 + 0.010",
        f"{names[1]}\nQC 0.41: lungs in one body",
        f"{names[2]}\nQC 0.88: not flagged",
    ]
