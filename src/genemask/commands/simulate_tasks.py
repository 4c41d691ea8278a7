"""`genemask simulate-tasks`: promoter-, enhancer- and splice-like tasks drawn from the simulated genome."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.options import add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate-tasks",
        help="write simulated few-shot tasks (sim-promoter, sim-enhancer, sim-splice) from a simulated genome",
        description=(
            "Draw background windows from the simulated genome and plant a motif grammar, with sites taken from "
            "its truth table: sim-promoter (70 nt, two motifs at fixed offsets), sim-enhancer (300 nt, 2-3 "
            "co-occurring motifs) and sim-splice (40 nt, donor / acceptor / none). Writes OUT/<task>/test.tsv, "
            "OUT/<task>/pool.tsv and OUT/simulation.json."
        ),
    )
    parser.add_argument(
        "--genome", required=True, type=Path, metavar="SIM.fa.gz", help="the simulated genome"
    )
    parser.add_argument(
        "--motifs", type=Path, metavar="SIM.motifs.tsv", help="its truth table (default: beside the genome)"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR")
    add_option(parser, "--seed", key="finetune.simulate.seed")
    add_option(
        parser,
        "--test-size",
        key="finetune.simulate.test_size",
        help="test rows per task, split evenly over classes",
    )
    add_option(parser, "--pool-size", key="finetune.simulate.pool_size")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.atomic import check_output_dir
    from genemask.evaluation.simulate_tasks import simulate_tasks
    from genemask.genome.simulate import truth_table_path

    check_output_dir(args.out)

    summary = simulate_tasks(
        args.genome,
        args.motifs or truth_table_path(args.genome),
        args.out,
        seed=args.seed,
        test_size=args.test_size,
        pool_size=args.pool_size,
    )
    for task, info in summary["tasks"].items():
        print(
            f"{args.out / task}: {info['length']} nt, test {info['test_rows_per_class']} per class, "
            f"pool {info['pool_rows_per_class']} per class"
        )
    return 0
