"""`genemask finetune`: fine-tune a pretrained (or randomly initialised) model on k-shot draws, evaluate each run.

One process does one run (`--train --shots --seed --out`) or several (`--run ...` once per run: the workflow gives
every shot count and seed of one model and task to one process, genemask.evaluation.run_cache).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from genemask.commands.tasks import shots_value
from genemask.evaluation.settings import FinetuneSettings
from genemask.options import add_options, options_from

# Settings a --run may give for itself (the few-shot regimes differ in these), by FinetuneSettings name.
PER_RUN_SETTINGS = {"learning_rate": float, "epochs": int, "batch_size": int}


def add_run_identity(parser: argparse.ArgumentParser) -> None:
    """Options naming the runs and their records (shared with `genemask kmer-baseline`)."""
    parser.add_argument("--test", required=True, type=Path, help="test TSV (sequence<TAB>label)")
    parser.add_argument("--task", required=True, help="task name, recorded in the run records")
    parser.add_argument("--train", type=Path, help="one run: training TSV (sequence<TAB>label)")
    parser.add_argument("--out", type=Path, metavar="metrics.json", help="one run: its record")
    parser.add_argument(
        "--shots", type=shots_value, help="one run: shots (examples per class, or 'full'), recorded"
    )
    parser.add_argument(
        "--run",
        nargs="+",
        action="append",
        metavar="NAME=VALUE",
        help="several runs, one --run each: shots=S seed=N train=TSV out=JSON (instead of --train, --shots, "
        "--seed, --out)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="run cache: a run found there (same model, files, settings) is not trained again (default: none)",
    )


def runs_from(args: argparse.Namespace, setting_types: dict[str, type]) -> list:
    """The runs to do: the --run list, or the one run of --train, --shots, --seed and --out."""
    from genemask.errors import UserError
    from genemask.evaluation.run_cache import RunSpec, parse_run

    single = {"--train": args.train, "--shots": args.shots, "--out": args.out}
    if args.run:
        given = [flag for flag, value in single.items() if value is not None]
        if given:
            raise UserError(
                f"--run and {', '.join(given)}: give each run as a --run, or one run without --run"
            )
        return [parse_run(items, setting_types) for items in args.run]
    missing = [flag for flag, value in single.items() if value is None]
    if missing:
        raise UserError(f"{', '.join(missing)} required (or one --run per run)")
    return [RunSpec(args.shots, args.seed, args.train, args.out)]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on few-shot training sets and evaluate it on the test set",
        description=(
            "Fine-tune AutoModelForSequenceClassification from --model (a local directory or a Hugging Face id, "
            "e.g. zhihan1996/DNA_bert_6) on each run's training set, evaluate on the whole --test (accuracy, "
            "macro-F1, MCC, AUC) and write one JSON record per run. A --run may set its own learning_rate, "
            "epochs and batch_size; the other settings are shared. Deterministic for a given seed on CPU, "
            "whatever other runs share the process; bf16 autocast on CUDA."
        ),
    )
    parser.add_argument("--model", required=True, metavar="DIR_OR_HF_ID", help="pretrained model")
    parser.add_argument("--name", help="model name in the run records (default: --model)")
    add_run_identity(parser)
    add_options(parser, FinetuneSettings, tuple(field.name for field in dataclasses.fields(FinetuneSettings)))
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runs = runs_from(args, PER_RUN_SETTINGS)
    shared = FinetuneSettings(**options_from(args, FinetuneSettings))

    def settings_of(spec) -> FinetuneSettings:
        return dataclasses.replace(shared, seed=spec.seed, **spec.settings)

    for spec in runs:  # every run's settings refused or accepted before the first one trains
        settings_of(spec).check()

    import torch

    from genemask.evaluation.finetune import import_model_classes, run_finetune
    from genemask.evaluation.run_cache import RunCache, file_sha256, model_identity, run_all

    import_model_classes()  # once, before the runs: each run's run_seconds is then its own work

    torch.set_num_threads(args.threads)
    device_type = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu")).type

    def identity(spec) -> dict:
        return {
            "kind": "finetune",
            "model": model_identity(args.model, shared.random_init),
            "task": args.task,
            "shots": spec.shots,
            "train": file_sha256(spec.train),
            "test": file_sha256(args.test),
            "settings": dataclasses.asdict(settings_of(spec)),
            "device": device_type,
        }

    def compute(spec) -> dict:
        return run_finetune(
            args.model, spec.train, args.test, settings_of(spec), device=args.device, task=args.task
        )

    run_all(
        runs,
        model=args.name or args.model,
        task=args.task,
        identity=identity,
        compute=compute,
        cache=RunCache(args.cache),
        extra={"model_source": args.model},
    )
    return 0
