"""Atomic outputs: write to a temporary sibling, rename when complete.

A job killed halfway (out of memory, wall time, Ctrl-C) must never leave a
file that looks finished, because Snakemake and users judge completeness by
existence. ``os.replace`` is atomic on POSIX within one filesystem, so the
temporary file lives next to its target.

Three more things make this safe on a shared cluster:

- outputs get the modes the user's umask gives any new file (``mkstemp`` and
  ``mkdtemp`` create them private, which would hide results from colleagues
  on a group project folder);
- SIGTERM (``scancel``, a wall-time limit, Snakemake stopping its jobs) unwinds
  like an exception, so the temporary is removed instead of the process
  vanishing mid-write;
- what SIGKILL or a lost node leaves behind (``.<name>.<random>.part*``) is
  removed when the output is next written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it into place on success.

    The temporary name keeps the target's suffix (or ``suffix``) so libraries
    that pick a format from the extension (PIL, numpy, matplotlib) still work.
    On any exception the temporary file is removed and the target untouched.
    """
    target = Path(target)
    _prepare(target)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".part{suffix or target.suffix}", dir=target.parent
    )
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; rename it into place on success.

    An existing ``target`` is replaced only once the new content is complete.
    """
    target = Path(target)
    _prepare(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prepare(target: Path) -> None:
    """Create the target's folder and remove temporaries a killed writer left."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp/mkdtemp names: the prefix, 8 characters from [a-z0-9_], then ".part".
    stale = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.part")
    for leftover in target.parent.iterdir():
        if stale.match(leftover.name):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def unwind_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` so ``except``/``finally`` blocks remove temporaries.

    Python's default for SIGTERM ends the process without unwinding. Every job
    calls this once at its start (:func:`cxrmask.logs.run_step`), not the
    library on import or on each write, so processes the library merely runs
    in (a test runner, a pool's workers) keep Python's default. Only the
    default handler is replaced (an application's own handler is left alone),
    and only from the main thread, where Python runs signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, racing other threads)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON atomically (stable diffs, stable hashes)."""
    write_text(target, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    """Serialise numpy scalars and paths, which the stages produce everywhere."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def write_csv(target: str | os.PathLike[str], frame: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame to CSV atomically, without the index unless asked."""
    kwargs.setdefault("index", False)
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, **kwargs)
