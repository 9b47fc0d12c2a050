"""The single MLflow writer: run records in, MLflow runs out.

Only the ``log_mlflow`` rule imports this module (and MLflow): see
``cxrmask.tracking`` for why jobs write records instead of opening the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from cxrmask.atomic import write_csv
from cxrmask.config import MlflowSettings

log = logging.getLogger(__name__)

RECORD_TAG = "cxrmask.record"


def default_tracking_uri(results: str | os.PathLike[str]) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store under ``results/mlflow``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(results, 'mlflow', 'mlflow.db').resolve()}"


def log_records(
    records: Iterable[str | os.PathLike[str]],
    tracking_uri: str,
    experiment: str,
    artifact_root: str | None = None,
) -> pd.DataFrame:
    """Log each record as an MLflow run unless an identical one is there; one row per record."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        location = Path(artifact_root).resolve().as_uri() if artifact_root else None
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    rows = []
    for record_path in records:
        text = Path(record_path).read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        existing = client.search_runs([experiment_id], filter_string=f"tags.`{RECORD_TAG}` = '{digest}'")
        if existing:
            rows.append(
                {"record": os.fspath(record_path), "run_id": existing[0].info.run_id, "logged": False}
            )
            continue
        record = json.loads(text)
        tags = {**record["tags"], RECORD_TAG: digest}
        run = client.create_run(
            experiment_id, start_time=record["start_time"], tags=tags, run_name=record["name"]
        )
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in record["params"].items()]
        metrics = [Metric(k, v, ts, step) for k, v, step, ts in record["metrics"]]
        for start in range(0, max(len(params), len(metrics), 1), 100):
            client.log_batch(run_id, metrics=metrics[start : start + 100], params=params[start : start + 100])
        for artifact in record["artifacts"]:
            client.log_artifact(run_id, artifact)
        client.set_terminated(run_id, record["status"], record["end_time"])
        rows.append({"record": os.fspath(record_path), "run_id": run_id, "logged": True})
    log.info(
        "%d runs logged, %d already present",
        sum(r["logged"] for r in rows),
        sum(not r["logged"] for r in rows),
    )
    return pd.DataFrame(rows, columns=["record", "run_id", "logged"])


def log_pipeline_runs(
    records: Iterable[str | os.PathLike[str]], settings: MlflowSettings, results: str, out: str
) -> pd.DataFrame:
    """Log every job's record (config URI, else env/SQLite default) and list the runs in ``out``."""
    uri = settings.tracking_uri or default_tracking_uri(results)
    Path(results, "mlflow").mkdir(parents=True, exist_ok=True)
    table = log_records(
        records, uri, settings.experiment, artifact_root=str(Path(results, "mlflow", "artifacts"))
    )
    write_csv(out, table.assign(tracking_uri=uri))
    return table
