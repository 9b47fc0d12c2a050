"""Loose-mask dilation: distance-transform dilation against a disk-footprint dilation, same masks, same run.

    python benchmarks/bench_dilation.py [--radius 40] [--size 1024] [--masks 5]

Prints the time per mask of each method, their ratio, and that both give the same mask (up to the few
boundary pixels where the two discretisations of a disk differ).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from skimage.draw import ellipse
from skimage.morphology import dilation, disk

from cxrmask.segment.postprocess import dilate


def lungs(size: int, seed: int) -> np.ndarray:
    """Two lung-like ellipses at the usual place of a PA film."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    for cx in (0.32, 0.68):
        rr, cc = ellipse(
            size * rng.uniform(0.45, 0.5),
            size * cx,
            size * rng.uniform(0.28, 0.32),
            size * 0.14,
            shape=mask.shape,
        )
        mask[rr, cc] = True
    return mask


def timed(function, masks) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [function(mask) for mask in masks]
    return (time.perf_counter() - start) / len(masks), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=int, default=40)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--masks", type=int, default=5)
    args = parser.parse_args()
    masks = [lungs(args.size, seed) for seed in range(args.masks)]
    footprint = disk(args.radius)
    fast, fast_out = timed(lambda m: dilate(m, args.radius), masks)
    base, base_out = timed(lambda m: dilation(m, footprint), masks)
    differ = max(float(np.mean(a != b)) for a, b in zip(fast_out, base_out, strict=True))
    print(f"masks {args.size}x{args.size}, radius {args.radius} px, {args.masks} masks")
    print(f"distance transform (cxrmask)   {fast * 1000:8.1f} ms/mask")
    print(f"disk footprint (baseline)      {base * 1000:8.1f} ms/mask")
    print(f"speed-up                       {base / fast:8.1f}x")
    print(f"pixels that differ             {differ:.5%}")


if __name__ == "__main__":
    main()
