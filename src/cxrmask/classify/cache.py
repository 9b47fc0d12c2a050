"""Decode and resize every image (and mask) once, into a uint8 array on disk.

Decoding a 1024² PNG costs more than a training step of a small CNN, and
every backbone x mask x seed job would otherwise repeat it each epoch. One
``.npy`` per size (memory-mapped when read) holds the whole subset: 50 kB an
image at 224². Masks get the same treatment, and are applied on the fly, so
the tight and loose jobs share the image cache with the original ones.

This is also where every image is first decoded in full, so a corrupt file
is caught here: it fails the job or, with ``on_bad_image: skip``, is marked
in the index and left out downstream.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from cxrmask.atomic import atomic_path, write_csv
from cxrmask.datasets.manifest import mask_name
from cxrmask.errors import ConfigError, InputError
from cxrmask.imageio import SKIP_HINT, read_grey, read_mask
from cxrmask.segment.preprocess import resize_grey, resize_mask

log = logging.getLogger(__name__)

ON_BAD = ("fail", "skip")


class _Decode(Dataset):
    """Decodes and resizes one file in a worker; errors travel back as text, not exceptions."""

    def __init__(self, paths: Sequence[Path], size: int, is_mask: bool):
        self.paths, self.size, self.is_mask = list(paths), size, is_mask

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray, str, str]:
        path = self.paths[index]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if self.is_mask:
                array = resize_mask(read_mask(path), self.size).astype(np.uint8)
            else:
                array = resize_grey(read_grey(path), self.size)
        except OSError as exc:
            return index, np.zeros((self.size, self.size), np.uint8), f"{path}: cannot read ({exc}).", ""
        except InputError as exc:
            return index, np.zeros((self.size, self.size), np.uint8), str(exc), digest
        return index, array, "", digest


def _collate(batch: list) -> list:
    return batch


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    size: int,
    out: str | os.PathLike[str],
    *,
    is_mask: bool = False,
    on_bad: str = "fail",
    num_workers: int = 0,
) -> tuple[list[str], list[str]]:
    """Write an (N, size, size) uint8 ``.npy`` of ``paths``; return per-file errors ('' if fine) and SHA-256s.

    Masks are stored as 0/1. With ``on_bad: fail`` the first unreadable file
    fails the job and no cache is left; with ``skip`` its slot stays zero
    and its error is returned for the index.
    """
    if on_bad not in ON_BAD:
        raise ConfigError(f"data.on_bad_image: {on_bad!r} is not one of {list(ON_BAD)}.")
    errors, digests = [""] * len(paths), [""] * len(paths)
    loader = DataLoader(
        _Decode([Path(p) for p in paths], size, is_mask),
        batch_size=16,
        num_workers=num_workers,
        collate_fn=_collate,
    )
    with atomic_path(out) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size))
        for batch in tqdm(loader, desc=f"cache {'masks' if is_mask else 'images'} at {size}", unit="batch"):
            for index, item, error, digest in batch:
                digests[index] = digest
                if error:
                    if on_bad == "fail":
                        raise InputError(f"{error} {SKIP_HINT}")
                    log.warning("skipped: %s", error)
                    errors[index] = error
                array[index] = item
        array.flush()
        del array
        bad = sum(bool(e) for e in errors)
        if bad and bad == len(paths):  # inside the atomic write: a cache of nothing is never left behind
            raise InputError(f"none of the {len(paths)} files could be decoded (first: {errors[0]}).")
    if bad:
        log.warning("%d of %d files could not be decoded and are marked in the index", bad, len(paths))
    return errors, digests


def image_index(subset: pd.DataFrame, errors: Sequence[str], digests: Sequence[str]) -> pd.DataFrame:
    """The subset's manifest: each image's cache row, SHA-256 and whether it decoded (and why not)."""
    index = subset.copy()
    index["cache_row"] = np.arange(len(index))
    index["sha256"] = list(digests)
    index["ok"] = [not e for e in errors]
    index["error"] = list(errors)
    return index


def load_cache(path: str | os.PathLike[str]) -> np.ndarray:
    """Memory-map a cache written by :func:`build_cache` (read-only)."""
    return np.load(path, mmap_mode="r")


def cache_listed(subset: str, cache: str, index: str, size: int, on_bad: str, threads: int) -> None:
    """Decode every image a subset or manifest lists at ``size``; the index says which decoded (and their
    digests)."""
    table = pd.read_csv(subset)
    errors, digests = build_cache(table["path"], size, cache, on_bad=on_bad, num_workers=max(0, threads - 1))
    write_csv(index, image_index(table, errors, digests))


def cache_mask_folders(index: str, masks: Sequence[str], cache: str, size: int, threads: int) -> None:
    """Gather one condition's masks (by :func:`~cxrmask.datasets.manifest.mask_name`) from ``masks``
    folders into a cache row-aligned with the image cache of ``index``.

    Images that did not decode have no mask; their rows stay zero and the
    index keeps them out of training and prediction.
    """
    table = pd.read_csv(index)
    found = {path.name: path for folder in masks for path in Path(folder).glob("*.png")}
    names = [mask_name(image) for image in table["image"]]
    missing = [name for name, ok in zip(names, table["ok"], strict=True) if ok and name not in found]
    if missing:
        raise InputError(
            f"no mask for {len(missing)} images (e.g. {missing[0]}): rerun the rules that make the masks "
            "(generate_masks and dilate_masks, or their test-set rules)."
        )
    paths = [found[name] if ok else Path(name) for name, ok in zip(names, table["ok"], strict=True)]
    with atomic_path(cache) as tmp:
        errors, _ = build_cache(
            paths, size, tmp, is_mask=True, on_bad="skip", num_workers=max(0, threads - 1)
        )
        bad = [error for error, ok in zip(errors, table["ok"], strict=True) if ok and error]
        if bad:
            raise InputError(
                f"{len(bad)} masks could not be read: {bad[0]} Rerun the rules that make the masks."
            )
