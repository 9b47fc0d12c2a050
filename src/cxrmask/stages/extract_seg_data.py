"""Rule extract_seg_data: the lung-mask set's zip, unpacked safely (zips inside it too)."""

from __future__ import annotations

from cxrmask.archive import extract_tree


def extract_seg_data(archive: str, folder: str) -> None:
    """Unpack ``archive`` into ``folder`` (complete or absent), with any zip it contains."""
    extract_tree(archive, folder)
