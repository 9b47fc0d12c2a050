"""Fixtures shared by several test modules."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from snakerun import snakemake, tiny_args


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Iterator[Path]:
    """The whole workflow on the tiny demo, run once per test session; yields the results folder.

    Several modules check things against one finished run (plans, reruns,
    kills, a tracking server, a cluster run's outputs); running it once saves
    minutes. Tests that rerun part of it must leave it complete, as CPU reruns
    are byte-identical.
    """
    results = tmp_path_factory.mktemp("tiny") / "results"
    snakemake(*tiny_args(results, "--cores", "2"))
    yield results
    shutil.rmtree(results, ignore_errors=True)


@pytest.fixture
def tiny_copy(tiny_run, tmp_path) -> Path:
    """A copy of the shared tiny run (timestamps kept, so it is up to date) for a test that reruns parts."""
    results = tmp_path / "results"
    shutil.copytree(tiny_run, results)
    return results
