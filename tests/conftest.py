"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import random
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock
from snakerun import snakemake, tiny_args

# Variables by which a user's shell could reach into a test run: where MLflow logs, which profile
# Snakemake applies, which caches hold (or would download) weights.
UNSET = ("SNAKEMAKE_PROFILE",)
UNSET_PREFIXES = ("MLFLOW_",)
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
# Modules that take minutes, longest first. `make test` runs the suite on several pytest-xdist workers, a
# module to a worker; starting each worker on one of these keeps a long module from starting last, alone.
LONG_FIRST = (
    "test_slurm.py",
    "test_workflow.py",
    "test_real_anatomy.py",
    "test_bad_inputs.py",
    "test_resume.py",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the long modules first; the rest keep their (pytest-randomly's random) order."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)


def unreachable_url() -> str:
    """An http URL on this machine where nothing listens: connecting to it is refused at once.

    The port is taken from the kernel and released, so no listener holds it
    while the tests run (a later process picking the same ephemeral port in
    that window is the only, remote, way it could answer).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session", autouse=True)
def controlled_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One environment for every test and every Snakemake run they start, whatever the user's shell holds.

    - no ``MLFLOW_*`` variable, so runs go to each test's own SQLite store, never a tracking server;
    - torch, Hugging Face and other caches in a fresh folder, so no weights a user downloaded are
      found (a test that needs weights makes them or takes those a package ships);
    - Hugging Face offline, and every other http(s) request sent to a proxy where nothing listens:
      "no network" is simulated, so a machine with internet runs the same tests (loopback servers
      of the download tests are reached directly, as ``no_proxy`` says);
    - no ``SNAKEMAKE_PROFILE``: only the workflow's own profile applies.

    Session-scoped so that module-scoped fixtures (the demo run) start inside it too.
    """
    caches = tmp_path_factory.mktemp("caches")
    nowhere = unreachable_url()
    settings = {
        "TORCH_HOME": str(caches / "torch"),
        "HF_HOME": str(caches / "huggingface"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
        **dict.fromkeys(PROXIES, nowhere),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name in UNSET or name.startswith(UNSET_PREFIXES):
                patch.delenv(name)
        for name, value in settings.items():
            patch.setenv(name, value)
        yield settings


TEST_SEED = 0


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Every test starts from the same random state, whatever ran before it and in whatever order.

    torch's, numpy's legacy and Python's global generators are seeded before
    each test, so an unseeded ``torch.randn`` or ``np.random.rand`` draws the
    same numbers alone, in a random order or on another worker: a test passes
    or fails by what it checks, never by the draw.
    """
    torch.manual_seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    random.seed(TEST_SEED)


@pytest.fixture
def offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, controlled_environment: dict[str, str]
) -> dict[str, str]:
    """This process's downloaders cut off from the network, on any machine, with empty caches.

    The session's variables reach libraries that read them on each call and
    every subprocess; these two read them once, on first use, so they are set
    here directly: urllib's shared opener (torch hub's downloads) goes through
    the proxy where nothing listens, and the Hugging Face hub's offline switch
    is on, with a cache of this test's own.
    """
    import huggingface_hub.constants

    nowhere = controlled_environment["https_proxy"]
    proxies = urllib.request.ProxyHandler({"http": nowhere, "https": nowhere})
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(proxies))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "huggingface"))
    return {"proxy": nowhere, "torch_home": str(tmp_path / "torch")}


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
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole workflow on the tiny demo, run once per test session; its results folder.

    Several modules check things against one finished run (plans, reruns,
    kills, a tracking server, a cluster run's outputs); running it once saves
    minutes. Under pytest-xdist the workers share it: the first to ask runs
    it in the session's common temporary folder while the others wait on a
    lock. Tests only read it or copy it (``tiny_copy``); the dry runs of
    test_workflow.py, the only ones in its working directory, lock nothing.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' folders sit side by side in the session's
    folder = root / "tiny"
    finished = folder / "finished"
    with FileLock(root / "tiny.lock"):
        if not finished.exists():
            shutil.rmtree(folder, ignore_errors=True)
            snakemake(*tiny_args(folder / "results", "--cores", "2"))
            finished.touch()
    return folder / "results"


@pytest.fixture
def tiny_copy(tiny_run, tmp_path) -> Path:
    """A copy of the shared tiny run (timestamps kept, so it is up to date) for a test that reruns parts."""
    results = tmp_path / "results"
    shutil.copytree(tiny_run, results)
    return results
