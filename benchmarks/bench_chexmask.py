"""Reading CheXmask's NIH file for a study's images: the streamed reader against one pandas.read_csv.

    python benchmarks/bench_chexmask.py [--rows 112120] [--keep 10000]

Writes a file of CheXmask's NIH format and size (``--rows`` rows of 1024² lung and heart runs and 120
landmarks; at the real 112,120 rows it is about 2 GB), then reads it twice, each in a fresh process:
``read_chexmask`` keeping ``--keep`` images (a curated subset), and the baseline ``pandas.read_csv`` of the
whole file, which is what reading it without streaming takes. Prints each one's seconds and peak memory
(maximum resident set) and their ratios.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.draw import ellipse, polygon_perimeter

from cxrmask.chexmask import GRID, N_LANDMARKS, encode_rle, read_chexmask

COLUMNS = [
    "Image Index",
    "Dice RCA (Mean)",
    "Dice RCA (Max)",
    "Landmarks",
    "Left Lung",
    "Right Lung",
    "Heart",
]
DISTINCT = 200  # distinct anatomies, repeated under new ids (encoding is the slow part of writing)


def anatomy(rng: np.random.Generator) -> list[str]:
    """One row's strings: landmarks and three 1024² masks of lung and heart shape."""
    parts = []
    for centre_x, ry, rx in ((0.3, 0.3, 0.13), (0.7, 0.3, 0.13), (0.55, 0.12, 0.14)):
        mask = np.zeros((GRID, GRID), dtype=bool)
        rows, cols = ellipse(
            GRID * rng.uniform(0.45, 0.55),
            GRID * (centre_x + rng.uniform(-0.02, 0.02)),
            GRID * ry * rng.uniform(0.9, 1.1),
            GRID * rx * rng.uniform(0.9, 1.1),
            shape=mask.shape,
        )
        mask[rows, cols] = True
        parts.append(mask)
    ys, xs = polygon_perimeter([200, 200, 800, 800], [150, 450, 450, 150])
    points = np.stack([xs, ys], 1)[np.linspace(0, len(xs) - 1, N_LANDMARKS).astype(int)]
    landmarks = ",".join(map(str, points.ravel()))
    return [landmarks, encode_rle(parts[1]), encode_rle(parts[0]), encode_rle(parts[2])]


def write_file(path: Path, rows: int) -> list[str]:
    """A CheXmask-format NIH file of ``rows`` rows; returns its image ids."""
    rng = np.random.default_rng(0)
    shapes = [anatomy(rng) for _ in range(DISTINCT)]
    ids = [f"{i // 4 + 1:08d}_{i % 4:03d}.png" for i in range(rows)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, "Height", "Width"])
        for i, image in enumerate(ids):
            mean = rng.uniform(0.6, 0.9)
            writer.writerow([image, mean, mean + rng.uniform(0, 0.08), *shapes[i % DISTINCT], GRID, GRID])
    return ids


def measure(kind: str, path: str, keep_file: str) -> None:
    """In this (fresh) process: read the file one way; print seconds, peak MiB and rows as JSON."""
    keep = Path(keep_file).read_text().split()
    start = time.perf_counter()
    rows = len(read_chexmask(path, images=keep)) if kind == "streamed" else len(pd.read_csv(path))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "rows": rows}))


def run(kind: str, path: Path, keep_file: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(path), str(keep_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=112_120, help="rows of the file (NIH's: 112,120)")
    parser.add_argument("--keep", type=int, default=10_000, help="images the study asks for")
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "FILE", "KEEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*args.measure)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path, keep_file = Path(tmp) / "ChestX-Ray8.csv", Path(tmp) / "keep.txt"
        start = time.perf_counter()
        ids = write_file(path, args.rows)
        written = time.perf_counter() - start
        chosen = np.random.default_rng(1).choice(len(ids), size=min(args.keep, len(ids)), replace=False)
        keep_file.write_text("\n".join(ids[i] for i in sorted(chosen)))
        size = path.stat().st_size / 2**30
        print(f"file: {args.rows} rows, {size:.2f} GiB (written in {written:.0f} s)")
        print(f"keeping {len(chosen)} images")
        streamed, whole = run("streamed", path, keep_file), run("whole", path, keep_file)
    assert streamed["rows"] == len(chosen) and whole["rows"] == args.rows
    for name, result in (
        ("pandas.read_csv, whole file (baseline)", whole),
        ("read_chexmask (cxrmask)", streamed),
    ):
        print(f"{name:39s} {result['seconds']:8.1f} s {result['peak_mib']:8.0f} MiB peak")
    speed, memory = whole["seconds"] / streamed["seconds"], whole["peak_mib"] / streamed["peak_mib"]
    print(f"{'ratio':39s} {speed:8.2f}x faster, {memory:.1f}x less memory")


if __name__ == "__main__":
    main()
