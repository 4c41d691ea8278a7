"""`genemask tasks download|prepare|sample`: the GeneMask few-shot tasks, from upstream files to k-shot draws."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.atomic import check_output_dir, check_output_file
from genemask.commands._common import FULL_SHOTS, shots_value
from genemask.evaluation.task_registry import REAL_TASKS, TASKS  # numpy-free: `genemask --help` stays light
from genemask.options import Range, add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="download, prepare and sample the few-shot tasks",
        description=(
            "The GeneMask few-shot tasks (Prom-core, Prom-300, Cohn-enh, Splice-40) and CM-GEMS's Sil-300 at the "
            "pinned upstream commits: download verifies every file against its pinned git blob sha1; prepare parses "
            "the 6-mer TSVs to raw sequences, validates them and writes test.tsv, pool.tsv (the full training set "
            "and published draws minus every test sequence) and published/<shots>.tsv; sample draws a k-shot "
            "training set from a prepared (or simulated) task, or takes the whole pool (--shots full)."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    download = actions.add_parser(
        "download",
        help="download one task's upstream files",
        description="Download a task's upstream files (all into --out-dir, or one with --path/--out), verified.",
    )
    download.add_argument("--task", required=True, choices=REAL_TASKS)
    download.add_argument(
        "--out-dir", type=Path, help="download every file of the task here (upstream layout)"
    )
    download.add_argument("--path", help="one upstream path, e.g. Prom-core/10/train.tsv (with --out)")
    download.add_argument("--out", type=Path, help="where to write the file given by --path")
    download.add_argument(
        "--base-url", help="mirror of the upstream folder (default: GitHub raw at the commit)"
    )
    download.set_defaults(func=run_download)

    prepare = actions.add_parser(
        "prepare",
        help="parse and validate a task's upstream files into test.tsv, pool.tsv and published draws",
        description=(
            "Parse and validate a real task's upstream files (upstream layout under --source-dir) into --out-dir: "
            "test.tsv, pool.tsv (all training files, deduplicated, minus every test sequence), "
            "published/<shots>.tsv and provenance.json. Raw upper-case sequences, header 'sequence<TAB>label'."
        ),
    )
    prepare.add_argument("--task", required=True, choices=REAL_TASKS)
    prepare.add_argument("--source-dir", required=True, type=Path, help="the downloaded upstream files")
    prepare.add_argument("--out-dir", required=True, type=Path)
    prepare.set_defaults(func=run_prepare)

    sample = actions.add_parser(
        "sample",
        help="draw one k-shot training set from a prepared task",
        description=(
            "Draw a k-shot training set (shots examples per class; Splice-40 and Sil-300, whose published folder N "
            "holds 10 x N per class: 10 x shots, the task registry's shot convention) from TASK_DIR/pool.tsv, seeded by (seed, examples per class). With --published, start from that published "
            "draw and top up any class that lost test sequences."
        ),
    )
    sample.add_argument("--task", required=True, choices=list(TASKS))
    sample.add_argument("--task-dir", required=True, type=Path, help="holds pool.tsv and test.tsv")
    sample.add_argument(
        "--shots", required=True, type=shots_value, help="examples per class, or 'full' (the whole pool)"
    )
    add_option(sample, "--seed", required=True, type=int, range=Range(minimum=0), help="seed of the draw")
    sample.add_argument("--out", required=True, type=Path, help="the sample TSV")
    add_option(
        sample,
        "--splice-multiplier",
        key="finetune.splice_shots_multiplier",
        help="simulated Splice-style tasks only (sim-splice): examples per class per shot; real tasks always "
        "follow their published convention",
    )
    sample.add_argument("--published", type=Path, help="the published draw to use (seed 0)")
    sample.set_defaults(func=run_sample)


def run_download(args: argparse.Namespace) -> int:
    from genemask.errors import UserError
    from genemask.evaluation.tasks import download_task, download_task_file

    base_url = args.base_url
    if (args.path is None) != (args.out is None) or (args.path is None) == (args.out_dir is None):
        raise UserError("give either --out-dir, or both --path and --out")
    if args.out_dir is not None:
        check_output_dir(args.out_dir, "--out-dir")
        download_task(args.task, args.out_dir, base_url=base_url)
    else:
        check_output_file(args.out)
        sha1 = download_task_file(args.task, args.path, args.out, base_url=base_url)
        print(f"{args.out}: git blob sha1 {sha1}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from genemask.evaluation.tasks import prepare_task

    check_output_dir(args.out_dir, "--out-dir")
    provenance = prepare_task(args.task, args.source_dir, args.out_dir)
    removed = sum(provenance["test_sequences_removed_from_training"].values())
    print(
        f"{args.out_dir}: test {provenance['test_rows_per_class']} per class, pool "
        f"{provenance['pool_rows_per_class']} per class, {removed} test sequences removed from training files"
    )
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from genemask.evaluation.tasks import sample_task, task_spec

    spec = task_spec(args.task)
    check_output_file(args.out)
    rows = None if args.shots == FULL_SHOTS else spec.rows_per_class(args.shots, args.splice_multiplier)
    sample = sample_task(
        args.task_dir, rows, args.seed, args.out, n_classes=spec.n_classes, published=args.published
    )
    print(f"{args.out}: {sample.class_counts(spec.n_classes)} examples per class")
    return 0
