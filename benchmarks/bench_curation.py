"""Time curating a whole collection's table against reading the same CSV alone, on one core.

Run: python benchmarks/bench_curation.py [--collections padchest chexpert]
Reads the real tables in torchxrayvision's wheel (PadChest's 160,861 rows, CheXpert's training table),
writes an empty file at every image path they name (the adapters look images up by name, not by
content) and times, in the same run, ``pandas.read_csv`` of the table, the image-folder walk, and the
adapter's whole curation (``cxrmask.datasets.read.read_test_set``): labels mapped, views filtered,
images found and named. The process is pinned to one core, as the issue's budget is stated.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cxrmask.config import ExternalSetSettings
from cxrmask.datasets.manifest import find_images
from cxrmask.datasets.read import read_test_set
from cxrmask.shipped import shipped_file
from cxrmask.vocabulary import STUDY_LABELS

TABLES = {
    "padchest": "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz",
    "chexpert": "chexpert_train.csv.gz",
}


def shipped(name: str) -> Path:
    """A table in torchxrayvision's wheel."""
    path = shipped_file(f"data/{name}")
    if path is None:
        raise SystemExit(
            f"torchxrayvision's wheel, which ships the real tables, has no data/{name} (make setup)"
        )
    return path


def image_names(collection: str, table: Path) -> list[str]:
    """Every image path the table names, relative to its image folder."""
    if collection == "padchest":
        frame = pd.read_csv(table, usecols=["ImageID", "ImageDir"], dtype=str)
        return [f"{d}/{i}" for d, i in zip(frame["ImageDir"], frame["ImageID"], strict=True)]
    return pd.read_csv(table, usecols=["Path"], dtype=str)["Path"].tolist()


def touch_all(root: Path, names: list[str]) -> None:
    """An empty file at each name: the folder layout of the release without its pixels."""
    for folder in sorted({str(Path(n).parent) for n in names}):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).touch()


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=list(TABLES), choices=list(TABLES))
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    logging.basicConfig(level=logging.WARNING)
    print(
        f"{'collection':>10} {'rows':>8} {'kept':>8} {'read_csv_s':>11} {'walk_s':>8} "
        f"{'curate_s':>9} {'ratio':>6}"
    )
    for collection in args.collections:
        table = shipped(TABLES[collection])
        with tempfile.TemporaryDirectory(prefix="bench_curation_") as tmp:
            images = Path(tmp)
            touch_all(images, image_names(collection, table))
            read_s, frame = timed(lambda t=table: pd.read_csv(t, low_memory=False))
            walk_s, _ = timed(lambda i=images: find_images(i))
            settings = ExternalSetSettings(collection=collection, table=str(table), images=str(images))
            curate_s, manifest = timed(
                lambda t=table, i=images, s=settings: read_test_set(str(t), str(i), s, list(STUDY_LABELS))
            )
        print(
            f"{collection:>10} {len(frame):>8} {len(manifest):>8} {read_s:>11.2f} {walk_s:>8.2f} "
            f"{curate_s:>9.2f} {curate_s / read_s:>6.1f}"
        )


if __name__ == "__main__":
    main()
