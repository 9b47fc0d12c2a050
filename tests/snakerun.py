"""Running the project's Snakemake workflow from tests, and reading what it planned.

Every run uses the repository's Snakefile in a working directory of the
test's own (``--directory``), outside the checkout: Snakemake keeps its lock,
job metadata and incomplete-job markers in ``<workdir>/.snakemake``, so a
test never waits on, or rewrites, what a user's run in the checkout holds.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from cxrmask.figure_registry import REPORT_RULE, figure_rules

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
FULL = REPO / "config" / "config.yaml"
DEMO = REPO / "config" / "demo.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
NOTHING_TO_DO = "Nothing to be done"
# Outputs a CPU rerun reproduces byte for byte (figures, timings and run records are not compared).
COMPARED = (
    "tables/auroc.csv",
    "tables/delong.csv",
    "masks/*/shard_*.csv",
    "masks/*/shard_*/*.png",
    "classify/*/*/*/predictions.csv",
    "classify/*/*/*/predictions_shifted.csv",
)


# The rules that draw the tiny pipeline's figures, and the report that shows them.
FIGURE_RULES = figure_rules() | {REPORT_RULE}


def compared_outputs(results: Path) -> dict[str, bytes]:
    """The bytes of every output in COMPARED under ``results``, by relative path."""
    return {
        str(path.relative_to(results)): path.read_bytes()
        for pattern in COMPARED
        for path in sorted(results.glob(pattern))
    }


def with_full_config(args: list[str]) -> list[str]:
    """``args`` with config/config.yaml as the first config file.

    The Snakefile's ``configfile: "config/config.yaml"`` is relative to the
    working directory, so outside the checkout it is given here, first, where
    the directive would have loaded it; a second ``--configfile`` option would
    replace the first, so the file joins the one given, if any.
    """
    if "--configfile" in args:
        at = args.index("--configfile") + 1
        return [*args[:at], str(FULL), *args[at:]]
    return ["--configfile", str(FULL), *args]


def snakemake(
    *args: str | Path,
    workdir: Path | None = None,
    check: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run this environment's Snakemake on the repository's Snakefile in ``workdir``.

    Arguments from :func:`tiny_args` name their working directory already;
    any other call must give one. Relative paths in ``args`` (a profile) are
    read from the repository root. Fails with Snakemake's output when
    ``check`` and it exits non-zero.
    """
    args = [str(arg) for arg in args]
    if "--directory" not in args:
        if workdir is None:
            raise TypeError("snakemake() needs a working directory outside the checkout: pass workdir")
        workdir.mkdir(parents=True, exist_ok=True)
        args = ["--snakefile", str(SNAKEFILE), "--directory", str(workdir), *with_full_config(args)]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        shown = " ".join(map(str, args))
        raise AssertionError(f"snakemake {shown} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run; empty only when nothing is to be done.

    Output with neither the table nor Snakemake's "Nothing to be done" is an
    AssertionError showing it, so a change in Snakemake's wording cannot turn
    into a plan that is silently empty.
    """
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+\d+", output, re.S)
    if match is None:
        if NOTHING_TO_DO in output:
            return {}
        raise AssertionError(f"no job table and no {NOTHING_TO_DO!r} in Snakemake's output:\n{output}")
    jobs = {}
    for line in match.group(1).splitlines():
        name, count = line.split()
        jobs[name] = int(count)
    return jobs


def planned_job_files(output: str) -> list[dict]:
    """Every job block of a dry run (Snakemake prints them without ``--quiet``): its rule, input and output
    paths and wildcards. Fails showing the output when it has no block, so a change in Snakemake's
    wording cannot turn into a plan with no jobs to check."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", output):
        head = re.match(r"(?:local)?rule (\w+):\n", block)
        if head is None:
            continue
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        jobs.append(
            {
                "rule": head.group(1),
                "input": fields["input"].split(", ") if "input" in fields else [],
                "output": fields["output"].split(", ") if "output" in fields else [],
                "wildcards": dict(
                    item.split("=", 1) for item in fields.get("wildcards", "").split(", ") if item
                ),
            }
        )
    if not jobs:
        raise AssertionError(f"no job block in Snakemake's output:\n{output}")
    return jobs


def overlay(folder: Path, name: str, config: dict) -> Path:
    """A config file with just ``config``, to layer with ``--configfile`` (nested values keep their types)."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(*args: str | Path, workdir: Path | None = None) -> dict[str, int]:
    """Jobs Snakemake would run in ``workdir`` (or the one ``args`` name), by rule."""
    result = snakemake("-n", *args, workdir=workdir)
    return planned_jobs(result.stdout + result.stderr)


def tiny_args(results: Path, *extra: str | Path, configs: tuple[Path, ...] = ()) -> list[str | Path]:
    """Arguments of the tiny demo run into ``results``, with more config files layered on top.

    The run's working directory (its ``.snakemake``) is the results folder's
    parent, so every run on one results folder, and only those, share it.
    """
    return [
        *extra,
        "--snakefile",
        SNAKEFILE,
        "--directory",
        results.parent,
        "--configfile",
        FULL,
        DEMO,
        TINY,
        *configs,
        "--config",
        f"results={results}",
    ]
