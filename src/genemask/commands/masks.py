"""`genemask masks`: precompute the masks of a chunk store for E epochs (packed bits, memory-mapped)."""

from __future__ import annotations

import argparse
import dataclasses

from genemask.atomic import add_output_options, check_output_dir
from genemask.commands._common import add_threads
from genemask.errors import UserError
from genemask.genome.chunkstore import SPLITS, ChunkStore
from genemask.masking import registry
from genemask.masking.settings import MaskingSettings
from genemask.masking.store import write_mask_store
from genemask.masking.strategies import Masker
from genemask.options import add_option, add_options, options_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "masks",
        help=f"precompute masks of a chunk store for E epochs ({', '.join(registry.names(time_variant=False))})",
        description="Precompute the masks of every chunk for epochs 0..E-1, deterministic per (seed, epoch, chunk), "
        "as packed bits that training memory-maps.",
    )
    parser.add_argument("--chunks", required=True, help="chunk store directory (from `genemask chunk`)")
    parser.add_argument("--split", choices=SPLITS, default="train", help="chunk store split (default train)")
    parser.add_argument("--out", required=True, help="output mask store directory")
    add_output_options(parser)
    add_option(parser, "--epochs", key="masking.epochs", help="number of epochs to precompute")
    add_threads(parser, "threads")
    # --strategy is required here, not defaulted: a mask store says which strategy made it. Its choices are the
    # registry's strategies with masks of their own, as registered when the parser is built.
    parser.add_argument(
        "--strategy", required=True, choices=registry.names(time_variant=False), help="masking strategy"
    )
    add_options(parser, MaskingSettings, tuple(f.name for f in dataclasses.fields(MaskingSettings))[1:])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out, whole=True, force=args.force)
    settings = MaskingSettings(**options_from(args, MaskingSettings))
    reads = registry.get(settings.strategy).reads
    for source in reads:
        if not getattr(settings, source):
            raise UserError(
                f"--strategy {settings.strategy} needs --{source} {registry.INPUTS[source].split(',')[0]}"
            )
    masker = Masker.from_settings(settings)
    chunks = ChunkStore.open(args.chunks, args.split)
    inputs = {source: getattr(settings, source) for source in reads}
    write_mask_store(
        chunks,
        masker,
        args.out,
        epochs=args.epochs,
        threads=args.threads,
        extra_meta={key: value for key, value in inputs.items() if value},
    )
    return 0
