"""Rule cache_test_set_images: one external test set's images decoded once at the classifier's size."""

from __future__ import annotations

from cxrmask.classify.cache import cache_listed


def cache_test_set_images(
    manifest: str, cache: str, index: str, size: int, on_bad: str, threads: int
) -> None:
    """Decode every image of the set's manifest at ``size``, as NIH's are; the index says which decoded."""
    cache_listed(manifest, cache, index, size, on_bad, threads)
