"""A real single-node SLURM cluster on this host, for the tests and for trying the SLURM profile by hand.

    python tests/slurm_cluster.py install|start|stop|status

Debian's slurm-wlm and munge are installed with apt when missing (root only). munged, slurmctld and slurmd run
as root; their state, logs, munge key and socket live under one folder in the temp dir (`STATE_DIR`).
The configuration itself must be the system one, /etc/slurm/slurm.conf: snakemake's job step plugin strips
SLURM_CONF from the environment of the `srun` it starts inside each job, so a private configuration would
not reach it. An existing slurm.conf that this module did not write is never replaced.

Only one cluster runs at a time: `session()` holds a lock for its lifetime, and every start first stops
whatever an earlier run left behind (found through the state folder), so a crashed test run never blocks
the next one.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STATE_DIR = Path(tempfile.gettempdir()) / "genemask-slurm"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by genemask-pipeline tests/slurm_cluster.py; removed when its cluster stops."
PARTITION = "test"
APT_PACKAGES = ("slurm-wlm", "munge")
COMMANDS = (
    "munged",
    "munge",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
)
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


class ClusterUnavailable(RuntimeError):
    """This host cannot run the cluster at all (not root, no apt, a foreign SLURM set-up): tests skip."""


@dataclass(frozen=True)
class Cluster:
    node: str
    cpus: int
    memory_mb: int
    partition: str
    state_dir: Path


def command_path(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")


def slurm_env() -> dict[str, str]:
    """The environment for SLURM commands: the system configuration, which is this cluster's."""
    env = {key: value for key, value in os.environ.items() if key != "SLURM_CONF"}
    env["PATH"] = f"{env.get('PATH', '')}:{SBIN_PATH}"
    return env


