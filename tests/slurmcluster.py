"""A real single-node SLURM for tests: munged, slurmctld and slurmd from Debian's packages.

Everything of this cluster lives in one folder (its own munge key and socket,
``slurm.conf`` reached through ``SLURM_CONF``, state, spool and logs), on free
ports, so it touches no system configuration and stops with the test. No
accounting (no slurmdbd), as on many small sites. Two partitions, ``cpu``
(default) and ``gpu``, share the node; the node declares two GPUs as a
generic resource without device files, so ``--gpus`` requests are scheduled
and accounted by SLURM for real while the jobs themselves run on the CPU.

Starting it needs the daemons (``slurm-wlm``, ``munge``) and root, since
slurmd launches jobs as their owner; as root they are installed with apt when
absent. Anything else is a skip with the reason.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
PACKAGES = ("slurm-wlm", "munge")
GPUS = 2
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF = Path("/run/slurm/conf/slurm.conf")


class SlurmUnavailableError(RuntimeError):
    """SLURM cannot run here; the message says why (the test is skipped with it)."""


def ensure_installed() -> None:
    """Install slurm-wlm and munge with apt when a daemon is missing and we are root."""
    if all(_which(name) for name in DAEMONS):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailableError("slurm-wlm and munge are not installed and installing them needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailableError(
            "slurm-wlm and munge are not installed and there is no apt-get to install them"
        )
    # The suite points every http(s) proxy variable at a port where nothing listens ("no network" for
    # downloaders); apt reaches its own mirrors, through its own configuration.
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            raise SlurmUnavailableError(
                f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    missing = [name for name in DAEMONS if not _which(name)]
    if missing:
        raise SlurmUnavailableError(f"installed {' '.join(PACKAGES)} but still missing {missing}")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    return total_kb // 1024 * 3 // 4


class SlurmCluster:
    """One node, two partitions, no accounting; ``env`` points SLURM's commands at it."""

    def __init__(self, root: Path) -> None:
        if os.geteuid() != 0:
            raise SlurmUnavailableError("a SLURM node runs jobs as their owner, which needs root")
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._daemons: list[subprocess.Popen] = []
        self._published = False

    def start(self, timeout: float = 60) -> None:
        """Start munged, slurmctld and slurmd; return once the node accepts jobs."""
        for folder in ("munge", "state", "spool", "logs"):
            (self.root / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._start_munge()
        self._write_config()
        self._publish_config()
        self._daemons.append(self._spawn(_which("slurmctld"), "-D", "-i", log="slurmctld.out"))
        self._daemons.append(self._spawn(_which("slurmd"), "-D", "-N", self.node, log="slurmd.out"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).stdout.split()
            if state and state[0] in ("idle", "mixed", "allocated"):
                return
            if any(daemon.poll() is not None for daemon in self._daemons):
                break
            time.sleep(0.5)
        raise SlurmUnavailableError(f"the SLURM node did not come up within {timeout:.0f} s:\n{self.logs()}")

    def stop(self) -> None:
        """Cancel every job, then stop the daemons."""
        if self._daemons:
            self.run("scancel", "--full", "--user", "root", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for daemon in reversed(self._daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        self._daemons.clear()
        if self._published:
            RUN_CONF.unlink(missing_ok=True)
            RUN_CONF.parent.rmdir()
            self._published = False

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields: what SLURM itself recorded for a job."""
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        fields = {}
        for token in out.split():
            key, _, value = token.partition("=")
            fields[key] = value
        return fields

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted((self.root / "logs").glob("*"))
        )

    def _spawn(self, *command: str | None, log: str) -> subprocess.Popen:
        with open(self.root / "logs" / log, "w") as out:
            return subprocess.Popen(
                [str(c) for c in command],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _publish_config(self) -> None:
        """Make the configuration visible where commands inside jobs look for it.

        Snakemake's job step removes every ``SLURM_*`` variable, ``SLURM_CONF``
        included, before it calls ``srun``; srun then reads the default
        ``/etc/slurm/slurm.conf`` or else ``/run/slurm/conf/slurm.conf`` (where
        a configless slurmd keeps its copy). The latter is linked to this
        cluster's file for as long as it runs.
        """
        if RUN_CONF.is_symlink() and not RUN_CONF.exists():  # left by a test cluster that was killed
            RUN_CONF.unlink()
            RUN_CONF.parent.rmdir()
        if DEFAULT_CONF.exists() or RUN_CONF.parent.exists():
            raise SlurmUnavailableError(
                f"this machine has a SLURM configuration ({DEFAULT_CONF} or {RUN_CONF.parent}); "
                "a test cluster beside it would send job steps to the wrong controller"
            )
        RUN_CONF.parent.mkdir(parents=True)
        RUN_CONF.symlink_to(self.conf)
        self._published = True

    def _start_munge(self) -> None:
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        munge = self.root / "munge"
        self._daemons.append(
            self._spawn(
                _which("munged"),
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
                f"--log-file={self.root / 'logs' / 'munged.log'}",
                log="munged.out",
            )
        )
        deadline = time.monotonic() + 20
        while not self.munge_socket.exists():
            if time.monotonic() > deadline or self._daemons[-1].poll() is not None:
                raise SlurmUnavailableError(f"munged did not start:\n{self.logs()}")
            time.sleep(0.1)

    def _write_config(self) -> None:
        root, node = self.root, self.node
        self.conf.write_text(
            f"""ClusterName=cxrmask-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "logs" / "slurmctld.log"}
SlurmdLogFile={root / "logs" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
KillWait=10
NodeName={node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_memory_mb()} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=cpu Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={node} MaxTime=INFINITE State=UP
"""
        )
        # SLURM counts a GPU per device file; plain files stand in for /dev/nvidia*.
        devices = [root / f"gpu{i}" for i in range(GPUS)]
        for device in devices:
            device.touch()
        (root / "gres.conf").write_text(
            "".join(f"NodeName={node} Name=gpu File={device}\n" for device in devices)
        )
