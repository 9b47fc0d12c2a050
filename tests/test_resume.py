"""Kill and resume on one machine: SIGKILL mid-job, then the plain command finishes the work.

Snakemake and its jobs are killed together (``killpg``), as when a session,
a login node or a whole machine goes: nothing gets to clean up. The resume
is ``snakemake --unlock`` (a killed run cannot release its lock) and then
the same command again, without ``--rerun-incomplete``: atomic outputs mean a
killed job leaves no file for Snakemake to distrust. The outputs must equal
the uninterrupted run's byte for byte, with no temporaries left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from snakerun import REPO, snakemake, tiny_args

pytestmark = pytest.mark.slow

CELL = Path("classify", "resnet10t", "tight", "seed0")


def start(results: Path, *extra: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *map(str, tiny_args(results, "--cores", "2", *extra))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 600) -> None:
    """SIGKILL Snakemake and every process it started once ``ready()``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the moment to kill never came:\n{proc.stdout.read()[-5000:]}")
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def running_job(proc: subprocess.Popen) -> bool:
    """Whether a job's script runs in ``proc``'s session (each test's run has just one job)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) != proc.pid:
                continue
            cmdline = Path("/proc", pid, "cmdline").read_bytes()
        except OSError:
            continue
        if b".snakemake/scripts/" in cmdline:
            return True
    return False


def resume(results: Path, target: Path) -> str:
    snakemake(*tiny_args(results, "--unlock", target))
    return snakemake(*tiny_args(results, "--cores", "2", target)).stdout


def trained(cell: Path) -> tuple[bytes, pd.DataFrame]:
    """A cell's predictions and its training history less the timings (which no rerun repeats)."""
    history = pd.read_csv(cell / "history.csv")
    return (cell / "predictions.csv").read_bytes(), history.drop(columns=["seconds", "elapsed"])


def test_killed_while_training_a_classifier(tiny_copy):
    cell = tiny_copy / CELL
    predictions, history = trained(cell)
    proc = start(tiny_copy, cell / "predictions.csv", "--forcerun", "train_classifier")
    started = []

    def training_for_two_seconds() -> bool:
        if running_job(proc):
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] > 2

    kill_when(proc, training_for_two_seconds)
    assert not (cell / "predictions.csv").exists() and not (cell / "model.pt").exists()
    resume(tiny_copy, cell / "predictions.csv")
    assert trained(cell)[0] == predictions
    pd.testing.assert_frame_equal(trained(cell)[1], history)
    assert list(cell.glob(".*")) == []


def test_killed_while_writing_masks(tiny_copy):
    folder = tiny_copy / "masks" / "tight"
    before = {p.name: p.read_bytes() for p in (folder / "shard_0").iterdir()}
    proc = start(tiny_copy, folder / "shard_0.csv", "--forcerun", "generate_masks")
    kill_when(proc, lambda: any((folder / "shard_0").parent.glob(".shard_0.*.part/*.png")))
    assert list(folder.glob(".shard_0.*.part"))  # what SIGKILL leaves behind
    assert not (folder / "shard_0").exists() and not (folder / "shard_0.csv").exists()
    resume(tiny_copy, folder / "shard_0.csv")
    assert {p.name: p.read_bytes() for p in (folder / "shard_0").iterdir()} == before
    assert list(folder.glob(".*")) == []
