"""`genemask finetune`: fine-tune a pretrained (or randomly initialised) model on one k-shot draw, evaluate it."""

from __future__ import annotations

import argparse
import dataclasses

from genemask.commands._common import add_device, add_record_options, add_threads
from genemask.evaluation.settings import FinetuneSettings
from genemask.options import add_options, options_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on a few-shot training set and evaluate it on the test set",
        description=(
            "Fine-tune AutoModelForSequenceClassification from --model (a local directory or a Hugging Face id, "
            "e.g. zhihan1996/DNA_bert_6) on --train, evaluate on the whole --test (accuracy, macro-F1, MCC, AUC) "
            "and write one JSON run record. Deterministic for a given seed on CPU; bf16 autocast on CUDA."
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
    import torch

    from genemask.training.device import choose_device, print_environment_header

    device = choose_device(args.device)  # before the model code's imports and any data: `cuda` fails here
    print_environment_header(device)
    from genemask.atomic import check_output_file
    from genemask.evaluation.finetune import run_finetune
    from genemask.evaluation.run_records import write_run_record

    check_output_file(args.out)
    torch.set_num_threads(args.threads)
    settings = FinetuneSettings(**options_from(args, FinetuneSettings))
    record = run_finetune(args.model, args.train, args.test, settings, device=str(device), task=args.task)
    record["model_source"] = args.model
    record = write_run_record(
        args.out, record, model=args.name or args.model, task=args.task, shots=args.shots, seed=args.seed
    )
    metrics = " ".join(
        f"{name} {value:.3f}" for name, value in record["metrics"].items() if value is not None
    )
    print(f"{args.out}: {metrics} ({record['train_seconds']:.1f} s training)")
    return 0
