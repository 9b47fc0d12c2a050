"""Rule log_mlflow: every job's run record into the MLflow store, by one writer."""

from __future__ import annotations

from collections.abc import Sequence

from cxrmask.config import MlflowSettings
from cxrmask.mlflow_store import log_pipeline_runs


def log_mlflow(records: Sequence[str], runs: str, settings: MlflowSettings, results: str) -> None:
    """Log the records not yet in the store; list every run in ``runs``."""
    log_pipeline_runs(records, settings, results, runs)
