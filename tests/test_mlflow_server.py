"""MLflow with a real tracking server: each job's run logged once, a rerun adds only what ran again.

The server is ``mlflow server`` on 127.0.0.1 with its own SQLite store and
artifact folder, started by the test; the pipeline reaches it only through
``MLFLOW_TRACKING_URI``, as a user's would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from snakerun import snakemake, tiny_args

pytestmark = pytest.mark.slow

CELL = Path("classify", "resnet10t", "loose", "seed0")


@pytest.fixture
def tracking_server(tmp_path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"),
        *("--artifacts-destination", str(tmp_path / "artifacts")),
        *("--workers", "1"),
    ]
    with open(tmp_path / "server.log", "w") as server_log:
        server = subprocess.Popen(command, stdout=server_log, stderr=server_log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()}")
        time.sleep(0.5)
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def logged_runs(uri: str) -> Counter:
    """(rule, wildcards) -> how many runs the server holds for that job."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("cxrmask")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert all(run.info.status == "FINISHED" and run.data.metrics for run in runs)
    return Counter((r.data.tags["cxrmask.rule"], r.data.tags["cxrmask.wildcards"]) for r in runs)


def test_each_job_is_one_run_and_a_rerun_adds_only_the_jobs_that_ran_again(tiny_copy, tracking_server):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_server}
    runs_table = tiny_copy / "mlflow" / "runs.csv"

    def log(*extra: str | Path) -> None:
        snakemake(*tiny_args(tiny_copy, "--cores", "2", runs_table, *extra), env=env)

    log("--forcerun", "log_mlflow")
    first = logged_runs(tracking_server)
    # fine-tuning, two mask shards, four classifier cells and their saliency: one run each
    assert sorted(rule for rule, _ in first.elements()) == [
        "finetune_medsam",
        *["generate_masks"] * 2,
        *["saliency_classifier"] * 4,
        *["train_classifier"] * 4,
    ]
    assert set(first.values()) == {1}

    log("--forcerun", "log_mlflow")  # the same records again: nothing new
    assert logged_runs(tracking_server) == first

    log("--forcerun", tiny_copy / CELL / "run.json")  # one classifier retrained, so its saliency too
    cell = [
        job
        for job in first
        if job[0] in ("train_classifier", "saliency_classifier") and json.loads(job[1])["mask"] == "loose"
    ]
    assert len(cell) == 2
    assert logged_runs(tracking_server) == first + Counter(cell)
