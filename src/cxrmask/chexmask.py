"""CheXmask's anatomical masks: any of its CSVs read as a stream, its run-length strings decoded.

CheXmask (Gaggion et al., Scientific Data 2024; PhysioNet doi:10.13026/dx54-8351)
gives HybridGNet lung and heart masks for every image of ChestX-ray8 (NIH),
CheXpert, MIMIC-CXR-JPG, PadChest and VinDr-CXR, each with a quality
estimate (reverse classification accuracy, RCA). It is the one independent
reference for lungs on NIH itself.

Its files are large (NIH's is about 2 GB for 112,120 rows: three run-length
strings and 120 landmarks a row), and a study needs the rows of its curated
images only, so the file is read in chunks and every other row is dropped
as it arrives; memory stays near one chunk whatever the file's size
(``benchmarks/bench_chexmask.py``).

The format's quirks, as published:

- the id column is named after the source collection (:data:`ID_COLUMNS`);
- columns come in different orders, so every column is read by name;
- ``Height`` and ``Width`` are blank in some rows: their runs fit the
  database's preprocessed 1024 x 1024 grid (:data:`GRID`); where a column
  has blanks, its other sizes are written as floats ("1024.0");
- in those same rows of PadChest's file the two RCA values are swapped (the
  one named Max is below the one named Mean). A maximum cannot lie below a
  mean, so each row's larger value is its Max; swapped rows are counted in
  the log.

Runs are ``start length`` pairs, starts 1-based, over the image flattened
row by row (C order), as the database's own decoder reads them. "Left" and
"Right" are the patient's sides; a study's lung mask is their union.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from cxrmask.atomic import atomic_path
from cxrmask.errors import InputError

log = logging.getLogger(__name__)

ID_COLUMNS = {
    "Image Index": "ChestX-ray8 (NIH)",
    "ImageID": "PadChest",
    "Path": "CheXpert",
    "dicom_id": "MIMIC-CXR-JPG",
    "image_id": "VinDr-CXR",
}
RCA_MEAN, RCA_MAX = "Dice RCA (Mean)", "Dice RCA (Max)"
LEFT_LUNG, RIGHT_LUNG, HEART, LANDMARKS = "Left Lung", "Right Lung", "Heart", "Landmarks"
HEIGHT, WIDTH = "Height", "Width"
REQUIRED = (RCA_MEAN, RCA_MAX, LEFT_LUNG, RIGHT_LUNG, HEIGHT, WIDTH)
GRID = 1024
"""Side of the database's preprocessed images: the grid of rows whose size is blank."""
N_LANDMARKS = 120
LANDMARK_PARTS = {"right_lung": slice(0, 44), "left_lung": slice(44, 94), "heart": slice(94, 120)}
"""Landmark indices of each outline (the patient's right lung first)."""
CHUNK_ROWS = 1000


