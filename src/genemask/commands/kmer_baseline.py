"""`genemask kmer-baseline`: logistic regression on k-mer counts, the sanity-check reference row."""

from __future__ import annotations

import argparse

from genemask.commands.finetune import add_run_identity, runs_from

MODEL_NAME = "kmer-logreg"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kmer-baseline",
        help="fit an L2 logistic regression on k-mer counts and evaluate it on the test set",
        description=(
            "Multinomial logistic regression (L2 penalty, L-BFGS) on overlapping k-mer counts of each run's "
            "training set, evaluated on the whole --test (accuracy, macro-F1, MCC, AUC); writes one JSON record "
            "per run (--train/--shots/--seed/--out, or one --run each), model 'kmer-logreg' unless --name says "
            "otherwise. Deterministic."
        ),
    )
    add_run_identity(parser)
    parser.add_argument(
        "--seed", type=int, default=0, help="one run: seed of the k-shot draw, recorded (%(default)s)"
    )
    parser.add_argument("--k", type=int, default=6, help="k-mer size, 3..6 (%(default)s)")
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty on the weights, 1/C (%(default)s)")
    parser.add_argument("--name", default=MODEL_NAME, help="model name in the run records (%(default)s)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.errors import UserError
    from genemask.evaluation.kmer_baseline import run_kmer_baseline
    from genemask.evaluation.run_cache import RunCache, file_sha256, run_all

    if not 3 <= args.k <= 6:
        raise UserError(f"--k {args.k}: expected 3..6")
    runs = runs_from(args, {})

    def identity(spec) -> dict:
        return {
            "kind": "kmer-baseline",
            "task": args.task,
            "shots": spec.shots,
            "train": file_sha256(spec.train),
            "test": file_sha256(args.test),
            "settings": {"k": args.k, "l2": args.l2},
        }

    def compute(spec) -> dict:
        return run_kmer_baseline(spec.train, args.test, k=args.k, l2=args.l2, task=args.task)

    run_all(
        runs, model=args.name, task=args.task, identity=identity, compute=compute, cache=RunCache(args.cache)
    )
    return 0
