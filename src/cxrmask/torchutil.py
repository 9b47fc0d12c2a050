"""Device, seeding and precision choices shared by fine-tuning, inference and training.

Kept in one place so every stage makes the same choice from the same config
key: ``device: auto`` picks CUDA when present, bf16 autocast is used on CUDA
and on CPUs with native bf16 instructions (elsewhere CPU autocast emulates
bf16 and is slower than fp32), and a seed fixes every generator a job touches.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random

import numpy as np
import torch

from cxrmask import gpuslots
from cxrmask.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> a GPU of this job's own if any is visible, else CPU; ``cuda`` without a GPU is an error.

    ``auto`` and ``cuda`` take a free GPU through :mod:`cxrmask.gpuslots`, so jobs running side by side on
    one machine each get their own; ``cuda:N`` is the user's explicit choice and is used as given.
    """
    if name not in ("auto", "cpu") and not name.startswith("cuda"):
        raise ConfigError(f"device: {name!r} is not auto, cpu or cuda[:N].")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} but no CUDA GPU is visible; use device: auto or cpu.")
    if name != "auto" and name != "cuda":
        return torch.device(name)
    index = gpuslots.acquire([_gpu_name(i) for i in range(torch.cuda.device_count())])
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _gpu_name(index: int) -> str:
    """A GPU's UUID (the same card whatever ``CUDA_VISIBLE_DEVICES`` says), or its index where unknown."""
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return f"GPU-{uuid}" if uuid else f"cuda{index}"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a CPU rerun gives identical numbers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int | None) -> None:
    """Use the job's Snakemake ``threads`` for torch's intra-op pool (not all cores of a shared node)."""
    if threads:
        torch.set_num_threads(int(threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


#: CPU flags (Linux ``/proc/cpuinfo``) of instructions that compute in bf16 natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): there CPU autocast is ~2x faster
    than fp32 for the encoders and backbones here; elsewhere it is emulated and slower."""
    try:
        with open(cpuinfo) as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast when enabled, on CUDA and on a CPU with native bf16; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
