"""`genemask estimate`: the jobs of a study and the GPU- and CPU-hours they will take, before it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genemask.estimate import Rates, RuleCost


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
    from genemask.estimate import estimate, make_rates, planned_jobs

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


def format_table(costs: list[RuleCost], markdown: bool = False) -> str:
    rows = [(c.rule, f"{c.jobs:,}", _hours(c.gpu_hours), _hours(c.cpu_hours), c.basis) for c in costs]
    total_gpu, total_cpu = sum(c.gpu_hours for c in costs), sum(c.cpu_hours for c in costs)
    basis = {c.basis for c in costs} - {"-"}
    total_basis = basis.pop() if len(basis) == 1 else "mixed"
    total = ("total", f"{sum(c.jobs for c in costs):,}", _hours(total_gpu), _hours(total_cpu), total_basis)
    header = ("rule", "jobs", "GPU-hours", "CPU core-hours", "basis")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("| " + " | ".join(f"**{cell}**" for cell in total) + " |")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in (header, *rows, total)) for i in range(len(header))]

    def line(row: tuple) -> str:
        return "  ".join(
            cell.ljust(w) if i in (0, 4) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(header), *map(line, rows), line(total)])


def per_job_text(costs: list[RuleCost]) -> list[str]:
    """GPU rules, per architecture: jobs and GPU time per job."""

    def each(hours: float) -> str:
        return f"{hours:.2f} GPU-h" if hours >= 0.1 else f"{hours * 3600:.0f} GPU-s"

    return [
        f"{c.rule}: "
        + "; ".join(f"{preset} {n:,} jobs x {each(h / n)}" for preset, (n, h) in c.by_preset.items())
        for c in costs
        if c.by_preset
    ]


def _hours(hours: float) -> str:
    if hours == 0:
        return "-"
    return f"{hours:,.1f}" if hours >= 1 else f"{hours:.2f}"


def assumptions_text(rates: Rates, config: dict) -> list[str]:
    from genemask.estimate import (
        FINETUNE_EFFICIENCY,
        FINETUNE_RUN_S,
        PRETRAIN_OVERHEAD_S,
        REFERENCE_PRESET,
        mean_chunk_tokens,
    )
    from genemask.evaluation.task_registry import TASKS

    p = config["pretrain"]
    used = set(p["architectures"]) | ({REFERENCE_PRESET} if config["finetune"]["references"] else set())
    notes = [note for note in rates.notes if note.split(":", 1)[0] in used]
    lines = [f"GPU: {rates.gpu}; pretraining rates per preset:", *(f"  {note}" for note in notes)]
    lines.append(
        f"pretraining: steps x {p['global_batch']} sequences x "
        f"{mean_chunk_tokens(config['masking']['k']):.1f} tokens (assumed: the published chunk-length law), "
        f"validation forward passes, + {PRETRAIN_OVERHEAD_S:.0f} s per job (assumed)"
    )
    overhead = (
        "measured by the GPU check's fine-tuning cell"
        if rates.finetune_overhead_measured
        else "measured in the CPU demo, without CUDA start-up"
    )
    lines.append(
        f"fine-tuning: one job per model (every task, shot count and seed); per run epochs x training "
        f"sequences + test set, at "
        f"{FINETUNE_EFFICIENCY:.0%} of the pretraining FLOP/s (assumed), + {FINETUNE_RUN_S:.1f} s per run "
        f"(measured in the demo), + {rates.finetune_overhead_s:.1f} s per job ({overhead}); test sets "
        + ", ".join(f"{name} {spec.test_size:,}" for name, spec in TASKS.items() if spec.test_size)
        + f", simulated {config['finetune']['simulate']['test_size']}"
    )
    lines.append("other rules: assumed core-hours per job (genemask.estimate.ASSUMED_CORE_HOURS)")
    return lines
