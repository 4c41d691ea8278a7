"""Benchmark: fine-tuning's fixed cost per run in a finished workflow (the demo's, by default).

Fixed cost per run = (the fine-tuning jobs' wall seconds from Snakemake's benchmark files - their runs' training
and evaluation seconds from the run records) / runs. Goal for the demo: <= 2.0 s (it was about 5.5 s with one
process per run). Also printed: the part paid once per process and the part paid per run, the two figures
genemask.estimate costs fine-tuning with (FINETUNE_PROCESS_S, FINETUNE_RUN_S), and the jobs' CPU seconds per run
(all of it, training included), which a busy machine inflates less than wall time.

Measure on a results folder where pretraining is done, with the run cache emptied (else nothing trains):

    rm -rf results/run_cache results/finetune results/benchmarks/finetune
    .venv/bin/snakemake --cores 2 --configfile config/demo.yaml finetune
    .venv/bin/python benchmarks/finetune_fixed_cost.py [--baseline 5.5]

Without benchmark files it prints a notice and exits 0 (as `make bench` runs every script).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genemask.errors import UserError
from genemask.evaluation.fixed_cost import measure

GOAL_SECONDS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=Path("results/benchmarks/finetune"))
    parser.add_argument("--records", type=Path, default=Path("results/finetune"))
    parser.add_argument(
        "--baseline", type=float, help="fixed cost per run to compare with (s), e.g. the old one"
    )
    args = parser.parse_args()
    if not args.benchmarks.is_dir():
        print(f"{args.benchmarks}: no benchmark files; run the demo's fine-tuning stage first (skipped)")
        return 0
    try:
        costs = measure(args.benchmarks, args.records)
    except UserError as error:
        print(f"finetune_fixed_cost: {error}", file=sys.stderr)
        return 2
    print(f"{'models':<12} {'jobs':>5} {'runs':>5} {'cached':>6} {'wall s':>8} {'train+eval s':>12} "
          f"{'fixed s/run':>11} {'per process s':>13} {'per run s':>9} {'CPU s/run':>9}")  # fmt: skip
    for kind, cost in costs.items():
        process = f"{cost.per_process:.2f}" if cost.per_process is not None else "-"
        own = f"{cost.run_overhead_seconds / cost.runs_timed:.2f}" if cost.runs_timed else "-"
        per_run = f"{cost.per_run:.2f}" if cost.runs else "-"
        cpu = f"{cost.cpu_seconds / cost.runs:.2f}" if cost.runs else "-"
        print(f"{kind:<12} {cost.jobs:>5} {cost.runs:>5} {cost.cached:>6} {cost.wall_seconds:>8.1f} "
              f"{cost.work_seconds:>12.1f} {per_run:>11} {process:>13} {own:>9} {cpu:>9}")  # fmt: skip
    total = costs["all"]
    if not total.runs:
        print("every run came from the run cache: empty results/run_cache to measure")
        return 0
    verdict = "meets" if total.per_run <= GOAL_SECONDS else "MISSES"
    print(f"fixed cost per run: {total.per_run:.2f} s ({verdict} the goal of <= {GOAL_SECONDS} s)")
    if args.baseline:
        print(f"ratio to the baseline of {args.baseline:.2f} s: {total.per_run / args.baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
