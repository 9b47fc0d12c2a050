"""Rule cache_masks: one condition's masks, row-aligned with the image cache."""

from __future__ import annotations

from collections.abc import Sequence

from cxrmask.classify.cache import cache_mask_folders


def cache_masks(index: str, masks: Sequence[str], cache: str, size: int, threads: int) -> None:
    """Gather one condition's masks from its shard folders into a cache row-aligned with the image cache;
    images that did not decode keep a zero row, which the index keeps out of training."""
    cache_mask_folders(index, masks, cache, size, threads)
