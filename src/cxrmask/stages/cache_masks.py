"""Rule cache_masks: one condition's masks, row-aligned with the image cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxrmask.atomic import atomic_path
from cxrmask.classify.cache import build_cache
from cxrmask.errors import InputError


def cache_masks(index: str, masks: Sequence[str], cache: str, size: int, threads: int) -> None:
    """Gather one condition's masks from its shard folders into a cache row-aligned with the image cache.

    Images that did not decode have no mask; their rows stay zero and the
    index keeps them out of training.
    """
    table = pd.read_csv(index)
    found = {path.name: path for folder in masks for path in Path(folder).glob("*.png")}
    missing = [name for name, ok in zip(table["image"], table["ok"], strict=True) if ok and name not in found]
    if missing:
        raise InputError(
            f"no mask for {len(missing)} images (e.g. {missing[0]}): rerun generate_masks and dilate_masks."
        )
    paths = [found[name] if ok else Path(name) for name, ok in zip(table["image"], table["ok"], strict=True)]
    with atomic_path(cache) as tmp:
        errors, _ = build_cache(
            paths, size, tmp, is_mask=True, on_bad="skip", num_workers=max(0, threads - 1)
        )
        bad = [error for error, ok in zip(errors, table["ok"], strict=True) if ok and error]
        if bad:
            raise InputError(
                f"{len(bad)} masks could not be read: {bad[0]} Rerun generate_masks and dilate_masks."
            )
