"""Rule download: one source file, resumable, retried and checksum-verified."""

from __future__ import annotations

from pathlib import Path

from cxrmask.config import DownloadSettings
from cxrmask.download import fetch


def download(dest: str, source: str, sha256: str | None, lock_file: str, settings: DownloadSettings) -> None:
    """Fetch ``source`` to ``dest``; the digest is checked against ``sha256`` or the lock file."""
    fetch(
        source,
        Path(dest),
        sha256=sha256,
        lock_file=Path(lock_file),
        settings=settings,
    )
