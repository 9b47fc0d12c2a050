"""The tiny pipeline on a real single-node SLURM through profiles/slurm, with a job cancelled halfway.

The cluster (tests/slurmcluster.py) is real: munged, slurmctld and slurmd, no
accounting, a ``cpu`` and a ``gpu`` partition. On top of profiles/slurm the
test layers only what a site sets (GPU rules to the GPU partition, no account,
job status from squeue) and, as a user would in their config, gives the GPU
rules a GPU and the image cache two threads. Status checks start after 2 s
instead of the plugin's 40 s, which only shortens the run.

While the run goes, one mask shard's job is cancelled with ``scancel`` as it
writes its masks: Snakemake must name the job, leave no finished-looking
output and no temporaries, resubmit it with twice the memory and wall time
(the profile's one retry), and finish with the same results as a local run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from slurmcluster import SlurmCluster, SlurmUnavailableError, ensure_installed
from snakerun import DEMO, FIGURE_RULES, REPO, compared_outputs, overlay, tiny_args

pytestmark = pytest.mark.slow

GPU_RULES = ("finetune_medsam", "generate_masks", "train_classifier")
# The tiny pipeline's `localrule: True` rules.
LOCAL_RULES = FIGURE_RULES | {"log_mlflow", "saliency_table", "summarise_claims"}
# The user's resources for this run: a GPU for each GPU rule, two threads for the image cache (thread
# counts of the model rules stay at the demo's 1, so the numbers can match the local run byte for byte).
RESOURCES = {rule: {"gpu": 1} for rule in GPU_RULES} | {"cache_images": {"threads": 2}}
# What a site adds to profiles/slurm.
SITE_PROFILE = {
    "set-resources": {rule: {"slurm_partition": "gpu"} for rule in GPU_RULES},
    "slurm-no-account": True,
    "slurm-status-command": "squeue",
}
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]
CANCELLED = "rule_generate_masks_wildcards_0"  # the comment the executor gives mask shard 0's job


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    try:
        ensure_installed()
        started = SlurmCluster(tmp_path_factory.mktemp("slurm"))
        started.start()
    except SlurmUnavailableError as exc:
        pytest.skip(f"no SLURM: {exc}")
    yield started
    started.stop()


@dataclass
class Cancellation:
    """What the test saw around the scancel of mask shard 0's job."""

    cancelled: str = ""
    retry: str = ""
    outputs_after_cancel: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class SlurmRun:
    results: Path
    log: str
    seconds: float
    cancel: Cancellation


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> SlurmRun:
    folder = tmp_path_factory.mktemp("on_slurm")
    results = folder / "results"
    (folder / "site").mkdir()
    (folder / "site" / "config.yaml").write_text(yaml.safe_dump(SITE_PROFILE))
    resources = overlay(folder, "resources", {"resources": RESOURCES})
    args = ["--profile", "profiles/slurm", "--profile", folder / "site", *FAST_STATUS, "--verbose"]
    command = [sys.executable, "-m", "snakemake", *map(str, tiny_args(results, *args, configs=(resources,)))]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=REPO, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    cancel = Cancellation()
    watcher = threading.Thread(target=cancel_mask_shard, args=(cluster, results, proc, cancel))
    watcher.start()
    log, _ = proc.communicate(timeout=1800)
    watcher.join()
    if proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{log[-20000:]}\n{cluster.logs()}")
    return SlurmRun(results, log, time.monotonic() - started, cancel)


def cancel_mask_shard(cluster: SlurmCluster, results: Path, proc: subprocess.Popen, seen: Cancellation):
    """scancel mask shard 0's job while it writes its masks; note what is left until its retry appears."""
    folder = results / "masks" / "tight"
    try:
        seen.cancelled = wait_for(lambda: writing_job(cluster, folder), proc, "shard 0 writing its masks")
        cluster.run("scancel", seen.cancelled)
        seen.retry = wait_for(lambda: job_with_comment(cluster, CANCELLED, seen.cancelled), proc, "a retry")
        seen.outputs_after_cancel = sorted(p.name for p in folder.glob("*shard_0*"))
    except AssertionError as exc:
        seen.error = str(exc)


def writing_job(cluster: SlurmCluster, folder: Path) -> str | None:
    return job_with_comment(cluster, CANCELLED) if list(folder.glob(".shard_0.*.part")) else None


def job_with_comment(cluster: SlurmCluster, comment: str, other_than: str = "") -> str | None:
    for line in cluster.run("squeue", "-h", "-t", "PENDING,RUNNING", "-o", "%i %k").stdout.splitlines():
        job, _, text = line.partition(" ")
        if text.strip() == comment and job != other_than:
            return job
    return None


