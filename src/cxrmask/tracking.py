"""Run records: what each job tells MLflow, written as a file instead of to the store.

Jobs do not talk to MLflow. Each fine-tuning, mask-generation or training
job writes a *run record* - params, per-epoch metrics, tags, artifacts - as a
declared JSON output, and a single local job logs all records into the store.
Many Snakemake jobs opening one SQLite file at once lose runs ("database is
locked", a first-use migration race), and SQLite on a cluster's network
filesystem is worse; one writer has neither problem, works the same with a
tracking server (``MLFLOW_TRACKING_URI``), and makes the store a pure function
of the records. Logging is idempotent: a record already in the store (same
content digest) is not logged twice, so reruns add runs only for jobs that
actually ran again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxrmask.atomic import write_json
from cxrmask.errors import InputError

log = logging.getLogger(__name__)

MAX_PARAM_LENGTH = 6000


def config_hash(config: Any) -> str:
    """Short stable digest of a config subtree (key order does not matter)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> dotted keys with string values, as MLflow params are."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = (json.dumps(value) if isinstance(value, list | tuple) else str(value))[
                :MAX_PARAM_LENGTH
            ]
    return flat


def git_commit(path: str | os.PathLike[str] = ".") -> str | None:
    """The commit of the checkout at ``path`` (with ``-dirty`` when it has changes), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


class RunRecorder:
    """Collects one job's params, metrics, tags and artifacts, then saves them as a record."""

    def __init__(
        self, rule: str, wildcards: Mapping[str, Any], config: Mapping[str, Any], workdir: str = "."
    ):
        self.start_time = _now_ms()
        self.name = "/".join([rule, *(f"{k}={v}" for k, v in wildcards.items())])
        self.params: dict[str, str] = flatten(config)
        self.metrics: list[list[Any]] = []
        self.artifacts: list[str] = []
        self.tags: dict[str, str] = {
            "mlflow.runName": self.name,
            "cxrmask.rule": rule,
            "cxrmask.wildcards": json.dumps(dict(wildcards), sort_keys=True),
            "cxrmask.config_hash": config_hash(config),
            **{f"cxrmask.wildcard.{k}": str(v) for k, v in wildcards.items()},
        }
        commit = git_commit(workdir)
        if commit:
            self.tags["mlflow.source.git.commit"] = commit

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add params (nested mappings are flattened)."""
        self.params.update(flatten(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Add metric values at ``step``; NaN and infinite values are kept out (MLflow rejects some)."""
        now = _now_ms()
        for key, value in metrics.items():
            value = float(value)
            if value == value and abs(value) != float("inf"):
                self.metrics.append([key, value, 0 if step is None else int(step), now])

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Attach a file that exists when the record is saved."""
        self.artifacts.append(os.fspath(path))

    def save(self, path: str | os.PathLike[str], status: str = "FINISHED") -> None:
        """Write the record atomically; artifacts must exist by now."""
        missing = [a for a in self.artifacts if not Path(a).is_file()]
        if missing:
            raise InputError(f"run record {path}: artifacts missing: {missing}.")
        write_json(
            path,
            {
                "name": self.name,
                "params": self.params,
                "metrics": self.metrics,
                "tags": self.tags,
                "artifacts": self.artifacts,
                "start_time": self.start_time,
                "end_time": _now_ms(),
                "status": status,
            },
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
