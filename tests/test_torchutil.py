"""Precision choices: bf16 autocast only where the hardware computes bf16 natively."""

from __future__ import annotations

from pathlib import Path

import torch

from cxrmask import torchutil
from cxrmask.torchutil import autocast, cpu_has_bf16

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbugs\t\t: spectre_v1\n"


def _cpuinfo(tmp_path: Path, extra: str) -> str:
    path = tmp_path / f"cpuinfo_{extra or 'plain'}"
    path.write_text(FLAGS.format(extra=extra))
    return str(path)


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    assert cpu_has_bf16(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_bf16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_bf16(_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert not cpu_has_bf16(str(tmp_path / "absent"))  # not Linux: fp32


def test_cpu_autocast_follows_the_flag_and_the_setting(monkeypatch) -> None:
    def dtype_of_matmul(enabled: bool) -> torch.dtype:
        with autocast(torch.device("cpu"), enabled):
            return (torch.ones(2, 2) @ torch.ones(2, 2)).dtype

    monkeypatch.setattr(torchutil, "cpu_has_bf16", lambda: True)
    assert dtype_of_matmul(True) == torch.bfloat16
    assert dtype_of_matmul(False) == torch.float32
    monkeypatch.setattr(torchutil, "cpu_has_bf16", lambda: False)
    assert dtype_of_matmul(True) == torch.float32
