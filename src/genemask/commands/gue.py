"""`genemask gue download|check|finetune|tables`: the GUE benchmark, fine-tuned on full data."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.commands._common import add_device, add_threads

# Both are numpy-free, so `genemask --help` stays light.
from genemask.evaluation.gue_recipe import BATCH_SIZE, LEARNING_RATE
from genemask.evaluation.task_registry import GUE_MIRROR_REPOSITORY, GUE_MIRROR_REVISION
from genemask.options import Range, add_option


def _task_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="GUE task, e.g. prom_core_all, emp_H3, human_tf_0")
    parser.add_argument(
        "--dir", required=True, type=Path, help="folder holding the task's {train,dev,test}.csv"
    )
    parser.add_argument(
        "--provenance", required=True, type=Path, help="the task's record of file sizes and sha256"
    )
    parser.add_argument(
        "--dev-as-train",
        action="store_true",
        help="demo only: no train.csv; train on a fixed half of dev.csv, select on the other half",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gue",
        help="GUE benchmark: fetch, check, fine-tune on full data, tables",
        description=(
            "The 28 GUE tasks (DNABERT-2 paper): download from a pinned Hugging Face mirror, check against the "
            "provenance recorded on first use (size and sha256 of every split), fine-tune with the authors' "
            f"per-task recipe (genemask.evaluation.gue_recipe: AdamW lr {LEARNING_RATE:g}, batch {BATCH_SIZE} "
            "(64 for Covid), the task's epochs or step cap and warm-up, the dev set evaluated every 200 or 400 "
            "steps and the checkpoint with the lowest dev loss tested) and aggregate tables beside the published "
            "numbers."
        ),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    download = actions.add_parser("download", help="download one task's splits from the pinned mirror")
    download.add_argument("--task", required=True)
    download.add_argument("--out-dir", required=True, type=Path)
    download.add_argument("--repository", default=GUE_MIRROR_REPOSITORY, help="HF dataset (%(default)s)")
    download.add_argument("--revision", default=GUE_MIRROR_REVISION, help="pinned commit (%(default)s)")
    download.set_defaults(func=run_download)

    check = actions.add_parser(
        "check",
        help="validate a task's files and record them (first use) or check them against the record",
    )
    _task_options(check)
    check.add_argument("--source", required=True, help="where the files came from, recorded on first use")
    check.add_argument(
        "--out", required=True, type=Path, help="a copy of the checked record (workflow output)"
    )
    check.set_defaults(func=run_check)

    finetune = actions.add_parser(
        "finetune", help="fine-tune a model on one GUE task, evaluate on its test set"
    )
    _task_options(finetune)
    finetune.add_argument("--model", required=True, metavar="DIR_OR_HF_ID")
    finetune.add_argument("--name", help="model name in the run record (default: --model)")
    add_option(finetune, "--seed", default=0, range=Range(minimum=0), help="fine-tuning seed")
    finetune.add_argument("--out", required=True, type=Path, metavar="run.json")
    finetune.add_argument("--random-init", action="store_true", help="same architecture, random weights")
    for flag, key in (
        ("--lr", "learning_rate"),
        ("--batch-size", "batch_size"),
        ("--warmup-steps", "warmup_steps"),
    ):
        add_option(finetune, flag, key=f"finetune.gue.{key}", default=None, help="default: the task's recipe")
    add_option(finetune, "--epochs", type=int, range=Range(minimum=1), help="default: the task's recipe")
    add_option(
        finetune,
        "--max-length",
        type=int,
        range=Range(minimum=3, maximum=512),
        help="tokens; default: the task's recipe",
    )
    add_option(
        finetune,
        "--max-train",
        key="finetune.gue.max_train",
        help="demo only: subsample the training set (seeded)",
    )
    add_option(
        finetune,
        "--max-steps",
        type=int,
        range=Range(minimum=1),
        help="tests only: stop after this many steps (default: the task's recipe)",
    )
    add_device(finetune)
    add_threads(finetune, "CPU threads for torch")
    finetune.set_defaults(func=run_finetune)

    tables = actions.add_parser("tables", help="GUE tables and heat map from run records")
    tables.add_argument("--runs", required=True, nargs="+", type=Path, help="run record files")
    tables.add_argument("--out-dir", required=True, type=Path)
    tables.add_argument("--models", nargs="+", metavar="MODEL", help="column order")
    tables.add_argument("--tasks", nargs="+", metavar="TASK")
    tables.set_defaults(func=run_tables)


def run_download(args: argparse.Namespace) -> int:
    from genemask.evaluation.gue import download_gue_task

    download_gue_task(args.task, args.out_dir, repository=args.repository, revision=args.revision)
    print(f"{args.out_dir}: {args.task} from {args.repository}@{args.revision[:7]}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    import json

    from genemask.atomic import atomic_file
    from genemask.evaluation.gue import check_provenance

    first_use = not args.provenance.exists()
    record = check_provenance(
        args.task, args.dir, args.provenance, source=args.source, dev_as_train=args.dev_as_train
    )
    with atomic_file(args.out) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.provenance}: {'recorded' if first_use else 'checked'} {', '.join(record['files'])}")
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    import torch

    from genemask.training.device import choose_device, print_environment_header

    device = choose_device(args.device)  # before the model code's imports and any data: `cuda` fails here
    print_environment_header(device)
    from genemask.evaluation.gue import gue_settings, gue_task, run_gue_finetune
    from genemask.evaluation.run_records import FULL_SHOTS, write_run_record

    gue_task(args.task)
    torch.set_num_threads(args.threads)
    settings = gue_settings(
        args.task,
        seed=args.seed,
        random_init=args.random_init,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        warmup_steps=args.warmup_steps,
        epochs=args.epochs,
        max_length=args.max_length,
    )
    record = run_gue_finetune(
        args.model,
        args.task,
        args.dir,
        args.provenance,
        settings,
        max_train=args.max_train,
        max_steps=args.max_steps,
        dev_as_train=args.dev_as_train,
        device=str(device),
    )
    record["model_source"] = args.model
    record = write_run_record(
        args.out, record, model=args.name or args.model, task=args.task, shots=FULL_SHOTS, seed=args.seed
    )
    selected, mcc = record["selected"], record["metrics"]["mcc"]
    dev_loss = "undefined" if selected["dev_loss"] is None else f"{selected['dev_loss']:.4f}"
    print(
        f"{args.out}: test MCC {'undefined' if mcc is None else f'{mcc:.3f}'} (step {selected['step']} of "
        f"{record['steps']} selected, dev loss {dev_loss}; {record['train_seconds']:.1f} s training)"
    )
    return 0


def run_tables(args: argparse.Namespace) -> int:
    from genemask.evaluation.gue_tables import make_gue_results

    summary = make_gue_results(args.runs, args.out_dir, models=args.models, tasks=args.tasks)
    print(
        f"{args.out_dir}: {summary.model.nunique()} models x {summary.task.nunique()} GUE tasks, "
        "tables/gue.{csv,md,tex}, figures/gue_heatmap.png"
    )
    return 0
