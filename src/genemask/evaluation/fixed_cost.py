"""Fine-tuning's fixed cost per run, from Snakemake's benchmark files and the run records.

Fixed cost per run = (sum of the jobs' wall times - sum of their runs' training and evaluation seconds) / runs:
everything a run costs besides learning and scoring (interpreter start, imports, model load, encoding, writing).
A benchmark file `<benchmarks>/<path>.tsv` belongs to the records `<records>/<path>.json` (one job per run) or
`<records>/<path>/**/*.json` (one job per model, or per model and task). Runs a job took from the run cache did
no training in it: they are left out of the runs and of the training seconds, their (small) reading cost stays
in the wall time.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from genemask.errors import UserError


@dataclass
class FixedCost:
    jobs: int = 0
    runs: int = 0  # trained in the measured jobs
    cached: int = 0  # taken from the run cache
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the jobs' CPU time (less sensitive than wall time to a busy machine)
    work_seconds: float = 0.0  # the runs' training + evaluation
    run_overhead_seconds: float = 0.0  # within runs, besides work (records with run_seconds only)
    runs_timed: int = 0  # runs whose record has run_seconds

    @property
    def per_run(self) -> float:
        return (self.wall_seconds - self.work_seconds) / self.runs

    @property
    def per_process(self) -> float | None:
        """The part paid once per process (start-up): the fixed cost less the runs' own overheads."""
        if self.runs_timed != self.runs:
            return None
        return (self.wall_seconds - self.work_seconds - self.run_overhead_seconds) / self.jobs


def benchmark_seconds(path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a Snakemake benchmark file's first row."""
    try:
        with open(path, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
            return float(row["s"]), float(row.get("cpu_time") or "nan")
    except (OSError, StopIteration, KeyError, ValueError) as error:
        raise UserError(f"{path}: not a Snakemake benchmark file ({error})") from None


def work_seconds(record: dict, path: Path) -> float:
    """A run's training + evaluation seconds; k-mer records before train_seconds existed give their `seconds`."""
    if "train_seconds" in record:
        return record["train_seconds"] + record["eval_seconds"]
    if "seconds" in record:
        return record["seconds"]
    raise UserError(f"{path}: a run record without train_seconds")


def job_records(benchmark: Path, benchmarks: Path, records: Path) -> list[Path]:
    stem = records / benchmark.relative_to(benchmarks).with_suffix("")
    if stem.with_suffix(".json").is_file():
        return [stem.with_suffix(".json")]
    return sorted(stem.rglob("*.json"))


def measure(benchmarks: Path, records: Path) -> dict[str, FixedCost]:
    """Fixed cost per model kind ('neural', 'kmer-logreg') and over all, from every benchmark file found."""
    costs = {"neural": FixedCost(), "kmer-logreg": FixedCost(), "all": FixedCost()}
    for benchmark in sorted(benchmarks.rglob("*.tsv")):
        paths = job_records(benchmark, benchmarks, records)
        if not paths:
            raise UserError(f"{benchmark}: no run records under {records} for it")
        # <model>.tsv (one job per model) or <model>/<task>.tsv
        model = benchmark.relative_to(benchmarks).with_suffix("").parts[0]
        kind = "kmer-logreg" if model == "kmer-logreg" else "neural"
        wall, cpu = benchmark_seconds(benchmark)
        for cost in (costs[kind], costs["all"]):
            cost.jobs += 1
            cost.wall_seconds += wall
            cost.cpu_seconds += cpu
            for path in paths:
                record = json.loads(path.read_text())
                if record.get("from_cache"):
                    cost.cached += 1
                    continue
                cost.runs += 1
                work = work_seconds(record, path)
                cost.work_seconds += work
                if "run_seconds" in record:
                    cost.runs_timed += 1
                    cost.run_overhead_seconds += record["run_seconds"] - work
    if not costs["all"].jobs:
        raise UserError(f"{benchmarks}: no benchmark files (run the fine-tuning stage first)")
    return {kind: cost for kind, cost in costs.items() if cost.jobs}