def decode_rle(runs: str, height: int, width: int, where: str = "run string") -> np.ndarray:
    """A boolean (height, width) mask from CheXmask's run-length string (1-based starts, C order).

    ``where`` names the string in errors (image and column), since a run
    past the grid means the size or the file is wrong, not the mask.
    """
    values = np.array(runs.split(), dtype=np.int64) if isinstance(runs, str) else np.zeros(0, np.int64)
    if len(values) % 2:
        raise InputError(f"{where}: {len(values)} numbers, not start/length pairs; the file is damaged.")
    starts, lengths = values[0::2] - 1, values[1::2]
    ends = starts + lengths
    size = height * width
    if len(values) and (starts.min() < 0 or lengths.min() < 0 or ends.max() > size):
        raise InputError(
            f"{where}: a run reaches pixel {int(ends.max())} of a {height} x {width} grid ({size} pixels); "
            "the row's Height and Width do not fit its masks."
        )
    edges = np.zeros(size + 1, dtype=np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    return (np.cumsum(edges[:size]) > 0).reshape(height, width)


def encode_rle(mask: np.ndarray) -> str:
    """CheXmask's run-length string of a boolean mask (the inverse of :func:`decode_rle`)."""
    flat = np.concatenate([[False], np.asarray(mask, dtype=bool).ravel(), [False]])
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = changes[0::2], changes[1::2]
    pairs = np.stack([starts + 1, ends - starts], axis=1)
    return " ".join(map(str, pairs.ravel()))


@dataclass(frozen=True)
class ChexmaskRow:
    """One image's masks as the file holds them (strings until asked for), its size and RCA."""

    image: str
    rca_mean: float
    rca_max: float
    height: int
    width: int
    left_lung: str
    right_lung: str
    heart: str | None = None
    landmarks: str | None = None

    def lungs(self) -> np.ndarray:
        """Both lungs, one boolean mask at the row's size."""
        left = decode_rle(self.left_lung, self.height, self.width, f"{self.image}: {LEFT_LUNG}")
        right = decode_rle(self.right_lung, self.height, self.width, f"{self.image}: {RIGHT_LUNG}")
        return left | right

    def heart_mask(self) -> np.ndarray:
        """The heart, for whoever wants it; an InputError where the file was read without it."""
        if self.heart is None:
            raise InputError(f"{self.image}: the heart was not read; pass heart=True to read_chexmask.")
        return decode_rle(self.heart, self.height, self.width, f"{self.image}: {HEART}")

    def landmark_points(self) -> np.ndarray:
        """The 120 (x, y) outline points (:data:`LANDMARK_PARTS` says which outline each belongs to)."""
        if self.landmarks is None:
            raise InputError(f"{self.image}: landmarks were not read; pass landmarks=True to read_chexmask.")
        values = np.array(self.landmarks.split(","), dtype=np.float64)
        if len(values) != 2 * N_LANDMARKS:
            raise InputError(f"{self.image}: {len(values)} landmark numbers, not {2 * N_LANDMARKS}.")
        return values.reshape(N_LANDMARKS, 2)


def write_chexmask(path: str | os.PathLike[str], masks: Mapping[str, np.ndarray], rca: float = 1.0) -> None:
    """Write lung masks (image id -> boolean (H, W) union of both lungs) as a CheXmask NIH file, atomically.

    Each mask's lungs are split at the image's vertical midline into the
    patient's right (the image's left) and left lung. ``rca`` is written as
    both RCA values: 1 for masks that are ground truth. Landmarks and heart
    stay blank, as a reader that asks for neither never reads them.
    """
    columns = ["Image Index", RCA_MEAN, RCA_MAX, LANDMARKS, LEFT_LUNG, RIGHT_LUNG, HEART, HEIGHT, WIDTH]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for image, mask in masks.items():
            mask = np.asarray(mask, dtype=bool)
            middle = mask.shape[1] // 2
            right, left = mask.copy(), mask.copy()
            right[:, middle:] = False
            left[:, :middle] = False
            writer.writerow([image, rca, rca, "", encode_rle(left), encode_rle(right), "", *mask.shape])


def id_column(columns: Collection[str], path: str | os.PathLike[str]) -> str:
    """The id column of a CheXmask file; an InputError naming what is missing for any other CSV."""
    ids = [name for name in ID_COLUMNS if name in columns]
    missing = [name for name in REQUIRED if name not in columns]
    if len(ids) != 1 or missing:
        found = ids[0] if len(ids) == 1 else f"one of {list(ID_COLUMNS)}"
        lacking = missing if len(ids) == 1 else [found, *missing]
        raise InputError(
            f"{path}: not a CheXmask CSV: it lacks {lacking} (its columns: {list(columns)[:12]}). "
            "Give a file of the CheXmask database (PhysioNet doi:10.13026/dx54-8351)."
        )
    return ids[0]


def read_chexmask(
    path: str | os.PathLike[str],
    images: Collection[str] | None = None,
    heart: bool = False,
    landmarks: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, ChexmaskRow]:
    """Rows of ``path`` (a CheXmask CSV, optionally gzipped) by image id, only those of ``images``.

    The file is read ``chunk_rows`` rows at a time and rows of other images
    are dropped at once, so memory follows the rows kept, not the file. The
    heart and the landmarks are read only when asked for. Ids listed twice
    are an InputError naming them; with ``images``, a file matching none of
    them is one too, and one matching some logs how many and which are missing.
    """
    header = pd.read_csv(path, nrows=0).columns
    id_name = id_column(header, path)
    wanted = None if images is None else set(images)
    columns = [id_name, *REQUIRED, *([HEART] if heart else []), *([LANDMARKS] if landmarks else [])]
    rows: dict[str, ChexmaskRow] = {}
    duplicates: set[str] = set()
    swapped = 0
    # Only the id is forced to text: forcing every column costs several times the parse (the runs stay
    # text anyway, the numbers parse as numbers); blanks stay "" rather than NaN.
    reader = pd.read_csv(
        path, usecols=columns, dtype={id_name: str}, keep_default_na=False, chunksize=chunk_rows
    )
    for chunk in tqdm(reader, desc=f"read {os.path.basename(path)}", unit="chunk"):
        if wanted is not None:
            chunk = chunk[chunk[id_name].isin(wanted)]
        # usecols keeps the file's column order, which differs between collections: put them in ours.
        for record in chunk[columns].itertuples(index=False):
            values = dict(zip(columns, record, strict=True))
            row, was_swapped = _row(values, id_name, path)
            swapped += was_swapped
            if row.image in rows:
                duplicates.add(row.image)
            rows[row.image] = row
    if duplicates:
        listed = sorted(duplicates)
        raise InputError(
            f"{path}: {len(listed)} image ids are listed more than once ({listed[:5]}); "
            "a CheXmask file has one row an image: give the file as published."
        )
    if swapped:
        log.info("%s: %d rows give RCA Max below Mean; read as swapped (Max is the larger)", path, swapped)
    if wanted is not None:
        _report_matches(path, wanted, rows)
    return rows


def _row(values: dict[str, Any], id_name: str, path: str | os.PathLike[str]) -> tuple[ChexmaskRow, bool]:
    """One record as a row: sizes defaulted to the grid, RCA put in order; whether RCA was swapped."""
    image = values[id_name]
    try:
        height, width = _side(values[HEIGHT]), _side(values[WIDTH])
        first, second = float(values[RCA_MEAN]), float(values[RCA_MAX])
    except ValueError as exc:
        raise InputError(f"{path}: {image}: {exc}; the file is damaged or not CheXmask's.") from exc
    row = ChexmaskRow(
        image=image,
        rca_mean=min(first, second),
        rca_max=max(first, second),
        height=height,
        width=width,
        left_lung=str(values[LEFT_LUNG]),
        right_lung=str(values[RIGHT_LUNG]),
        heart=None if HEART not in values else str(values[HEART]),
        landmarks=None if LANDMARKS not in values else str(values[LANDMARKS]),
    )
    return row, second < first


def _side(value: str | float) -> int:
    """A size cell: blank is the database's grid; a whole number may be written as a float ("1024.0",
    where the column also has blanks)."""
    if isinstance(value, str) and not value:
        return GRID
    side = float(value)
    if side != int(side) or side < 1:
        raise ValueError(f"size {value} is not a whole number of pixels")
    return int(side)


def _report_matches(path: str | os.PathLike[str], wanted: set[str], rows: dict[str, ChexmaskRow]) -> None:
    """Fail when no wanted image is in the file; log how many are and name some that are not."""
    if not rows:
        example = sorted(wanted)[:3]
        raise InputError(
            f"{path}: none of the {len(wanted)} images (e.g. {example}) is in this CheXmask file: "
            "is it the file of this collection?"
        )
    absent = sorted(wanted - set(rows))
    if absent:
        log.warning(
            "%s has %d of %d images; %d are not in it, e.g. %s",
            path,
            len(rows),
            len(wanted),
            len(absent),
            ", ".join(absent[:10]),
        )
