"""`genemask results`: few-shot tables (CSV, Markdown, LaTeX) and one figure per task, from run records."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.atomic import check_output_dir
from genemask.evaluation.settings import EQUIVALENCE_MARGIN


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results",
        help="aggregate fine-tuning run records into tables and figures",
        description=(
            "Read every run record (JSON) under --runs, aggregate mean and std over seeds, and write "
            "OUT/tables/fewshot.{csv,md,tex} (rows models, columns task x shots), OUT/tables/fewshot_summary.csv "
            "(tidy), OUT/tables/paired.csv (paired t-test and Wilcoxon of each strategy against random masking and "
            "the random-init floor, Benjamini-Hochberg corrected per family), OUT/tables/vs_paper.{csv,md,html} (ours beside "
            "the published numbers: per exact cell the difference, its 95% interval, TOST against "
            "--equivalence-margin and a three-way verdict; nearest rows for orientation only), OUT/figures/<task>.png (each metric "
            "against shots, one line per model, the paper's points) and OUT/figures/paired_vs_random.png."
        ),
    )
    parser.add_argument("--runs", required=True, nargs="+", type=Path, help="run record files or directories")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--models", nargs="+", metavar="MODEL", help="row order (others follow, sorted)")
    parser.add_argument("--tasks", nargs="+", metavar="TASK", help="column order (others follow)")
    parser.add_argument(
        "--equivalence-margin",
        type=_margin,
        default=EQUIVALENCE_MARGIN,
        metavar="DELTA",
        help=f"vs_paper: |ours - paper| below this (metric units) counts as reproduced (TOST; default {EQUIVALENCE_MARGIN})",
    )
    parser.set_defaults(func=run)


def _margin(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a margin in (0, 1), got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from genemask.evaluation.results import make_results

    check_output_dir(args.out_dir, "--out-dir")
    summary = make_results(
        args.runs,
        args.out_dir,
        model_order=args.models,
        task_order=args.tasks,
        equivalence_margin=args.equivalence_margin,
    )
    print(
        f"{args.out_dir}: {summary.model.nunique()} models x {summary.task.nunique()} tasks, "
        "tables/fewshot.{csv,md,tex}, paired.csv, vs_paper.{csv,md,html}, figures/<task>.png, "
        "figures/paired_vs_random.png"
    )
    return 0
