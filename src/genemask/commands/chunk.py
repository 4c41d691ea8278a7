"""`genemask chunk`: cut a genome FASTA into the pretraining chunk store."""

from __future__ import annotations

import argparse
import json

from genemask.atomic import add_output_options, check_output_dir
from genemask.genome.chunking import MAX_LENGTH, MIN_LENGTH, NON_ACGT_MODES, ChunkingOptions, chunk_genome
from genemask.options import Range, add_option

LENGTHS = Range(minimum=1, maximum=1_000_000)  # nt; a chunk is one training sequence


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chunk",
        help="cut a genome into variable-length pretraining chunks (train/valid chunk store)",
        description="Cut a genome into variable-length pretraining chunks, deduplicated, split train/valid by hash.",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain, gzip or bgzip)")
    parser.add_argument("--out", required=True, help="output directory of the chunk store")
    add_output_options(parser)
    add_option(parser, "--seed", key="chunking.seed")
    parser.add_argument("--chromosomes", nargs="+", default=None, help="contigs to use (default: all)")
    add_option(parser, "--non-acgt", key="chunking.non_acgt", choices=NON_ACGT_MODES)
    add_option(parser, "--valid-fraction", key="chunking.valid_fraction")
    add_option(
        parser,
        "--random-sampling-coverage",
        key="chunking.random_sampling.coverage",
        default=0.0,
        help="add DNABERT's random-start sampling pass at this genome coverage (0 = off; the workflow's "
        "chunking.random_sampling turns it on)",
    )
    add_option(parser, "--min-length", default=MIN_LENGTH, range=LENGTHS, help="shortest chunk kept (nt)")
    add_option(parser, "--max-length", default=MAX_LENGTH, range=LENGTHS, help="longest chunk (nt)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out, whole=True, force=args.force)
    options = ChunkingOptions(
        seed=args.seed,
        non_acgt=args.non_acgt,
        valid_fraction=args.valid_fraction,
        random_sampling_coverage=args.random_sampling_coverage,
        min_length=args.min_length,
        max_length=args.max_length,
    )
    summary = chunk_genome(args.fasta, args.out, options, args.chromosomes)
    keys = ("bases_acgt", "bases_kept", "bases_skipped", "bases_duplicate", "chunks_train", "chunks_valid")
    print(json.dumps({key: summary[key] for key in keys}))
    return 0
