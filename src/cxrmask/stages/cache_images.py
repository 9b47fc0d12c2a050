"""Rule cache_images: every curated image decoded once at the classifier's size."""

from __future__ import annotations

import pandas as pd

from cxrmask.atomic import write_csv
from cxrmask.classify.cache import build_cache, image_index


def cache_images(subset: str, cache: str, index: str, size: int, on_bad: str, threads: int) -> None:
    """Decode every curated image at ``size``; the index says which decoded (and their digests)."""
    table = pd.read_csv(subset)
    errors, digests = build_cache(table["path"], size, cache, on_bad=on_bad, num_workers=max(0, threads - 1))
    write_csv(index, image_index(table, errors, digests))
