"""Writing the demo set in the real sources' on-disk formats: images, masks, label table, split lists."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from cxrmask.config import DemoSettings
from cxrmask.demo.cohort import NihRecord
from cxrmask.demo.render import Case, render_case
from cxrmask.nih import HEADER_PREFIX

NIH_HEADER = f"{HEADER_PREFIX},OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
"""The real ``Data_Entry`` header, geometry columns included (NIH's reader checks only its prefix)."""
SPLIT_LISTS = {"train_val": "train_val_list.txt", "test": "test_list.txt", "shifted": "shifted_list.txt"}
"""The split-list file of each demo split, in the format of NIH's two lists."""


def _save(image: np.ndarray, path: Path, fmt: str) -> None:
    """Save an 8-bit grey array (PIL mode L); PNG at a moderate compression level to keep generation fast."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"compress_level": 3} if fmt == "PNG" else {}
    Image.fromarray(image, mode="L").save(path, format=fmt, **options)


@dataclass(frozen=True)
class _DrawJob:
    """One image to draw and where its file goes; its true lung mask goes to the matching mask path."""

    case: Case
    size: int
    image_path: Path
    fmt: str

    @property
    def mask_path(self) -> Path:
        """Airlangga masks sit in ``masks/`` beside ``images/``; NIH masks in ``nih_lung_masks/``."""
        if self.fmt == "BMP":
            return self.image_path.parent.parent / "masks" / self.image_path.name
        return self.image_path.parent.parent.parent / "nih_lung_masks" / self.image_path.name


def _draw_job(job: _DrawJob) -> None:
    """Draw one image and write it and its lung mask (runs in a worker process)."""
    drawn = render_case(job.case, job.size)
    _save(drawn.image, job.image_path, job.fmt)
    _save(drawn.lungs.astype(np.uint8) * 255, job.mask_path, job.fmt)


def _draw_all(jobs: list[_DrawJob], workers: int) -> None:
    """Draw every job, in ``workers`` processes when more than one.

    Each image depends only on its own case, so the files are the same
    whatever the number of workers or the order they finish in.
    """
    progress = tqdm(total=len(jobs), desc="demo images", unit="img")
    if workers <= 1:
        for job in jobs:
            _draw_job(job)
            progress.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_draw_job, jobs, chunksize=4):
                progress.update()
    progress.close()


def _table(records: list[NihRecord]) -> str:
    """The Data_Entry CSV text, rows in image-name order like the real table."""
    lines = [NIH_HEADER]
    for r in sorted(records, key=lambda rec: rec.name):
        width, height, spacing = r.geometry
        lines.append(
            f"{r.name},{'|'.join(r.labels)},{r.follow_up},{r.patient_id},{r.age},{r.sex},{r.view},"
            f"{width},{height},{spacing},{spacing}"
        )
    return "\n".join(lines) + "\n"


def write_dataset(
    root: Path,
    seg_cases: list[tuple[str, Case]],
    records: list[NihRecord],
    settings: DemoSettings,
    workers: int,
) -> None:
    """Draw and write every file of the demo set under ``root`` (an empty folder).

    Layout: ``airlangga/{Normal,Abnormal}/{images,masks}/{id}.bmp``,
    ``nih/images/*.png``, ``nih/Data_Entry_2017_v2020.csv``,
    ``nih/train_val_list.txt``, ``nih/test_list.txt``, ``nih/shifted_list.txt`` (the test images'
    shifted twins; empty without them) and ``nih_lung_masks/*.png``.
    """
    seg_dir = root / "airlangga"
    jobs = [
        _DrawJob(case, settings.seg_size, seg_dir / group / "images" / f"{index + 1:04d}.bmp", "BMP")
        for index, (group, case) in enumerate(seg_cases)
    ]
    jobs += [_DrawJob(r.case, settings.nih_size, root / "nih" / "images" / r.name, "PNG") for r in records]
    _draw_all(jobs, workers)
    (root / "nih" / "Data_Entry_2017_v2020.csv").write_text(_table(records))
    for split, filename in SPLIT_LISTS.items():
        names = sorted(r.name for r in records if r.split == split)
        (root / "nih" / filename).write_text("".join(f"{name}\n" for name in names))
