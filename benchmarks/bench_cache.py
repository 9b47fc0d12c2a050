"""Classifier input pipeline: one epoch from the uint8 cache against decoding the PNGs each epoch.

    python benchmarks/bench_cache.py [--images 64] [--size 224]

Both paths produce the same masked batches; the baseline decodes and resizes every 1024² PNG each epoch,
which is what training without a cache does. Prints seconds per epoch, the ratio, and the one-off cost
of building the cache.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cxrmask.classify.cache import build_cache, load_cache
from cxrmask.classify.train import apply_mask
from cxrmask.imageio import read_grey
from cxrmask.segment.preprocess import resize_grey


def write_images(folder: Path, count: int) -> list[Path]:
    """NIH-like 1024² 8-bit PNGs (smooth structure plus film noise, so they compress like radiographs)."""
    rng = np.random.default_rng(0)
    paths = []
    yy, xx = np.mgrid[0:1024, 0:1024] / 1024
    for i in range(count):
        base = 120 + 60 * np.sin(6 * xx + i) * np.cos(4 * yy) + rng.normal(0, 8, (1024, 1024))
        path = folder / f"{i:08d}_000.png"
        Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def epoch(batches) -> float:
    start = time.perf_counter()
    for images in batches():
        x = torch.from_numpy(images).float().div_(255)[:, None]
        apply_mask(x, (x > 0.4).float(), "zero")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_images(Path(tmp), args.images)
        start = time.perf_counter()
        build_cache(paths, args.size, Path(tmp) / "cache.npy")
        build = time.perf_counter() - start
        cache = load_cache(Path(tmp) / "cache.npy")
        chunks = [list(range(i, min(i + args.batch, len(paths)))) for i in range(0, len(paths), args.batch)]

        def from_cache():
            for chunk in chunks:
                yield np.asarray(cache[chunk])

        def from_png():
            for chunk in chunks:
                yield np.stack([resize_grey(read_grey(paths[i]), args.size) for i in chunk])

        cached, decoded = epoch(from_cache), epoch(from_png)
    print(f"{args.images} images 1024² -> {args.size}², batches of {args.batch}")
    print(f"decode PNGs every epoch (baseline) {decoded:8.3f} s/epoch")
    print(f"uint8 cache (cxrmask)              {cached:8.3f} s/epoch")
    print(f"speed-up per epoch                 {decoded / cached:8.1f}x")
    payback = build / max(decoded - cached, 1e-9)
    print(f"one-off cache build                {build:8.3f} s (pays for itself after {payback:.1f} epochs)")


if __name__ == "__main__":
    main()
