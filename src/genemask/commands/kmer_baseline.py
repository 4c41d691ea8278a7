"""`genemask kmer-baseline`: logistic regression on k-mer counts, the sanity-check reference row."""

from __future__ import annotations

import argparse

from genemask.commands._common import add_record_options, runs_from
from genemask.options import Range, add_option

MODEL_NAME = "kmer-logreg"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kmer-baseline",
        help="fit an L2 logistic regression on k-mer counts and evaluate it on the test set",
        description=(
            "Multinomial logistic regression (L2 penalty, L-BFGS) on overlapping k-mer counts of each run's "
            "training set, evaluated on its whole test set (accuracy, macro-F1, MCC, AUC); writes one JSON "
            "record per run (--train/--shots/--seed/--out, or one --run each, of any tasks), model "
            "'kmer-logreg' unless --name says otherwise. Deterministic."
        ),
    )
    add_record_options(parser)
    add_option(
        parser, "--seed", default=0, range=Range(minimum=0), help="one run: seed of the k-shot draw, recorded"
    )
    add_option(parser, "--k", default=6, range=Range(minimum=3, maximum=6), help="k-mer size")
    add_option(
        parser, "--l2", default=1.0, range=Range(exclusive_minimum=0), help="L2 penalty on the weights, 1/C"
    )
    add_option(parser, "--name", default=MODEL_NAME, help="model name in the run records")
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
            "task": spec.task,
            "shots": spec.shots,
            "train": file_sha256(spec.train),
            "test": file_sha256(spec.test),
            "settings": {"k": args.k, "l2": args.l2},
        }

    def compute(spec) -> dict:
        return run_kmer_baseline(spec.train, spec.test, k=args.k, l2=args.l2, task=spec.task)

    run_all(runs, model=args.name, identity=identity, compute=compute, cache=RunCache(args.cache))
    return 0
