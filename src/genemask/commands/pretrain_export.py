"""`genemask pretrain-export`: a finished pretraining run's model at an earlier step, from its kept weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.atomic import add_output_options, check_output_dir
from genemask.options import Range, add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain-export",
        help="export a pretraining run's model at an earlier step (learning curves from one run)",
        description=(
            "Write the model of a finished `genemask pretrain` run at --step, from the weights the run kept "
            "every --keep-weights-every steps in its --checkpoint-dir; no training."
        ),
    )
    parser.add_argument("--run", type=Path, required=True, help="the run's final model directory (--out)")
    parser.add_argument("--checkpoint-dir", type=Path, required=True, help="the run's --checkpoint-dir")
    add_option(parser, "--step", type=int, required=True, range=Range(minimum=1), help="the step to export")
    parser.add_argument("--out", type=Path, required=True, help="output model directory")
    add_output_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.training.export import export_model

    check_output_dir(args.out, whole=True, force=args.force)
    export_model(args.run, args.checkpoint_dir, args.step, args.out)
    print(f"exported step {args.step} of {args.run} to {args.out}")
    return 0
