"""Options and helpers shared by several commands (one place, so that commands never import each other)."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.options import Range, add_option

__all__ = ["FULL_SHOTS", "add_device", "add_record_options", "add_threads", "runs_from", "shots_value"]

FULL_SHOTS = "full"


def shots_value(text: str) -> int | str:
    """--shots: a positive integer (examples per class) or 'full' (the whole training set)."""
    if text == FULL_SHOTS:
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or '{FULL_SHOTS}', got {text!r}"
        ) from None
    if not 1 <= value <= 10**9:
        raise argparse.ArgumentTypeError(f"expected a positive integer or '{FULL_SHOTS}', got {text!r}")
    return value


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """Options naming the few-shot runs and their records (`genemask finetune`, `genemask kmer-baseline`): one run
    by --train, --shots, --seed, --out, or several, one --run each."""
    parser.add_argument(
        "--test", type=Path, help="test TSV (sequence<TAB>label); a --run may name its own (test=...)"
    )
    parser.add_argument(
        "--task", help="task name, recorded in the run records; a --run may name its own (task=...)"
    )
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
        help="several runs, one --run each: [task=NAME test=TSV] shots=S seed=N train=TSV out=JSON (instead of "
        "--train, --shots, --seed, --out); one process may do the runs of several tasks",
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
        return [parse_run(items, setting_types, args.task, args.test) for items in args.run]
    missing = [
        flag for flag, value in {**single, "--task": args.task, "--test": args.test}.items() if value is None
    ]
    if missing:
        raise UserError(f"{', '.join(missing)} required (or one --run per run)")
    return [RunSpec(args.task, args.test, args.shots, args.seed, args.train, args.out)]


def add_threads(parser: argparse.ArgumentParser, help: str = "CPU threads") -> None:  # noqa: A002
    add_option(parser, "--threads", default=1, type=int, range=Range(minimum=1, maximum=1024), help=help)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (says which it chose), cpu, cuda or cuda:N; cuda fails at once if CUDA cannot run",
    )