def run(*args: str | Path, timeout: float = 30) -> str:
    done = subprocess.run(
        [str(arg) for arg in args], env=slurm_env(), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def install() -> None:
    """Install slurm-wlm and munge with apt when a command is missing; ClusterUnavailable when impossible."""
    missing = [name for name in COMMANDS if command_path(name) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"SLURM is not installed ({', '.join(missing)} missing) and we are not root")
    if command_path("apt-get") is None:
        raise ClusterUnavailable(
            f"SLURM is not installed ({', '.join(missing)} missing) and there is no apt-get"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300"]
    for args in (["update"], ["install", "-y", "--no-install-recommends", *APT_PACKAGES]):
        done = subprocess.run(apt + args, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(apt + args)} failed: {done.stderr.strip()[-2000:]}")
    still_missing = [name for name in COMMANDS if command_path(name) is None]
    if still_missing:
        raise RuntimeError(
            f"apt installed {' '.join(APT_PACKAGES)} but {', '.join(still_missing)} are missing"
        )


def host_resources() -> tuple[str, int, int]:
    """Node name (`hostname -s`), usable CPUs, and memory for jobs in MB: total less max(1 GB, 10 %)."""
    node = socket.gethostname().split(".")[0]
    cpus = len(os.sched_getaffinity(0))
    meminfo = Path("/proc/meminfo").read_text()
    total_mb = (
        next(int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")) // 1024
    )
    return node, cpus, total_mb - max(1024, total_mb // 10)


def slurm_conf(cluster: Cluster) -> str:
    state = cluster.state_dir
    return f"""{MARKER}
ClusterName=genemask
SlurmctldHost={cluster.node}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={state}/munge-run/munge.socket
StateSaveLocation={state}/slurmctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/log/slurmctld.log
SlurmdLogFile={state}/log/slurmd.log
# No cgroups in containers: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=5
# Finished jobs stay visible to `squeue --states=all` for an hour: the executor's status checks and the
# tests rely on it.
MinJobAge=3600
NodeName={cluster.node} NodeAddr=127.0.0.1 CPUs={cluster.cpus} RealMemory={cluster.memory_mb} State=UNKNOWN
PartitionName={cluster.partition} Nodes={cluster.node} Default=YES MaxTime=INFINITE State=UP
"""


def our_processes(state_dir: Path) -> list[int]:
    """PIDs of this cluster's daemons (command line, cwd or an open file under STATE_DIR) and their jobs."""
    marker = str(state_dir)
    daemons, parents = [], {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # "ppid" is the 2nd field after the parenthesised command name, which may contain spaces.
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if not os.path.basename(os.readlink(proc / "exe")).startswith(DAEMONS):
                continue
            places = [(proc / "cmdline").read_bytes().decode(errors="replace"), os.readlink(proc / "cwd")]
            places += [os.readlink(fd) for fd in (proc / "fd").iterdir()]
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            continue
        if any(marker in place for place in places):
            daemons.append(int(proc.name))
    found = set(daemons)
    frontier = daemons
    while (
        frontier
    ):  # job processes: descendants of slurmstepd, which proctrack/linuxproc follows by parentage
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in found]
        found.update(frontier)
    return sorted(found)


def wait_until(predicate, timeout: float, what: str, logs: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}{log_tails(logs)}")
        time.sleep(0.2)


def log_tails(log_dir: Path | None, lines: int = 15) -> str:
    if log_dir is None or not log_dir.is_dir():
        return ""
    parts = []
    for log in sorted(log_dir.iterdir()):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"\n--- {log} (last {lines} lines)\n" + "\n".join(tail))
    return "".join(parts)


def daemon(log_dir: Path, name: str, *args: str | Path) -> None:
    """Start a daemon that forks into the background; its start-up errors go to LOG_DIR/NAME.out."""
    with open(log_dir / f"{name}.out", "ab") as out:
        done = subprocess.run(
            [name, *map(str, args)],
            env=slurm_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=60,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{name} did not start ({done.returncode}){log_tails(log_dir)}")


def node_state(node: str) -> str:
    try:
        return run("sinfo", "--noheader", "--Node", "--nodes", node, "--format=%T", timeout=10).strip()
    except (RuntimeError, subprocess.TimeoutExpired):
        return ""


def controller_up() -> bool:
    try:
        return "UP" in run("scontrol", "ping", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False


def start(state_dir: Path = STATE_DIR) -> Cluster:
    """Stop leftovers, start munged, slurmctld and slurmd with fresh state; return once the node is idle."""
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
        raise ClusterUnavailable(f"{SLURM_CONF} belongs to another SLURM set-up; not replacing it")
    if os.geteuid() != 0:
        raise ClusterUnavailable("starting SLURM daemons (SlurmUser=root) needs root")
    stop(state_dir)
    node, cpus, memory_mb = host_resources()
    cluster = Cluster(node, cpus, memory_mb, PARTITION, state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    for sub in ("munge", "munge-run", "slurmctld", "slurmd", "log"):
        (state_dir / sub).mkdir(parents=True)
    # munged insists on a key readable only by its owner, in a folder only its owner can enter.
    (state_dir / "munge").chmod(0o700)
    key = state_dir / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    log_dir = state_dir / "log"
    socket_path = state_dir / "munge-run" / "munge.socket"
    daemon(
        log_dir,
        "munged",
        "--force",  # running as root
        f"--key-file={key}",
        f"--socket={socket_path}",
        f"--pid-file={state_dir / 'munge-run' / 'munged.pid'}",
        f"--log-file={log_dir / 'munged.log'}",
        f"--seed-file={state_dir / 'munge' / 'munged.seed'}",
    )
    wait_until(socket_path.exists, 30, "the munge socket", log_dir)
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(slurm_conf(cluster))
    daemon(log_dir, "slurmctld")
    wait_until(controller_up, 60, "slurmctld to answer `scontrol ping`", log_dir)
    daemon(log_dir, "slurmd")
    wait_until(lambda: node_state(node) == "idle", 90, f"node {node} to be idle in sinfo", log_dir)
    return cluster


def stop(state_dir: Path = STATE_DIR) -> None:
    """Cancel every job, stop this cluster's daemons (SIGKILL after 15 s) and remove its slurm.conf."""
    ours = SLURM_CONF.exists() and MARKER in SLURM_CONF.read_text(errors="replace")
    if ours and our_processes(state_dir) and controller_up():
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            run("scancel", "--user", str(os.geteuid()), timeout=10)
            wait_until(
                lambda: not run("squeue", "--noheader", timeout=10).strip(), 30, "cancelled jobs to end"
            )
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in our_processes(state_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(RuntimeError):
            wait_until(lambda: not our_processes(state_dir), 15, "SLURM daemons to exit")
            break
    if our_processes(state_dir):
        raise RuntimeError(f"SLURM daemons survived SIGKILL: {our_processes(state_dir)}")
    if ours:
        SLURM_CONF.unlink()


@contextlib.contextmanager
def session(state_dir: Path = STATE_DIR, lock_timeout: float = 3600) -> Iterator[Cluster]:
    """Install when needed, start a fresh cluster, yield it, stop it; one session at a time on this host."""
    install()
    lock_path = state_dir.with_name(state_dir.name + ".lock")
    with open(lock_path, "w") as lock:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"another test session has held {lock_path} for {lock_timeout:.0f} s"
                    ) from None
                time.sleep(1)
        try:
            yield start(state_dir)
        finally:
            stop(state_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["install", "start", "stop", "status"])
    action = parser.parse_args(argv).action
    try:
        if action == "install":
            install()
        elif action == "start":
            install()
            cluster = start()
            print(f"{cluster.node} idle: {cluster.cpus} CPUs, {cluster.memory_mb} MB, partition {PARTITION}")
        elif action == "stop":
            stop()
        else:
            print(run("sinfo") if controller_up() else "not running")
    except ClusterUnavailable as err:
        print(f"slurm_cluster: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
