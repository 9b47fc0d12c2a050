"""One GPU per job on a machine with several: a lock file per device, held for the life of the process.

Snakemake runs local jobs side by side but sets no ``CUDA_VISIBLE_DEVICES``,
so every GPU job would pick ``cuda:0``. Each job instead takes an exclusive
``flock`` on one device's lock file and keeps it until the process ends. The
kernel drops the lock however the process ends (exit, crash, SIGKILL), so a
killed job never leaves a GPU reserved. When every device is held the job
waits for one to free up, which also makes a single-GPU machine run GPU jobs
one at a time without any global limit in the profile.

Devices are named by their UUID, not their index: indices shift with
``CUDA_VISIBLE_DEVICES`` (SLURM sets it per job), UUIDs name the same card
for every process on the node.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "CXRMASK_GPU_LOCK_DIR"

# The device this process holds: (names it chose from, index, open lock file). Kept open on purpose.
_held: tuple[tuple[str, ...], int, int] | None = None


def lock_dir() -> Path:
    """Where the lock files live: ``$CXRMASK_GPU_LOCK_DIR``, else a per-user folder in the node's temp dir."""
    configured = os.environ.get(LOCK_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir(), f"cxrmask-gpus-{os.getuid()}")


def acquire(devices: Sequence[str], folder: Path | None = None, poll_seconds: float = 2.0) -> int:
    """Hold one of ``devices`` (names) for the rest of this process and return its index.

    A second call in the same process returns the device already held. Blocks,
    polling every ``poll_seconds``, while all devices are held by other processes.
    """
    global _held
    names = tuple(devices)
    if not names:
        raise ValueError("no GPU to choose from")
    if _held is not None and _held[0] == names:
        return _held[1]
    folder = folder or lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    waiting_logged = False
    while True:
        for index, name in enumerate(names):
            fd = os.open(folder / f"{_safe(name)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            _held = (names, index, fd)
            log.info("using GPU %d (%s), held through %s", index, name, folder)
            return index
        if not waiting_logged:
            log.info("all %d GPUs are in use by other jobs; waiting for one to free up", len(names))
            waiting_logged = True
        time.sleep(poll_seconds)


def _safe(name: str) -> str:
    """A device name as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
