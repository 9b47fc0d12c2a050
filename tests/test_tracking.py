"""cxrmask.tracking and cxrmask.mlflow_store: jobs write run records, one writer logs them, idempotently.

The writer (and so MLflow) is imported only inside the tests that log, so the parallel job processes,
which import this module, show that recording a run never touches the store.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cxrmask.errors import InputError
from cxrmask.tracking import RunRecorder, config_hash, flatten, git_commit

if TYPE_CHECKING:
    from mlflow import MlflowClient

CONFIG = {"epochs": 3, "lr": 0.001, "backbone": {"name": "resnet18", "pretrained": False}, "masks": ["tight"]}


def _record(folder: Path, name: str = "run.json", seed: int = 0, artifact: Path | None = None) -> Path:
    """A training job's record: two epochs of metrics and, when given, one artifact."""
    recorder = RunRecorder(
        "train_classifier", {"backbone": "resnet18", "seed": seed}, CONFIG, workdir=str(folder)
    )
    recorder.log_params({"data": {"n_train": 100}})
    recorder.log_metrics({"loss": 0.9, "val_auroc": 0.6}, step=0)
    recorder.log_metrics({"loss": 0.5, "val_auroc": 0.7}, step=1)
    if artifact is not None:
        recorder.log_artifact(artifact)
    path = folder / name
    recorder.save(path)
    return path


def _client(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str, experiment: str) -> list:
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A fresh SQLite store (created on first use by log_records) and its artifact root."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts"


# ---- the recorder ----------------------------------------------------------------------------------


def test_flatten_gives_dotted_string_params() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2], "d": {"e": None}}, "f": True, "g": "x" * 7000})
    assert flat == {"a.b": "1", "a.c": "[1, 2]", "a.d.e": "None", "f": "True", "g": "x" * 6000}


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    assert config_hash({"a": 1, "b": {"c": 2, "d": 3}}) == config_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash(CONFIG)) == 12


def test_recorder_collects_params_metrics_tags_and_artifacts(tmp_path: Path) -> None:
    artifact = tmp_path / "history.csv"
    artifact.write_text("epoch,loss\n0,0.9\n1,0.5\n")
    recorder = RunRecorder(
        "train_classifier", {"backbone": "resnet18", "seed": 0}, CONFIG, workdir=str(tmp_path)
    )
    recorder.log_params({"data": {"n_train": 100}})
    recorder.log_metrics({"loss": 0.9, "nan": float("nan"), "inf": float("inf")}, step=0)
    recorder.log_metrics({"loss": 0.5}, step=1)
    recorder.log_metrics({"test_auroc": 0.75})
    recorder.log_artifact(artifact)
    path = tmp_path / "run.json"
    recorder.save(path)
    record = json.loads(path.read_text())

    assert record["name"] == "train_classifier/backbone=resnet18/seed=0"
    assert record["params"] == {
        "epochs": "3",
        "lr": "0.001",
        "backbone.name": "resnet18",
        "backbone.pretrained": "False",
        "masks": '["tight"]',
        "data.n_train": "100",
    }
    # NaN and infinite values are left out; a metric without a step is at step 0.
    assert [(key, value, step) for key, value, step, _ in record["metrics"]] == [
        ("loss", 0.9, 0),
        ("loss", 0.5, 1),
        ("test_auroc", 0.75, 0),
    ]
    assert record["tags"] == {
        "mlflow.runName": "train_classifier/backbone=resnet18/seed=0",
        "cxrmask.rule": "train_classifier",
        "cxrmask.wildcards": '{"backbone": "resnet18", "seed": 0}',
        "cxrmask.config_hash": config_hash(CONFIG),
        "cxrmask.wildcard.backbone": "resnet18",
        "cxrmask.wildcard.seed": "0",
    }
    assert record["artifacts"] == [str(artifact)]
    assert record["status"] == "FINISHED"
    assert record["start_time"] <= record["end_time"]


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_tag_in_a_checkout_and_dirty_flag(tmp_path: Path) -> None:
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (tmp_path / "Snakefile").write_text("rule all:\n")
    _git(tmp_path, "add", "Snakefile")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")

    assert git_commit(tmp_path) == head
    clean = RunRecorder("finetune_medsam", {}, {}, workdir=str(tmp_path))
    assert clean.tags["mlflow.source.git.commit"] == head
    assert clean.name == "finetune_medsam"

    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    assert git_commit(tmp_path) == f"{head}-dirty"
    # Untracked files (results, logs) do not make a checkout dirty.
    (tmp_path / "results.csv").write_text("x\n")
    _git(tmp_path, "checkout", "-q", "Snakefile")
    assert git_commit(tmp_path) == head


def test_no_git_commit_tag_outside_a_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    assert "mlflow.source.git.commit" not in RunRecorder("x", {}, {}, workdir=str(tmp_path)).tags


def test_save_refuses_missing_artifacts(tmp_path: Path) -> None:
    recorder = RunRecorder("train_classifier", {"seed": 0}, {}, workdir=str(tmp_path))
    recorder.log_artifact(tmp_path / "model.pt")
    with pytest.raises(InputError, match=r"run\.json: artifacts missing: \[.*model\.pt'\]"):
        recorder.save(tmp_path / "run.json")
    assert not (tmp_path / "run.json").exists()


