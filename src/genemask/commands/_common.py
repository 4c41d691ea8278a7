"""Options and helpers shared by several commands (one place, so that commands never import each other)."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.options import Range, add_option

__all__ = ["FULL_SHOTS", "add_device", "add_record_options", "add_threads", "shots_value"]

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
    """Options naming a few-shot run in its JSON record (`genemask finetune`, `genemask kmer-baseline`)."""
    parser.add_argument("--train", required=True, type=Path, help="training TSV (sequence<TAB>label)")
    parser.add_argument("--test", required=True, type=Path, help="test TSV (sequence<TAB>label)")
    parser.add_argument("--out", required=True, type=Path, metavar="metrics.json", help="the run record")
    parser.add_argument("--task", required=True, help="task name, recorded in the run record")
    parser.add_argument(
        "--shots", required=True, type=shots_value, help="shots (examples per class, or 'full'), recorded"
    )


def add_threads(parser: argparse.ArgumentParser, help: str = "CPU threads") -> None:  # noqa: A002
    add_option(parser, "--threads", default=1, type=int, range=Range(minimum=1, maximum=1024), help=help)


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (says which it chose), cpu, cuda or cuda:N; cuda fails at once if CUDA cannot run",
    )
