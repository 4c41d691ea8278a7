"""`genemask report`: figures and tables for the Snakemake report, one subcommand per section."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="draw the report's figures and tables (chunks, npmi, masking, training, learning-curves)",
        description="Draw the figures and tables that `snakemake --report` collects.",
    )
    sections = parser.add_subparsers(dest="section", required=True, metavar="SECTION")
    chunks = sections.add_parser("chunks", help="chunk length histogram and base accounting")
    chunks.add_argument("--summary", type=Path, required=True, help="summary.json of the chunk store")
    chunks.add_argument("--figure", type=Path, required=True, help="output PNG")
    chunks.add_argument("--table", type=Path, required=True, help="output HTML")
    npmi = sections.add_parser("npmi", help="NPMI distributions and top k-mers")
    npmi.add_argument("--ngrams", type=Path, required=True, help="ngrams.parquet")
    npmi.add_argument("--ranks", type=Path, required=True, help="kmer_ranks.tsv")
    npmi.add_argument("--figure", type=Path, required=True, help="output PNG")
    npmi.add_argument("--table", type=Path, required=True, help="output HTML")
    masking = sections.add_parser("masking", help="NPMI rank deciles of fully hidden 6-mers per strategy")
    masking.add_argument("--statistics", type=Path, required=True, help="statistics.tsv from mask-stats")
    masking.add_argument("--figure", type=Path, required=True, help="output PNG")
    training = sections.add_parser("training", help="pretraining loss curves")
    training.add_argument("--metrics", type=Path, nargs="+", required=True, help="metrics.csv of each model")
    training.add_argument("--figure", type=Path, required=True, help="output PNG")
    curves = sections.add_parser(
        "learning-curves", help="fine-tuning metrics against pretraining steps, one figure per task"
    )
    curves.add_argument(
        "--summary", type=Path, required=True, help="fewshot_summary.csv (`genemask results`)"
    )
    curves.add_argument("--tasks", nargs="+", required=True, help="tasks to draw")
    curves.add_argument("--out-dir", type=Path, required=True, help="writes OUT_DIR/<task>.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.atomic import check_output_file
    from genemask.report import figures as report

    for option in ("figure", "table"):
        if getattr(args, option, None) is not None:
            check_output_file(getattr(args, option), f"--{option}")

    if args.section == "chunks":
        report.chunk_report(args.summary, args.figure, args.table)
    elif args.section == "npmi":
        report.npmi_report(args.ngrams, args.ranks, args.figure, args.table)
    elif args.section == "masking":
        report.masking_report(args.statistics, args.figure)
    elif args.section == "training":
        report.training_report(args.metrics, args.figure)
    else:
        from genemask.report.learning_curves import learning_curve_report

        learning_curve_report(args.summary, args.tasks, args.out_dir)
    return 0
