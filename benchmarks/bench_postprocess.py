"""Mask post-processing throughput: cxrmask's clean-up in host threads against the textbook serial one.

    python benchmarks/bench_postprocess.py [--images 32] [--size 1024] [--threads 2]

On a GPU the encoder segments ~54 images/s (benchmarks/results/bench_gpu_h100.json) while cleaning and
writing each full-size mask on the host took ~40 ms, so the host bounded mask generation. The baseline is
what that step did: ``skimage`` labelling, ``np.isin`` to keep the two largest components,
``ndimage.binary_fill_holes`` (iterated dilation), PNG write, one image after another. cxrmask fills holes
by labelling the background once, keeps components through a lookup table, and runs images in threads
(the C code releases the GIL), as ``generate_masks`` does. Prints ms per image for both, the ratio, and
checks that both write the same masks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse
from skimage.measure import label

from cxrmask.imageio import read_mask, write_png
from cxrmask.segment.postprocess import clean_mask


def raw_masks(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Decoder-like raw masks: two lungs with holes and speckle, different for each image."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mask = np.zeros((size, size), dtype=bool)
        for centre in (0.3, 0.7):
            rr, cc = ellipse(
                size * rng.uniform(0.45, 0.55),
                size * (centre + rng.uniform(-0.02, 0.02)),
                size * rng.uniform(0.3, 0.36),
                size * rng.uniform(0.12, 0.16),
                shape=mask.shape,
            )
            mask[rr, cc] = True
        for _ in range(5):  # holes: vessels, a pacemaker
            y, x = rng.integers(size // 4, 3 * size // 4, size=2)
            mask[y : y + size // 50, x : x + size // 50] = False
        out.append(mask ^ (rng.random(mask.shape) < 0.001))
    return out


def baseline(mask: np.ndarray, path: Path) -> None:
    """The serial textbook clean-up: label, isin, binary_fill_holes, write."""
    labels = label(mask, connectivity=2)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    kept = np.isin(labels, np.argsort(sizes)[::-1][:2])
    write_png(path, ndimage.binary_fill_holes(kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    masks = raw_masks(args.images, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        base_dir, ours_dir = Path(tmp, "baseline"), Path(tmp, "cxrmask")
        start = time.perf_counter()
        for i, mask in enumerate(masks):
            baseline(mask, base_dir / f"{i}.png")
        base = (time.perf_counter() - start) / len(masks)

        def ours_one(item: tuple[int, np.ndarray]) -> None:
            write_png(ours_dir / f"{item[0]}.png", clean_mask(item[1]))

        start = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(ours_one, enumerate(masks)))
        ours = (time.perf_counter() - start) / len(masks)
        same = all(
            np.array_equal(read_mask(base_dir / f"{i}.png"), read_mask(ours_dir / f"{i}.png"))
            for i in range(len(masks))
        )
    print(f"{args.images} masks of {args.size}x{args.size}, {args.threads} thread(s)")
    print(f"serial textbook clean-up (baseline)   {base * 1000:7.1f} ms/image")
    print(f"cxrmask clean-up in threads           {ours * 1000:7.1f} ms/image")
    print(f"speed-up                              {base / ours:7.2f}x")
    print(f"identical masks                       {same}")


if __name__ == "__main__":
    main()
