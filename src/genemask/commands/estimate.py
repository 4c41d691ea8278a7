"""`genemask estimate`: the jobs of a study and the GPU- and CPU-hours they will take, before it runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="jobs per rule and the GPU-hours and CPU-hours a config's study will take",
        description=(
            "Count the jobs of the study (the workflow's own dry run, every job whatever exists) and estimate "
            "the GPU-hours and CPU core-hours of each rule and in total: from the tokens/s measured by the GPU "
            "check (benchmarks/gpu_check.py) when --throughput is given, otherwise from stated assumptions for "
            "--gpu-type. Each number says whether it is measured or assumed."
        ),
    )
    parser.add_argument("--configfile", type=Path, required=True, help="the study's config (YAML)")
    parser.add_argument(
        "--throughput",
        type=Path,
        metavar="report.json",
        help="a GPU check report (results/gpu_check/report.json)",
    )
    parser.add_argument(
        "--gpu-type",
        help="GPU the assumptions are for, e.g. H100, A100, L40S (default: the report's, or H100)",
    )
    parser.add_argument("--snakefile", type=Path, default=Path("workflow/Snakefile"), help="(%(default)s)")
    parser.add_argument(
        "--pending", action="store_true", help="only the jobs still to run (default: the whole study)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["all"],
        help="workflow targets to cost, e.g. `all gue` to add the GUE benchmark (default: all)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.config import load_config
    from genemask.estimate import (
        assumptions_text,
        estimate,
        format_table,
        make_rates,
        per_job_text,
        planned_jobs,
    )

    config = load_config(args.configfile)
    pretrain = config["pretrain"]
    rates = make_rates(
        args.gpu_type, args.throughput, pretrain["compile"], config["masking"]["k"], pretrain["batch_size"]
    )
    jobs = planned_jobs(
        args.configfile, args.snakefile, pending_only=args.pending, targets=tuple(args.targets)
    )
    print(f"{args.configfile}: {len(jobs):,} jobs" + (" still to run" if args.pending else ""))
    costs = estimate(jobs, config, rates)
    print(format_table(costs, markdown=args.markdown))
    print()
    print("\n".join(per_job_text(costs)))
    print("\n".join(assumptions_text(rates, config)))
    return 0
