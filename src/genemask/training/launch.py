"""How the workflow launches `genemask pretrain` on a job's GPUs and nodes, and whether the run's global batch
splits over them: checked when the workflow is parsed and by `genemask check-config --profile`, never first at
job start on the cluster. No torch here.

A job's `gpu` resource is its GPUs in all (the SLURM plugin asks `--gpus=<gpu>`), `nodes` its nodes (default 1:
the plugin then asks `--nodes=1`, so a multi-GPU job stays on one node). One node: `genemask torchrun
--standalone` with one process per GPU. Several nodes: one `genemask torchrun` per node started by `srun`, meeting
at a c10d rendezvous on the job's first node (the plugin passes SLURM_JOB_ID on, so `srun` finds the
allocation); the plugin must then leave the job's shell command to run in the
batch script, not inside its own one-task `srun` (profile: `mpi`, `tasks` = nodes, `tasks_per_gpu: 0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from genemask.config import read_yaml
from genemask.errors import UserError
from genemask.training.settings import batch_geometry

RENDEZVOUS_PORT = 29500  # plus the SLURM job id modulo 10,000: jobs sharing a node do not collide
MULTI_NODE_RESOURCES = "mpi: srun, tasks: <nodes>, tasks_per_gpu: 0"


def _whole(value: object, name: str, source: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{source}: {name} {value!r}: expected a whole number >= {minimum}")
    return value


def pretrain_layout(
    resources: Mapping[str, object], pretrain: Mapping[str, object], source: str
) -> tuple[int, int]:
    """(GPUs per node, nodes) of a pretraining job with these resources, after checking that the config's global
    batch (and explicit micro-batch) splits over its processes and that a multi-node job is launchable."""
    gpus = _whole(resources.get("gpu", 0) or 0, "gpu", source, 0)
    nodes = _whole(resources.get("nodes", 1) or 1, "nodes", source, 1)
    if nodes > 1 and gpus == 0:
        raise UserError(
            f"{source}: nodes {nodes} without GPUs; multi-node pretraining needs gpu = nodes x GPUs per node"
        )
    if gpus % nodes:
        raise UserError(
            f"{source}: gpu {gpus} (GPUs of the job in all) is not the same number on each of {nodes} nodes"
        )
    if nodes > 1 and (
        not resources.get("mpi") or resources.get("tasks") != nodes or resources.get("tasks_per_gpu") != 0
    ):
        raise UserError(
            f"{source}: nodes {nodes} needs {MULTI_NODE_RESOURCES.replace('<nodes>', str(nodes))} as well, so that "
            "the job's shell command can start one launcher per node (README, Several nodes)"
        )
    world = max(1, gpus)
    global_batch, micro = int(pretrain["global_batch"]), pretrain["batch_size"]
    # auto can shrink the micro-batch down to one sequence per process and step
    cap = -(-global_batch // world) if micro == "auto" else int(micro)
    try:
        batch_geometry(global_batch, world, cap)
    except UserError as error:
        raise UserError(
            f"{source} with pretrain.global_batch and pretrain.batch_size {micro}: {error}"
        ) from None
    return gpus // nodes if gpus else 0, nodes


def launch_prefix(gpus_per_node: int, nodes: int, cpus_per_node: int = 1) -> str:
    """The command that starts `genemask pretrain ...` on every GPU of the job (what precedes `pretrain`). The
    plugin strips SLURM's step settings from the environment, so srun is told each node's GPUs and CPUs."""
    if nodes > 1:
        # The job's shell command runs in the batch script, which SLURM starts on the job's first node.
        first_host, port = "$(hostname)", f"$(({RENDEZVOUS_PORT} + SLURM_JOB_ID % 10000))"
        return (
            f"srun --nodes {nodes} --ntasks-per-node 1 --gpus-per-node {gpus_per_node}"
            f" --cpus-per-task {cpus_per_node} --kill-on-bad-exit=0"
            f" genemask torchrun --nnodes {nodes} --nproc-per-node {gpus_per_node}"
            f' --rdzv-backend c10d --rdzv-id "$SLURM_JOB_ID" --rdzv-endpoint "{first_host}:{port}" -m genemask'
        )
    if gpus_per_node > 1:
        return f"genemask torchrun --standalone --nproc-per-node {gpus_per_node} -m genemask"
    return "genemask"


def profile_resources(profile: Path, rule: str = "pretrain_model") -> dict[str, object]:
    """The resources a Snakemake profile (a directory with config.yaml, or the file) gives `rule`: its
    set-resources, capped by the profile's `resources` as Snakemake caps them."""
    path = profile / "config.yaml" if profile.is_dir() else profile
    settings = read_yaml(path) or {}
    given = dict((settings.get("set-resources") or {}).get(rule) or {})
    caps = {}
    for item in settings.get("resources") or []:
        name, _, value = str(item).partition("=")
        if value.strip().isdigit():
            caps[name.strip()] = int(value)
    for name, value in given.items():
        if isinstance(value, int) and name in caps:
            given[name] = min(value, caps[name])
    return given
