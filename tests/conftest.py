"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread for a module's tests, then restore the setting.

    Test runs share a few cores with other jobs; every process spinning a pool
    of OpenMP threads slows all of them several-fold, while the small models
    of these tests run fast on one thread. No assertion depends on it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
