"""GPU slots: jobs on one machine each hold a GPU of their own, and a killed job frees its GPU.

The jobs are real processes taking real file locks; only the device list is
simulated (names instead of CUDA UUIDs), so this runs on CPU machines.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from cxrmask import gpuslots
from cxrmask.torchutil import resolve_device

DEVICES = "GPU-sim-a,GPU-sim-b"

# A job: take a GPU, say which, hold it until told to finish.
JOB = """
import pathlib, sys, time
from cxrmask import gpuslots
index = gpuslots.acquire(sys.argv[1].split(","), pathlib.Path(sys.argv[2]), poll_seconds=0.05)
print(index, flush=True)
done = pathlib.Path(sys.argv[3])
while not done.exists():
    time.sleep(0.05)
"""


class Jobs:
    """Job processes started by a test, all ended when it finishes."""

    def __init__(self, tmp_path: Path) -> None:
        self.locks = tmp_path / "locks"
        self.done = tmp_path / "done"
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen(
            [sys.executable, "-c", JOB, DEVICES, str(self.locks), str(self.done)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def gpu_of(proc: subprocess.Popen, timeout: float) -> int | None:
        """The GPU index the job printed, or None if it printed nothing within ``timeout`` seconds."""
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        return int(proc.stdout.readline()) if ready else None

    def finish(self) -> None:
        self.done.touch()
        for proc in self.procs:
            proc.wait(timeout=30)
            proc.stdout.close()


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    started = Jobs(tmp_path)
    yield started
    started.finish()


def test_jobs_side_by_side_get_different_gpus(jobs):
    first, second = jobs.start(), jobs.start()
    assert {jobs.gpu_of(first, 60), jobs.gpu_of(second, 60)} == {0, 1}


def test_a_job_waits_while_every_gpu_is_held_and_gets_the_one_a_killed_job_frees(jobs):
    first, second = jobs.start(), jobs.start()
    held = {jobs.gpu_of(first, 60): first, jobs.gpu_of(second, 60): second}
    third = jobs.start()
    assert jobs.gpu_of(third, 3) is None  # both GPUs are taken: it waits
    held[1].send_signal(signal.SIGKILL)  # no clean-up runs; the kernel drops the lock
    assert jobs.gpu_of(third, 60) == 1


def test_a_process_keeps_the_gpu_it_holds(tmp_path):
    first = gpuslots.acquire(["GPU-x", "GPU-y"], tmp_path)
    assert gpuslots.acquire(["GPU-x", "GPU-y"], tmp_path) == first


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_auto_without_a_gpu_is_the_cpu_and_takes_no_slot(tmp_path, monkeypatch):
    monkeypatch.setenv(gpuslots.LOCK_DIR_ENV, str(tmp_path / "locks"))
    assert resolve_device("auto") == torch.device("cpu")
    assert not (tmp_path / "locks").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_on_a_gpu_holds_that_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv(gpuslots.LOCK_DIR_ENV, str(tmp_path / "locks"))
    device = resolve_device("auto")
    assert device.type == "cuda" and torch.cuda.current_device() == device.index
    assert len(list((tmp_path / "locks").glob("GPU-*.lock"))) == torch.cuda.device_count()
