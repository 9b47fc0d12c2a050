"""Rule cache_images: every curated image decoded once at the classifier's size."""

from __future__ import annotations

from cxrmask.classify.cache import cache_listed


def cache_images(subset: str, cache: str, index: str, size: int, on_bad: str, threads: int) -> None:
    """Decode every curated image at ``size``; the index says which decoded (and their digests)."""
    cache_listed(subset, cache, index, size, on_bad, threads)
