"""`genemask finetune`: fine-tune a pretrained (or randomly initialised) model on one k-shot draw, evaluate it."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.commands.tasks import shots_value

# Repeated here so that `genemask --help` does not import torch; test_finetune checks they agree.
DEFAULTS = {
    "learning_rate": 1e-4,
    "epochs": 20,
    "batch_size": 5,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "dropout": 0.1,
    "seed": 0,
    "max_length": 512,
}


def add_run_identity(parser: argparse.ArgumentParser) -> None:
    """Options naming the run in its JSON record (shared with `genemask kmer-baseline`)."""
    parser.add_argument("--train", required=True, type=Path, help="training TSV (sequence<TAB>label)")
    parser.add_argument("--test", required=True, type=Path, help="test TSV (sequence<TAB>label)")
    parser.add_argument("--out", required=True, type=Path, metavar="metrics.json", help="the run record")
    parser.add_argument("--task", required=True, help="task name, recorded in the run record")
    parser.add_argument(
        "--shots", required=True, type=shots_value, help="shots (examples per class, or 'full'), recorded"
    )


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
    add_run_identity(parser)
    parser.add_argument(
        "--lr", type=float, default=DEFAULTS["learning_rate"], help="peak learning rate (%(default)s)"
    )
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="(%(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="(%(default)s)")
    parser.add_argument(
        "--warmup-ratio",
        type=float,
        default=DEFAULTS["warmup_ratio"],
        help="linear warm-up fraction (%(default)s)",
    )
    parser.add_argument(
        "--weight-decay", type=float, default=DEFAULTS["weight_decay"], help="AdamW (%(default)s)"
    )
    parser.add_argument(
        "--dropout", type=float, default=DEFAULTS["dropout"], help="hidden and attention (%(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="run seed and recorded seed (%(default)s)"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=DEFAULTS["max_length"],
        help="tokens incl. [CLS]/[SEP] (%(default)s)",
    )
    parser.add_argument(
        "--random-init", action="store_true", help="same architecture, random weights (the floor reference)"
    )
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (%(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from genemask.evaluation.finetune import FinetuneSettings, run_finetune
    from genemask.evaluation.results import write_run_record

    torch.set_num_threads(args.threads)
    settings = FinetuneSettings(
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        dropout=args.dropout,
        seed=args.seed,
        max_length=args.max_length,
        random_init=args.random_init,
    )
    record = run_finetune(args.model, args.train, args.test, settings, device=args.device)
    record["model_source"] = args.model
    record = write_run_record(
        args.out, record, model=args.name or args.model, task=args.task, shots=args.shots, seed=args.seed
    )
    metrics = " ".join(
        f"{name} {value:.3f}" for name, value in record["metrics"].items() if value is not None
    )
    print(f"{args.out}: {metrics} ({record['train_seconds']:.1f} s training)")
    return 0
