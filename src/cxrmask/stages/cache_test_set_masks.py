"""Rule cache_test_set_masks: one condition's masks of an external test set, row-aligned with its images."""

from __future__ import annotations

from cxrmask.classify.cache import cache_mask_folders


def cache_test_set_masks(index: str, masks: str, cache: str, size: int, threads: int) -> None:
    """Gather the set's masks of one condition into a cache row-aligned with the set's image cache."""
    cache_mask_folders(index, [masks], cache, size, threads)
