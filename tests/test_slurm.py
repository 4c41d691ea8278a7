"""The SLURM profile (slurm/config.yaml), and the demo run through it on a real single-node SLURM cluster.

The cluster (tests/slurm_cluster.py) is started once per test session, installing Debian's slurm-wlm and munge
when they are missing; the tests skip where that is impossible (not root, no apt). The demo runs in a copy of
workflow/, config/ and slurm/ under tmp_path, so it never touches the repository's results/. It runs a slimmer
demo (SLURM_DEMO: every rule of the demo, fewer strategies, steps and runs), which keeps CI within its budget.
"""

from __future__ import annotations

import copy
import itertools
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import slurm_cluster
import yaml
from slurm_cluster import Cluster, ClusterUnavailable

from genemask.masking import registry

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm" / "config.yaml"
DEMO_CONFIG = "config/demo.yaml"
SLURM_DEMO_CONFIG = "config/slurm-demo.yaml"


def _slurm_demo() -> dict:
    """The demo, slimmed: every rule still runs (a time-variant strategy and its components' masks, an export, the
    k-mer and random-init references, several seeds for the paired tables), with fewer steps and runs."""
    config = copy.deepcopy(yaml.safe_load((REPO / DEMO_CONFIG).read_text()))
    config["genome"]["simulate"] |= {"length": 600_000, "contigs": 2}
    config["masking"] |= {"strategies": ["random", "genemask", "global", "cm-gems"], "epochs": 1}
    config["pretrain"] |= {
        "strategies": ["random", "cm-gems"],
        "steps": [24],
        "export_steps": [12],
        "keep_weights_every": 12,
        "eval_every": 8,
        "checkpoint_every": 8,
        "eval_chunks": 50,
    }
    config["masking"]["cm_gems"]["tau"] = 1e9  # switches at the first evaluation: both components train
    config["finetune"] |= {"tasks": ["sim-promoter"], "shots": [10], "seeds": [0, 1]}
    config["motifs"] |= {"top_n": 20, "logos": 2}
    return config


SLURM_DEMO = _slurm_demo()
# What a test run adds to the profile: the status command that works without accounting, no account
# (none exists), and a first status check after 1 s instead of 40 s.
TEST_FLAGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "1",
]
# Resources that name things of a real site: the test cluster has none of them.
SITE_KEYS = {"slurm_account", "slurm_partition", "gpu_model", "constraint", "qos", "slurm_extra"}
GPU_RULES = ("pretrain_model", "finetune_model")
# Fine-tuning jobs (one per model) bundled per SLURM job in the test (overriding the profile's finetune=4); group jobs run side
# by side on the two CPUs of the test node.
GROUP_SIZE = 10
SUBMITTED = re.compile(r"Job [\w-]+ has been submitted with SLURM jobid (\d+)")  # group jobs have UUIDs


# The demo's jobs take seconds, but the SLURM plugin (2.8) backs off 10 s more after every status check that sees
# no job finish (up to 180 s, right for a site's hour-long jobs): half the demo's wall time here was spent waiting
# to notice finished jobs. The demo run goes through this shim, which keeps the plugin's checks 2 s apart; the
# profile, the workflow and the jobs are untouched.
STEADY_POLLING = """
import asyncio, sys
import snakemake_executor_plugin_slurm as slurm

async def sleep(self):
    await asyncio.sleep(2)

slurm.Executor.sleep = sleep
from snakemake.cli import main
sys.argv[0] = "snakemake"
main()
"""


