"""Rule extract_nih_archive: one NIH image archive, unpacked safely."""

from __future__ import annotations

from cxrmask.archive import extract_tree


def extract_nih_archive(archive: str, folder: str) -> None:
    """Unpack ``archive`` into ``folder`` (complete or absent)."""
    extract_tree(archive, folder)
