"""Running the project's Snakemake workflow from tests, and reading what it planned."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "config" / "demo.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake(
    *args: str | Path, check: bool = True, timeout: float = 1800, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run this environment's Snakemake in the repository root; fail with its output when ``check``."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(f"snakemake {command} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run (empty when nothing is to be done)."""
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal", output, re.S)
    if not match:
        return {}
    jobs = {}
    for line in match.group(1).splitlines():
        name, count = line.split()
        jobs[name] = int(count)
    return jobs


def overlay(folder: Path, name: str, config: dict) -> Path:
    """A config file with just ``config``, to layer with ``--configfile`` (nested values keep their types)."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(*args: str | Path) -> dict[str, int]:
    """Jobs Snakemake would run, by rule."""
    result = snakemake("-n", *args)
    return planned_jobs(result.stdout + result.stderr)


def tiny_args(results: Path, *extra: str | Path, configs: tuple[Path, ...] = ()) -> list[str | Path]:
    """Arguments of the tiny demo run into ``results``, with more config files layered on top."""
    return [*extra, "--configfile", DEMO, TINY, *configs, "--config", f"results={results}"]