def wait_for(probe, proc: subprocess.Popen, what: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def submitted(log: str) -> list[str]:
    """SLURM job ids the executor reported submitting."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log)


def sbatch_calls(log: str) -> dict[str, list[str]]:
    """Rule -> the sbatch command lines submitted for it (the executor logs each with --verbose)."""
    calls: dict[str, list[str]] = {}
    for call in re.findall(r"sbatch call: (sbatch .*)", log):
        rule = re.search(r"--comment '?rule_(\w+?)(_wildcards_\S*?)?'? ", call).group(1)
        calls.setdefault(rule, []).append(call)
    return calls


def test_every_job_but_the_local_rules_went_through_sbatch(cluster, slurm_run):
    jobs = {slurm: cluster.job(slurm) for slurm in submitted(slurm_run.log)}
    rules = {re.match(r"rule_(\w+?)(_wildcards_|$)", job["Comment"]).group(1) for job in jobs.values()}
    remote = {"make_demo_data", "finetune_medsam", "generate_masks", "train_classifier", "compare_conditions"}
    assert remote <= rules
    assert not rules & LOCAL_RULES
    states = {slurm: job["JobState"] for slurm, job in jobs.items()}
    assert states.pop(slurm_run.cancel.cancelled) == "CANCELLED"
    assert set(states.values()) == {"COMPLETED"}
    # The local rules ran inside the submitting Snakemake, on this host.
    for rule in LOCAL_RULES:
        assert re.search(rf"^localrule {rule}:", slurm_run.log, re.M)
    assert (slurm_run.results / "mlflow" / "runs.csv").exists()
    print(f"\n{len(jobs)} SLURM jobs ({len(states)} completed), {slurm_run.seconds:.0f} s")


def test_sbatch_carries_each_rules_threads_memory_runtime_gpus_and_partition(cluster, slurm_run):
    calls = sbatch_calls(slurm_run.log)
    config = yaml.safe_load(DEMO.read_text())["resources"]
    for rule in ("finetune_medsam", "generate_masks", "train_classifier", "cache_images", "dilate_masks"):
        want = {**config["default"], **config.get(rule, {}), **RESOURCES.get(rule, {})}
        call = calls[rule][0]
        assert f"--cpus-per-task={want['threads']}" in call, call
        assert f"--mem {want['mem_mb']}" in call, call
        assert f"-t {want['runtime']}" in call, call
        assert ("--gpus=1" in call) == (rule in GPU_RULES), call
        assert ("-p gpu" in call) == (rule in GPU_RULES), call
    # Rules without a `resources:` entry get the profile's defaults.
    assert "--mem 2000" in calls["compare_conditions"][0] and "-t 30" in calls["compare_conditions"][0]
    # And SLURM recorded what was asked.
    for slurm in submitted(slurm_run.log):
        job = cluster.job(slurm)
        if job["Comment"].startswith("rule_train_classifier"):
            assert job["Partition"] == "gpu" and job["TresPerJob"] == "gres:gpu:1"
            assert job["MinMemoryNode"] == "4000M" and job["TimeLimit"] == "01:00:00"
        if job["Comment"].startswith("rule_cache_images"):
            assert job["Partition"] == "cpu" and job["NumCPUs"] == "2" and "TresPerJob" not in job


def test_outputs_equal_a_local_runs(slurm_run, tiny_run):
    """The cluster's run, from scratch in its own folder, gives the local run's bytes: every mask, table and
    prediction, the generated data and the fine-tuning redone (the suite's from-scratch rerun check)."""
    expected = compared_outputs(tiny_run)
    assert len(expected) > 50  # two tables, four mask tables, every mask PNG, six prediction tables
    assert compared_outputs(slurm_run.results) == expected


def test_a_cancelled_job_is_named_and_retried_with_more_memory_and_time_leaving_no_litter(cluster, slurm_run):
    seen = slurm_run.cancel
    assert not seen.error, seen.error
    assert re.search(rf"SLURM-job '{seen.cancelled}' failed, SLURM status is: 'CANCELLED'", slurm_run.log)
    assert "Error in rule generate_masks" in slurm_run.log
    # Nothing of shard 0 looked finished once its job was cancelled, and SIGTERM removed the temporaries.
    assert seen.outputs_after_cancel == []
    first, retry = cluster.job(seen.cancelled), cluster.job(seen.retry)
    assert (first["MinMemoryNode"], retry["MinMemoryNode"]) == ("4000M", "8000M")
    assert (first["TimeLimit"], retry["TimeLimit"]) == ("01:00:00", "02:00:00")
    assert retry["JobState"] == "COMPLETED"
    assert list(slurm_run.results.rglob(".*.part*")) == []