# ---- the writer ------------------------------------------------------------------------------------


def test_log_records_creates_one_run_per_record(store: tuple[str, Path], tmp_path: Path) -> None:
    from cxrmask.mlflow_store import RECORD_TAG, log_records

    uri, artifacts = store
    artifact = tmp_path / "history.csv"
    artifact.write_text("epoch,loss\n0,0.9\n1,0.5\n")
    records = [_record(tmp_path, "a.json", seed=0, artifact=artifact), _record(tmp_path, "b.json", seed=1)]
    table = log_records(records, uri, "records", artifact_root=str(artifacts))
    assert table.columns.tolist() == ["record", "run_id", "logged"]
    assert table["logged"].tolist() == [True, True]

    client = _client(uri)
    runs = {run.info.run_name: run for run in _runs(uri, "records")}
    assert sorted(runs) == [
        "train_classifier/backbone=resnet18/seed=0",
        "train_classifier/backbone=resnet18/seed=1",
    ]
    run = runs["train_classifier/backbone=resnet18/seed=0"]
    record = json.loads(records[0].read_text())
    assert run.info.run_id == table["run_id"][0]
    assert run.info.status == "FINISHED"
    assert (run.info.start_time, run.info.end_time) == (record["start_time"], record["end_time"])
    assert run.data.params == record["params"]
    assert run.data.tags["cxrmask.rule"] == "train_classifier"
    assert run.data.tags["cxrmask.wildcard.seed"] == "0"
    assert run.data.tags["cxrmask.config_hash"] == config_hash(CONFIG)
    assert len(run.data.tags[RECORD_TAG]) == 16
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.9), (1, 0.5)]
    assert run.data.metrics == {"loss": 0.5, "val_auroc": 0.7}
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["history.csv"]
    downloaded = client.download_artifacts(run.info.run_id, "history.csv", str(tmp_path / "down"))
    assert Path(downloaded).read_text() == artifact.read_text()
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(artifacts.resolve())


def test_log_records_is_idempotent_and_a_changed_record_is_a_new_run(
    store: tuple[str, Path], tmp_path: Path
) -> None:
    from cxrmask.mlflow_store import log_records

    uri, artifacts = store
    first = _record(tmp_path, "a.json", seed=0)
    logged = log_records([first], uri, "reruns", artifact_root=str(artifacts))
    again = log_records([first], uri, "reruns", artifact_root=str(artifacts))
    assert again["logged"].tolist() == [False]
    assert again["run_id"].tolist() == logged["run_id"].tolist()
    assert len(_runs(uri, "reruns")) == 1

    # The job ran again and its record changed (here: a better last epoch).
    record = json.loads(first.read_text())
    record["metrics"][-1][1] = 0.4
    first.write_text(json.dumps(record))
    changed = log_records([first], uri, "reruns", artifact_root=str(artifacts))
    assert changed["logged"].tolist() == [True]
    assert changed["run_id"][0] != logged["run_id"][0]
    assert len(_runs(uri, "reruns")) == 2


def test_log_pipeline_runs_writes_the_run_table(tmp_path: Path, store: tuple[str, Path]) -> None:
    import pandas as pd

    from cxrmask.config import MlflowSettings
    from cxrmask.mlflow_store import log_pipeline_runs

    uri, _ = store
    out = tmp_path / "results" / "mlflow" / "runs.csv"
    log_pipeline_runs(
        [_record(tmp_path)],
        MlflowSettings(experiment="pipeline", tracking_uri=uri),
        str(tmp_path / "results"),
        str(out),
    )
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["record", "run_id", "logged", "tracking_uri"]
    assert table["tracking_uri"].tolist() == [uri]
    assert len(_runs(uri, "pipeline")) == 1


def test_default_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrmask.mlflow_store import default_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_tracking_uri(tmp_path) == "http://127.0.0.1:5000"


# ---- parallel jobs ---------------------------------------------------------------------------------


def _job(barrier: multiprocessing.synchronize.Barrier, folder: str, seed: int) -> None:
    """One Snakemake job: start with the others, record a run, never open the store."""
    barrier.wait(timeout=120)
    _record(Path(folder), f"run_{seed}.json", seed=seed)
    if "mlflow" in sys.modules:
        raise AssertionError("a job imported mlflow: jobs must only write records")


def test_parallel_jobs_lose_no_runs(store: tuple[str, Path], tmp_path: Path) -> None:
    from cxrmask.mlflow_store import log_records

    uri, artifacts = store
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    jobs = [context.Process(target=_job, args=(barrier, str(tmp_path), seed)) for seed in range(8)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=180)
    assert [job.exitcode for job in jobs] == [0] * 8

    records = sorted(tmp_path.glob("run_*.json"))
    assert len(records) == 8
    table = log_records(records, uri, "parallel", artifact_root=str(artifacts))
    assert table["logged"].all() and table["run_id"].is_unique
    runs = _runs(uri, "parallel")
    assert len(runs) == 8
    assert sorted(run.data.tags["cxrmask.wildcard.seed"] for run in runs) == [str(seed) for seed in range(8)]