def venv_env() -> dict[str, str]:
    """The SLURM environment without this interpreter's venv on PATH: the workflow must find `genemask` beside
    the Python that runs it, in every SLURM job too, with no venv activated."""
    env = slurm_cluster.slurm_env()
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = ":".join(part for part in env["PATH"].split(":") if part and part != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    return env


def snakemake(
    *args: str | int | Path, cwd: Path, timeout: float = 120, steady_polling: bool = False
) -> subprocess.CompletedProcess[str]:
    launch = ["-c", STEADY_POLLING] if steady_polling else ["-m", "snakemake"]
    return subprocess.run(
        [sys.executable, *launch, *map(str, args)],
        cwd=cwd,
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def succeed(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{' '.join(done.args)} failed:\n{done.stdout[-5000:]}\n{done.stderr[-15000:]}"
    )
    return done.stdout


def load_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def at_attempt(expression: int | str, attempt: int, task: str = "emp_H3") -> int:
    """A resource value as Snakemake computes it: a number, or a Python expression in `attempt` (and in the
    job's wildcards, as GUE runtimes per task)."""
    return eval(str(expression), {"attempt": attempt, "wildcards": SimpleNamespace(task=task)})


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """The workflow, its configs and the profile, copied so that outputs land under tmp_path."""
    copy = tmp_path / "repo"
    for folder in ("workflow", "config", "slurm"):
        shutil.copytree(REPO / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def workflow_rules(workdir: Path) -> set[str]:
    return set(succeed(snakemake("--list-rules", "--configfile", DEMO_CONFIG, cwd=workdir)).split())


def test_profile_sets_retries_and_resources_that_grow_with_attempts() -> None:
    profile = load_profile()
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    assert profile["rerun-incomplete"] is True
    assert profile["latency-wait"] >= 30
    defaults = profile["default-resources"]
    for key in ("mem_mb", "runtime"):
        assert at_attempt(defaults[key], 1) > 0
        assert at_attempt(defaults[key], 2) > at_attempt(defaults[key], 1), key
    for rule, resources in profile["set-resources"].items():
        if rule == "pretrain_model":  # resumes from its checkpoint: the same request every attempt
            continue
        for key in ("mem_mb", "runtime"):
            for task in ("prom_core_all", "emp_H3", "virus_covid"):
                if key in resources:
                    assert at_attempt(resources[key], 2, task) > at_attempt(resources[key], 1, task), (
                        rule,
                        key,
                    )


def test_pretraining_asks_the_same_for_every_attempt_and_resumes_through_them() -> None:
    resources = load_profile()["set-resources"]["pretrain_model"]
    assert isinstance(resources["runtime"], int) and isinstance(resources["mem_mb"], int)
    assert resources["nodes"] == 1  # a multi-GPU job stays on one node unless asked otherwise
    rule = (REPO / "workflow" / "rules" / "pretrain.smk").read_text()
    assert "retries: PRETRAIN_RETRIES" in rule
    assert (
        "PRETRAIN_RETRIES = None if workflow.local_exec else 10"
        in (REPO / "workflow/rules/common.smk").read_text()
    )


def test_a_fine_tuning_group_asks_at_most_the_site_maximum() -> None:
    """Snakemake sums the runtimes of a group's jobs (one GPU slot a job: one after another); each run's
    runtime is capped so that the group's sum stays within 1,440 minutes at every attempt."""
    profile = load_profile()
    groups = dict(item.split("=") for item in profile["group-components"])
    assert profile["resources"] == ["gpu_slot=1"] and profile["set-resource-scopes"] == ["gpu_slot=local"]
    for rule, group in (("finetune_model", "finetune"), ("gue_finetune", "gue")):
        resources = profile["set-resources"][rule]
        assert resources["gpu_slot"] == 1
        for attempt, task in itertools.product((1, 2, 3, 10), ("prom_core_all", "virus_covid")):
            assert 0 < int(groups[group]) * at_attempt(resources["runtime"], attempt, task) <= 1440


def test_profile_gives_gpus_to_gpu_rules_and_threads_to_cpu_rules() -> None:
    profile = load_profile()
    resources = profile["set-resources"]
    assert all(resources[rule]["gpu"] >= 1 for rule in GPU_RULES)
    assert all(profile["set-threads"][rule] > 1 for rule in ("npmi", "precompute_masks"))
    cpu_rules = ("chunk_genome", "npmi", "precompute_masks", "masking_statistics", "motif_enrichment")
    assert all("mem_mb" in resources[rule] and "gpu" not in resources[rule] for rule in cpu_rules)
    # The plugin rejects --gres/--gpus in slurm_extra: GPUs go through the gpu (and gpu_model) resources.
    extras = [profile["default-resources"].get("slurm_extra", "")]
    extras += [rule_resources.get("slurm_extra", "") for rule_resources in resources.values()]
    assert not any(re.search(r"--(gres|gpus)\b", extra) for extra in extras)


def test_profile_names_only_rules_of_the_workflow(workflow_copy: Path) -> None:
    profile = load_profile()
    named = set(profile["set-resources"]) | set(profile["set-threads"])
    unknown = named - workflow_rules(workflow_copy)
    assert not unknown, f"slurm/config.yaml names rules the workflow does not have: {sorted(unknown)}"


def test_a_batch_that_cannot_be_split_stops_at_parse_time(workflow_copy: Path) -> None:
    done = snakemake(
        *("--profile", "slurm", "--cores", "32", "--configfile", DEMO_CONFIG, "--dry-run"),
        *("--set-resources", "pretrain_model:gpu=32"),
        cwd=workflow_copy,
    )
    assert done.returncode != 0
    assert "global batch 16 cannot be split over 32 processes in micro-batches of at most 8" in done.stderr


def test_snakemake_accepts_the_profile(workflow_copy: Path) -> None:
    plan = succeed(
        snakemake(
            "--profile", "slurm", "--cores", "32", "--configfile", DEMO_CONFIG, "--dry-run", cwd=workflow_copy
        )
    )
    assert re.search(r"^rule \w+:$", plan, re.MULTILINE), plan


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    try:
        with slurm_cluster.session() as running:
            yield running
    except ClusterUnavailable as reason:
        pytest.skip(f"no SLURM cluster on this host: {reason}")


def test_cluster_runs_a_job_with_the_requested_cpus(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "job.txt"
    job = slurm_cluster.run(
        "sbatch",
        "--parsable",
        f"--cpus-per-task={cluster.cpus}",
        "--mem=100",
        f"--output={tmp_path / 'job.log'}",
        f"--chdir={tmp_path}",
        f"--wrap=echo $SLURM_JOB_NODELIST $SLURM_CPUS_PER_TASK > {out}",
    ).strip()
    # `sbatch --wait` would poll every few seconds; squeue answers at once.
    slurm_cluster.wait_until(lambda: slurm_job_states().get(job) == "COMPLETED", 60, f"job {job} to complete")
    assert out.read_text().split() == [cluster.node, str(cluster.cpus)]


def cluster_profile(cluster: Cluster, rules: set[str]) -> dict:
    """The profile's resources fitted to this cluster: no GPUs, no site keys, 1 CPU and 1/CPUs of its memory a job.

    It goes in a second --profile, whose top-level keys replace those of slurm/config.yaml. Every rule gets
    gpu=0: a gpu resource, the profile's or a rule's own, also reaches the `srun` inside the job, where
    `--resources` does not. The memory cap goes in `resources`, which bounds each job's --mem on its own.
    """
    profile = load_profile()

    def local(resources: dict) -> dict:
        return {key: value for key, value in resources.items() if key not in SITE_KEYS}

    return {
        "default-resources": local(profile["default-resources"]),
        "set-resources": {
            rule: {**local(profile["set-resources"].get(rule, {})), "gpu": 0} for rule in rules
        },
        "resources": {"mem_mb": cluster.memory_mb // cluster.cpus},
        # One CPU per job, so that the node runs as many demo jobs side by side as it has CPUs.
        "set-threads": {rule: 1 for rule in rules},
    }


def summary(workdir: Path) -> list[list[str]]:
    """Snakemake's rows for every output of the demo's jobs: path, date, rule, logs, status, plan."""
    rows = succeed(snakemake("--summary", "--configfile", SLURM_DEMO_CONFIG, cwd=workdir)).splitlines()
    assert rows[0].split("\t") == ["output_file", "date", "rule", "log-file(s)", "status", "plan"]
    return [row.split("\t") for row in rows[1:]]


def job_logs(workdir: Path, lines: int = 40) -> str:
    """The ends of the SLURM logs the executor kept (those of failed jobs) and of the rules' own logs."""
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")) + sorted(
        (workdir / "logs").rglob("*")
    )
    return "".join(
        f"\n--- {log.relative_to(workdir)}\n"
        + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        for log in logs
        if log.is_file()
    )


def slurm_job_states() -> dict[str, str]:
    listing = slurm_cluster.run("squeue", "--states=all", "--noheader", "--format=%i|%T")
    return dict(line.split("|") for line in listing.split())


@dataclass(frozen=True)
class DemoRun:
    workdir: Path
    log: str
    elapsed: float
    planned: list[list[str]]


@pytest.fixture(scope="session")
def slurm_demo(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo run once through the profile on the test cluster; later tests inspect what it made."""
    root = tmp_path_factory.mktemp("demo")
    workdir = root / "repo"
    for folder in ("workflow", "config", "slurm"):
        shutil.copytree(REPO / folder, workdir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (workdir / SLURM_DEMO_CONFIG).write_text(yaml.safe_dump(SLURM_DEMO))
    override = root / "cluster-profile"
    override.mkdir()
    fitted = cluster_profile(cluster, workflow_rules(workdir))
    (override / "config.yaml").write_text(yaml.safe_dump(fitted))
    planned = summary(workdir)
    assert planned, "the demo plans no outputs"
    # Isolation: nothing the demo makes exists yet, so no output lies outside the fresh copy.
    assert not [row[0] for row in planned if row[4] == "ok"]
    started = time.monotonic()
    done = snakemake(
        *("--profile", "slurm", "--profile", override, "--configfile", SLURM_DEMO_CONFIG),
        # One core a job (a group job runs its runs one after another), so the node runs jobs side by side.
        *("--cores", 1, "--jobs", cluster.cpus, *TEST_FLAGS),
        *("--group-components", f"finetune={GROUP_SIZE}"),
        cwd=workdir,
        timeout=3600,
        steady_polling=True,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"{done.stderr[-15000:]}{job_logs(workdir)}"
    return DemoRun(workdir, done.stdout + done.stderr, elapsed, planned)


@pytest.mark.slow
def test_demo_runs_through_the_profile_on_slurm(slurm_demo: DemoRun) -> None:
    workdir, log, planned = slurm_demo.workdir, slurm_demo.log, slurm_demo.planned
    finished = summary(workdir)
    assert sorted(row[0] for row in finished) == sorted(row[0] for row in planned)
    for path, _date, rule, _logs, status, plan in finished:
        assert status in ("ok", "removed temp file") and plan == "no update", (path, rule, status, plan)
        assert status != "ok" or (workdir / path).exists(), path
    # Every job that ran was a SLURM job (fine-tuning runs inside group jobs), and SLURM saw each one complete.
    grouped = re.findall(r"^\s+rule (\w+):$", log, re.MULTILINE)
    single = re.findall(r"^rule (\w+):$", log, re.MULTILINE)
    local_jobs = re.findall(r"^localrule (\w+):$", log, re.MULTILINE)
    slurm_ids = SUBMITTED.findall(log)
    print(
        f"demo through SLURM: {len(slurm_ids)} SLURM jobs ({len(single)} single, {len(grouped)} rule jobs in groups),"
        f" {len(local_jobs)} local, {slurm_demo.elapsed:.0f} s"
    )
    group_jobs = len(slurm_ids) - len(single)  # how many depends on when the runs become ready
    assert grouped and 1 <= group_jobs < len(grouped), (single, grouped, slurm_ids)
    assert {row[2] for row in planned} <= set(single) | set(grouped) | set(local_jobs)
    states = slurm_job_states()
    assert {states.get(slurm_id) for slurm_id in slurm_ids} == {"COMPLETED"}, states


@pytest.mark.slow
def test_demo_fills_every_cell_of_the_fewshot_table(slurm_demo: DemoRun) -> None:
    table = (slurm_demo.workdir / "results" / "tables" / "fewshot.csv").read_text()
    demo = SLURM_DEMO["finetune"]
    rows = [line.split(",") for line in table.splitlines()]
    cells = [cell for row in rows[1:] for cell in row[1:]]
    assert len(rows) > 1 and cells and all(cell.strip() for cell in cells), table
    for task in demo["tasks"]:
        assert (slurm_demo.workdir / "results" / "figures" / f"{task}.png").stat().st_size > 10_000


@pytest.mark.slow
def test_report_builds_from_the_demo(slurm_demo: DemoRun) -> None:
    report = slurm_demo.workdir / "results" / "report.html"
    succeed(
        snakemake("--report", report, "--configfile", SLURM_DEMO_CONFIG, cwd=slurm_demo.workdir, timeout=600)
    )
    text = report.read_text(errors="replace")
    assert report.stat().st_size > 200_000  # self-contained: figures are embedded
    for section in ("Genome and chunks", "NPMI", "Masking", "Pretraining", "Few-shot", "Motif enrichment"):
        assert section in text, section


def planned_jobs(workdir: Path, config: dict, tmp_path: Path) -> dict[str, int]:
    """Jobs per rule of a dry run of the finished demo under `config`."""
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = succeed(snakemake("--dry-run", "--configfile", path, cwd=workdir))
    if "Nothing to be done" in plan:
        return {}
    stats = plan[plan.index("Job stats:") :].split("\n\n")[0].splitlines()[3:]
    return {rule: int(count) for rule, count in (line.split() for line in stats) if rule != "total"}


@pytest.mark.slow
def test_rerun_semantics_after_config_changes(slurm_demo: DemoRun, tmp_path: Path) -> None:
    demo = copy.deepcopy(SLURM_DEMO)
    assert planned_jobs(slurm_demo.workdir, demo, tmp_path) == {}

    pretrain = demo["pretrain"]
    # Every run's final model, plus its exports at pretrain.export_steps before its end.
    models_per_run = {
        steps: 1 + sum(step < steps for step in pretrain.get("export_steps", []))
        for steps in pretrain["steps"]
    }
    pretrained_per_strategy = len(pretrain["architectures"]) * sum(models_per_run.values())
    changed = copy.deepcopy(SLURM_DEMO)
    for regime in changed["finetune"]["regimes"].values():  # every shot count's regime
        regime["learning_rate"] *= 2
    jobs = planned_jobs(slurm_demo.workdir, changed, tmp_path)
    neural_jobs = 1  # one fine-tuning job per model: all its tasks, shots and seeds
    neural_models = pretrained_per_strategy * len(pretrain["strategies"]) + len(pretrain["architectures"])
    assert jobs == {
        "finetune_model": neural_jobs * neural_models,
        "fewshot_results": 1,
        "report_learning_curves": 1,
        "all": 1,
    }

    changed = copy.deepcopy(SLURM_DEMO)
    changed["npmi"]["min_count"] = 50
    jobs = planned_jobs(slurm_demo.workdir, changed, tmp_path)
    affected = {"npmi", "precompute_masks", "masking_statistics", "pretrain_model", "finetune_model"}
    assert affected <= set(jobs)
    assert not {"simulate_genome", "chunk_genome", "simulate_tasks", "sample_task", "kmer_baseline"} & set(
        jobs
    )
    # Random masking reads no NPMI: its masks, runs and fine-tuning stay; so do the random-init floors.
    reading_npmi = [strategy for strategy in pretrain["strategies"] if strategy != "random"]
    mask_stores = registry.mask_strategies(demo["masking"]["strategies"])  # cm-* use their components' masks
    assert jobs["precompute_masks"] == len([s for s in mask_stores if s != "random"])
    assert jobs["pretrain_model"] == len(pretrain["architectures"]) * len(reading_npmi) * len(
        pretrain["steps"]
    )
    assert jobs["finetune_model"] == neural_jobs * pretrained_per_strategy * len(reading_npmi)
