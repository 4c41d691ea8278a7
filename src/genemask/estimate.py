"""What a study will cost, before it runs: jobs per rule, GPU-hours and CPU core-hours, and the total.

The jobs are the workflow's own: `snakemake -n --forceall` on the config (every job of the study, whatever
already exists), each with its rule and wildcards. Each job's cost comes from a model of its work:

- pretrain_model: steps x global batch x tokens per chunk, at the pretraining rate of its preset, plus the
  validation passes (forward only) and a start-up overhead;
- finetune_model: one job per model, one process doing every (task, shots, seed) run: a per-process fixed
  cost once, then per run a fixed cost and epochs x training sequences x tokens per sequence at a fine-tuning
  rate, plus the whole test set forward;
- every other rule: an assumed number of core-hours per job (ASSUMED_CORE_HOURS).

Rates are measured when a GPU check report (benchmarks/gpu_check.py, results/gpu_check/report.json) is given,
otherwise derived from an assumed model FLOP utilisation of the GPU type's peak. Every number says which it is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genemask.errors import UserError
from genemask.evaluation.model_names import parse_model_name

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, most specific name first:
# (substring of the CUDA device name, peak, note). benchmarks/gpu_check.py judges MFU against the same table.
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    ("GH200", 989.0, ""),
    ("H200", 989.0, ""),
    ("H100 PCIe", 756.0, ""),
    ("H100 NVL", 835.0, ""),
    ("H100", 989.0, "SXM"),
    ("B200", 2250.0, ""),
    ("A100", 312.0, ""),
    ("L40S", 362.0, ""),
    ("L40", 181.0, ""),
    ("L4", 121.0, ""),
    ("RTX 4090", 165.0, "bf16 dense with fp32 accumulation"),
    ("V100", 125.0, "fp16: V100 has no bf16 tensor cores"),
)

# Assumptions, stated in the output whenever they are used.
FINETUNE_EFFICIENCY = 0.25  # fine-tuning FLOP/s / pretraining FLOP/s: batches of 5-15, padded, no buckets
PRETRAIN_OVERHEAD_S = 180.0  # start-up, validation set, checkpoints, final save, torch.compile
# Fine-tuning's fixed costs, measured on the demo's 2 CPU cores by benchmarks/finetune_fixed_cost.py (one job per
# model, two jobs side by side, `make demo` in a fresh clone, 2026-12-02): per process 9.9 s (interpreter and
# imports, 8 s of it, and the first model load); a GPU check report replaces it with the GPU's, CUDA start-up
# included. Per further run in the same process 0.07 s (the model loaded again from the page cache, encoding, the
# record); 0.3 s leaves room for BERT-base (0.2 s to load).
FINETUNE_PROCESS_S = 9.9
FINETUNE_RUN_S = 0.3
MEAN_CHUNK_NT = 0.5 * 511 + 0.5 * (6 + 510) / 2  # the published chunk-length law: 511 nt or uniform 6..510
REFERENCE_PRESET = "dnabert"  # finetune.references (DNABERT-6) are BERT-base
ASSUMED_CORE_HOURS = {  # per job, on the paper-scale study; local rules run on the login node
    "download_genome": 0.2,
    "download_task_file": 0.01,
    "chunk_genome": 0.3,
    "npmi": 2.0,  # 16 threads, minutes
    "precompute_masks": 1.5,  # 8 threads, minutes; pmi-vocab slowest
    "masking_statistics": 0.2,
    "motif_enrichment": 0.3,
    "prepare_task": 0.01,
    "sample_task": 0.002,
    "kmer_baseline": 0.05,  # one job per task: every shot count and seed
    "simulate_genome": 0.01,
    "simulate_tasks": 0.01,
    "fewshot_results": 0.05,
    "export_model": 0.01,
    "gue_download": 0.01,
    "gue_check": 0.01,
    "gue_results": 0.05,
}
REPORT_CORE_HOURS = 0.05  # report_* rules


@dataclass(frozen=True)
class Job:
    """One job of the dry run: its rule and wildcards, what it reads and writes, and whether its rule declares a
    `gpu` resource (a GPU rule); a job that writes nothing is an aggregate target (all, genome, ...)."""

    rule: str
    wildcards: dict[str, str]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    gpu: bool = False

    @property
    def aggregate(self) -> bool:
        return not self.outputs


@dataclass
class RuleCost:
    rule: str
    jobs: int = 0
    gpu_hours: float = 0.0
    cpu_hours: float = 0.0
    measured: bool = False
    by_preset: dict[str, list[float]] = field(default_factory=dict)  # GPU rules: preset -> [jobs, hours]

    @property
    def basis(self) -> str:
        if self.gpu_hours == 0.0 and self.cpu_hours == 0.0:
            return "-"
        return "measured" if self.measured else "assumed"


# ----------------------------------------------------------------------------------------------------------
# The plan: the workflow's own dry run


JOB_HEADER = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) ([\w-]+):\s*$")
JOB_FIELD = re.compile(r"^\s*(wildcards|input|output|resources): (.*)$")
STATS_ROW = re.compile(r"^([\w-]+)\s+(\d+)$")


def parse_dry_run(text: str) -> list[Job]:
    """Jobs (rule, wildcards, inputs, outputs, GPU) of `snakemake -n` output, checked against its own "Job stats"
    table."""
    jobs: list[Job] = []
    rule, fields = None, {}

    def finish() -> None:
        if rule is not None:
            wildcards = fields.get("wildcards")
            resources = [item.split("=", 1)[0] for item in fields.get("resources", "").split(", ")]
            jobs.append(
                Job(
                    rule,
                    dict(item.split("=", 1) for item in wildcards.split(", ")) if wildcards else {},
                    tuple(fields["input"].split(", ")) if fields.get("input") else (),
                    tuple(fields["output"].split(", ")) if fields.get("output") else (),
                    "gpu" in resources,
                )
            )

    for line in text.splitlines():
        if header := JOB_HEADER.match(line):
            finish()
            rule, fields = header.group(1), {}
        elif rule is not None and (found := JOB_FIELD.match(line)):
            fields.setdefault(found.group(1), found.group(2).strip())
    finish()
    stats = job_stats(text)
    counted = Counter(job.rule for job in jobs)
    if stats is not None and stats != counted:
        raise RuntimeError(f"dry run parsed as {dict(counted)}, but its job stats say {stats}")
    return jobs


def rule_order(jobs: list[Job]) -> list[str]:
    """The rules in the workflow's order: by the depth of their deepest job in the DAG (a job's depth is one more
    than the deepest job writing one of its inputs), then as the dry run lists them; aggregates last."""
    writer = {path: index for index, job in enumerate(jobs) for path in job.outputs}
    depth: dict[int, int] = {}

    def depth_of(index: int, seen: frozenset = frozenset()) -> int:
        if index not in depth:
            upstream = [writer[p] for p in jobs[index].inputs if p in writer and writer[p] not in seen]
            depth[index] = 1 + max((depth_of(u, seen | {index}) for u in upstream), default=-1)
        return depth[index]

    place: dict[str, list] = {}  # rule -> [aggregate, deepest job's depth, first job's index]
    for index, job in enumerate(jobs):
        found = place.setdefault(job.rule, [job.aggregate, 0, index])
        found[1] = max(found[1], depth_of(index))
    return sorted(place, key=lambda rule: place[rule])


def job_stats(text: str) -> Counter | None:
    if "Job stats:" not in text:
        return None
    stats: Counter = Counter()
    for line in text.split("Job stats:", 1)[1].splitlines()[3:]:
        row = STATS_ROW.match(line.strip())
        if row is None or row.group(1) == "total":
            break
        stats[row.group(1)] = int(row.group(2))
    return stats


def planned_jobs(
    configfile: Path, snakefile: Path, pending_only: bool = False, targets: tuple[str, ...] = ("all",)
) -> list[Job]:
    """Every job of the study's `targets` (`--forceall`), or with `pending_only` those not done yet, from a
    dry run."""
    if not snakefile.is_file():
        raise UserError(f"--snakefile {snakefile}: no such file (run from the repository root)")
    command = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--snakefile", str(snakefile)]
    command += ["--configfile", str(configfile), "--directory", str(snakefile.resolve().parent.parent)]
    command += list(targets)
    if not pending_only:
        command.append("--forceall")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise UserError(f"{configfile}: the workflow's dry run failed: {' / '.join(tail)}")
    return parse_dry_run(done.stdout + done.stderr)


# ----------------------------------------------------------------------------------------------------------
# Rates


def peak_tflops(gpu_name: str | None) -> tuple[float | None, str]:
    for key, peak, note in PEAK_BF16_TFLOPS if gpu_name else ():
        if key.lower() in gpu_name.lower():
            return peak, note
    return None, "unknown GPU"


@dataclass(frozen=True)
class Rates:
    """Pretraining tokens/s per preset on one GPU, and where each came from."""

    gpu: str
    tokens_per_second: dict[str, float]
    measured: dict[str, bool]
    finetune_overhead_s: float  # per fine-tuning process
    finetune_overhead_measured: bool  # by the GPU check (else the CPU demo's FINETUNE_PROCESS_S)
    notes: tuple[str, ...]


def presets() -> tuple[str, ...]:
    """The model presets (genemask.training.settings.PRESETS, the one table)."""
    from genemask.training.settings import PRESETS

    return tuple(PRESETS)


def assumed_mfu(preset: str) -> float:
    from genemask.training.settings import PRESETS

    return PRESETS[preset].assumed_mfu


def flops_per_token(preset: str, tokens_per_sequence: float, masked_fraction: float) -> float:
    from genemask.training.models import model_config, training_flops_per_token

    return training_flops_per_token(model_config(preset), tokens_per_sequence, masked_fraction)


def mean_chunk_tokens(k: int) -> float:
    return MEAN_CHUNK_NT - k + 1 + 2  # overlapping k-mers, [CLS] and [SEP]


def assumed_rate(preset: str, peak: float, k: int) -> float:
    return assumed_mfu(preset) * peak * 1e12 / flops_per_token(preset, mean_chunk_tokens(k), 0.15)


def read_throughput(path: Path, compile_: bool) -> dict:
    """From a GPU check report: its GPU, pretraining tokens/s per preset and the fine-tuning cell's overhead."""
    try:
        report = json.loads(Path(path).read_text())
        sections = {s["name"]: s for s in report["sections"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"--throughput {path}: not a GPU check report.json ({error})") from None
    if report.get("device") != "cuda":
        raise UserError(f"--throughput {path}: a report from {report.get('device_name')}, not from a GPU")
    found: dict[str, Any] = {"gpu": None, "rates": {}, "batch": {}, "overhead": None}
    for name, section in sections.items():
        if not name.startswith("throughput-") or section.get("status") != "ok":
            continue
        results = section["results"]
        loops = {loop["key"]: loop for loop in results["loops"]}
        loop = loops.get("ours_compiled") if compile_ else None
        loop = loop or loops["ours"]  # without compiled numbers (the compiler failed): the plain step
        found["rates"][results["preset"]] = loop["tokens_per_second"]
        found["batch"][results["preset"]] = results["batch_size"]
        found["gpu"] = results["gpu"] or report.get("device_name")
    cell = sections.get("finetune", {})
    if cell.get("status") == "ok":
        gpu_side = cell["results"]["device"]
        found["overhead"] = gpu_side["wall_seconds"] - gpu_side["train_seconds"] - gpu_side["eval_seconds"]
    if not found["rates"]:
        raise UserError(f"--throughput {path}: no finished throughput section")
    return found


def make_rates(
    gpu_type: str | None, throughput: Path | None, compile_: bool, k: int, micro_batch: int | None = None
) -> Rates:
    """Pretraining rates per preset: measured where the report has them, else assumed for the GPU type.

    `micro_batch` (the config's pretrain.batch_size) is named beside a rate measured at another batch size."""
    measured = read_throughput(throughput, compile_) if throughput else None
    gpu = gpu_type or (measured["gpu"] if measured else None) or "H100"
    peak, _ = peak_tflops(gpu)
    if peak is None:
        known = ", ".join(key for key, _, _ in PEAK_BF16_TFLOPS)
        raise UserError(f"--gpu-type {gpu}: no peak known; expected one of {known}")
    rates, is_measured, notes = {}, {}, []
    for preset in presets():
        if measured and preset in measured["rates"]:
            rates[preset], is_measured[preset] = measured["rates"][preset], True
            notes.append(
                f"{preset}: {rates[preset]:,.0f} tokens/s measured on {measured['gpu']} "
                f"(batch {measured['batch'][preset]}, {'compiled' if compile_ else 'not compiled'})"
                + (
                    f"; the config's micro-batch is {micro_batch}"
                    if micro_batch not in (None, measured["batch"][preset])
                    else ""
                )
            )
        else:
            rates[preset], is_measured[preset] = assumed_rate(preset, peak, k), False
            notes.append(
                f"{preset}: {rates[preset]:,.0f} tokens/s assumed ({assumed_mfu(preset):.0%} MFU of {gpu}'s "
                f"{peak:.0f} TFLOP/s bf16)"
            )
    overhead = measured["overhead"] if measured and measured["overhead"] is not None else None
    return Rates(
        gpu,
        rates,
        is_measured,
        FINETUNE_PROCESS_S if overhead is None else overhead,
        overhead is not None,
        tuple(notes),
    )


# ----------------------------------------------------------------------------------------------------------
# Costs


def model_preset(name: str, config: dict) -> str:
    """The architecture of a fine-tuned model name: `<arch>_<strategy>_<steps>`, `<arch>_random-init`, a reference."""
    arch = parse_model_name(name).preset
    if arch in presets():
        return arch
    if name in config["finetune"].get("references", {}):
        return REFERENCE_PRESET
    raise UserError(f"finetune model {name!r}: cannot tell its architecture")


def pretrain_seconds(job: Job, config: dict, rates: Rates) -> tuple[float, bool]:
    p, k = config["pretrain"], config["masking"]["k"]
    preset, steps = job.wildcards["arch"], int(job.wildcards["steps"])
    tokens = steps * p["global_batch"] * mean_chunk_tokens(k)
    evals = -(-steps // p["eval_every"])
    eval_tokens = evals * p["eval_chunks"] * mean_chunk_tokens(k)
    rate = rates.tokens_per_second[preset]
    return PRETRAIN_OVERHEAD_S + tokens / rate + eval_tokens / (3 * rate), rates.measured[preset]


VARIABLE_LENGTH_ASSUMED = 300  # nt, for tasks whose sequences vary in length (Sil-300)
GUE_MODEL_POSITIONS = 512  # DNABERT-6's position limit caps the recipe's longer max lengths (Covid's 1024)
# Training sequences assumed for a `full` few-shot run (Prom-core's full training set is 53,276).
FULL_TRAINING_SET_ASSUMED = 50_000


def finetune_run_compute(preset: str, task: str, shots: str, config: dict, rates: Rates) -> float:
    """Seconds of one few-shot run's training and test-set evaluation (its fixed cost not included)."""
    from genemask.evaluation.settings import finetune_regime
    from genemask.evaluation.tasks import task_spec

    f, k = config["finetune"], config["masking"]["k"]
    spec = task_spec(task)
    regime = finetune_regime(f["regimes"], shots)
    if shots == "full":  # the pool's size is known only once the task is prepared
        n_train = FULL_TRAINING_SET_ASSUMED
    else:
        n_train = spec.rows_per_class(int(shots), f["splice_shots_multiplier"]) * spec.n_classes
    n_test = spec.test_size or f["simulate"]["test_size"]  # the registry's; simulated: the config's
    # A variable-length task (Sil-300: 101-299 nt) costs at most what its longest sequences do.
    length = (spec.length or VARIABLE_LENGTH_ASSUMED) - k + 1 + 2
    flops = flops_per_token(preset, length, 0.0)  # no vocabulary head
    achieved = rates.tokens_per_second[preset] * flops_per_token(preset, mean_chunk_tokens(k), 0.15)
    achieved *= FINETUNE_EFFICIENCY
    return (regime["epochs"] * n_train + n_test / 3) * length * flops / achieved


def finetune_seconds(job: Job, config: dict, rates: Rates) -> tuple[float, bool]:
    """A model's job: one process's fixed cost, then every (task, shots, seed) run's fixed cost and compute."""
    f = config["finetune"]
    preset = model_preset(job.wildcards["model"], config)
    runs = [(task, str(shots)) for task in f["tasks"] for shots in f["shots"] for _ in f["seeds"]]
    compute = sum(finetune_run_compute(preset, task, shots, config, rates) for task, shots in runs)
    seconds = rates.finetune_overhead_s + len(runs) * FINETUNE_RUN_S + compute
    return seconds, rates.measured[preset] and rates.finetune_overhead_measured


def gue_seconds(job: Job, config: dict, rates: Rates) -> tuple[float, bool]:
    """A full-data GUE run as its recipe runs it (genemask.evaluation.gue_recipe): its optimiser steps (epochs
    over the published training rows, or the step cap), the dev set every `eval_every` steps and the test set
    once, at the task's length in tokens (forward passes cost a third of a training pass per token)."""
    from genemask.evaluation.gue_recipe import gue_recipe
    from genemask.evaluation.task_registry import gue_task

    k, gue = config["masking"]["k"], config["finetune"]["gue"]
    preset = model_preset(job.wildcards["model"], config)
    task, recipe = gue_task(job.wildcards["task"]), gue_recipe(job.wildcards["task"])
    n_train, n_dev, n_test = task.split_sizes
    if gue["max_train"]:
        n_train = min(n_train, gue["max_train"])
    batch = gue["batch_size"] or recipe.batch_size
    steps = recipe.total_steps(n_train, batch)
    evaluations = max(1, steps // recipe.eval_every)
    length = min(task.lengths[1] - k + 1 + 2, recipe.max_length, GUE_MODEL_POSITIONS)
    flops = flops_per_token(preset, length, 0.0)
    achieved = rates.tokens_per_second[preset] * flops_per_token(preset, mean_chunk_tokens(k), 0.15)
    achieved *= FINETUNE_EFFICIENCY
    compute = (steps * batch + (evaluations * n_dev + n_test) / 3) * length * flops / achieved
    return rates.finetune_overhead_s + compute, rates.measured[preset] and rates.finetune_overhead_measured


# How long one job of a GPU rule takes (the rules whose resources declare `gpu`; the workflow says which).
GPU_SECONDS = {
    "pretrain_model": pretrain_seconds,
    "finetune_model": finetune_seconds,
    "gue_finetune": gue_seconds,
}


def job_preset(job: Job, config: dict) -> str:
    return job.wildcards["arch"] if "arch" in job.wildcards else model_preset(job.wildcards["model"], config)


def estimate(jobs: list[Job], config: dict, rates: Rates) -> list[RuleCost]:
    """Cost per rule, in the workflow's order (`rule_order`), aggregate targets last."""
    costs: dict[str, RuleCost] = {rule: RuleCost(rule) for rule in rule_order(jobs)}
    measured: dict[str, list[bool]] = {}
    for job in jobs:
        cost = costs[job.rule]
        cost.jobs += 1
        if job.gpu:
            if job.rule not in GPU_SECONDS:
                raise UserError(
                    f"rule {job.rule} asks for a GPU, but genemask.estimate has no cost model for it"
                )
            seconds, is_measured = GPU_SECONDS[job.rule](job, config, rates)
            cost.gpu_hours += seconds / 3600
            per_preset = cost.by_preset.setdefault(job_preset(job, config), [0, 0.0])
            per_preset[0] += 1
            per_preset[1] += seconds / 3600
            measured.setdefault(job.rule, []).append(is_measured)
        elif not job.aggregate:
            default = REPORT_CORE_HOURS if job.rule.startswith("report_") else 0.1
            cost.cpu_hours += ASSUMED_CORE_HOURS.get(job.rule, default)
    for rule, flags in measured.items():
        costs[rule].measured = all(flags)
    return list(costs.values())
