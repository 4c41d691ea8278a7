"""`genemask finetune`: fine-tune a pretrained (or randomly initialised) model on k-shot draws, evaluate each run.

One process does one run (`--train --shots --seed --out`) or several (`--run ...` once per run: the workflow gives
every task, shot count and seed of one model to one process, genemask.evaluation.run_cache).
"""

from __future__ import annotations

import argparse
import dataclasses

from genemask.commands._common import add_device, add_record_options, add_threads, runs_from
from genemask.evaluation.settings import FinetuneSettings
from genemask.options import add_options, options_from

# Settings a --run may give for itself (the few-shot regimes differ in these), by FinetuneSettings name.
PER_RUN_SETTINGS = {"learning_rate": float, "epochs": int, "batch_size": int}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on few-shot training sets and evaluate it on the test set",
        description=(
            "Fine-tune AutoModelForSequenceClassification from --model (a local directory or a Hugging Face id, "
            "e.g. zhihan1996/DNA_bert_6) on each run's training set, evaluate on its task's whole test set "
            "(accuracy, macro-F1, MCC, AUC) and write one JSON record per run. A --run may name its own task "
            "and test set and set its own learning_rate, epochs and batch_size; the other settings are shared. "
            "Deterministic for a given seed on CPU, "
            "whatever other runs share the process; bf16 autocast on CUDA."
        ),
    )
    parser.add_argument("--model", required=True, metavar="DIR_OR_HF_ID", help="pretrained model")
    parser.add_argument("--name", help="model name in the run record (default: --model)")
    add_record_options(parser)
    add_options(parser, FinetuneSettings, tuple(field.name for field in dataclasses.fields(FinetuneSettings)))
    add_device(parser)
    add_threads(parser, "CPU threads for torch")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runs = runs_from(args, PER_RUN_SETTINGS)
    shared = FinetuneSettings(**options_from(args, FinetuneSettings))

    def settings_of(spec) -> FinetuneSettings:
        return dataclasses.replace(shared, seed=spec.seed, **spec.settings)

    for spec in runs:  # every run's settings refused or accepted before the first one trains
        settings_of(spec).check()

    import torch

    from genemask.training.device import choose_device, print_environment_header

    device = choose_device(args.device)  # before the model code's imports and any data: `cuda` fails here
    print_environment_header(device)
    from genemask.evaluation.finetune import import_model_classes, run_finetune
    from genemask.evaluation.run_cache import RunCache, file_sha256, model_identity, run_all

    import_model_classes()  # once, before the runs: each run's run_seconds is then its own work

    torch.set_num_threads(args.threads)
    device_type = device.type

    def identity(spec) -> dict:
        return {
            "kind": "finetune",
            "model": model_identity(args.model, shared.random_init),
            "task": spec.task,
            "shots": spec.shots,
            "train": file_sha256(spec.train),
            "test": file_sha256(spec.test),
            "settings": dataclasses.asdict(settings_of(spec)),
            "device": device_type,
        }

    def compute(spec) -> dict:
        return run_finetune(
            args.model, spec.train, spec.test, settings_of(spec), device=str(device), task=spec.task
        )

    run_all(
        runs,
        model=args.name or args.model,
        identity=identity,
        compute=compute,
        cache=RunCache(args.cache),
        extra={"model_source": args.model},
    )
    return 0
