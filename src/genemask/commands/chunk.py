"""`genemask chunk`: cut a genome FASTA into the pretraining chunk store."""

from __future__ import annotations

import argparse
import json

from genemask.atomic import add_output_options, check_output_dir
from genemask.genome.chunking import NON_ACGT_MODES, ChunkingOptions, chunk_genome

DEFAULTS = ChunkingOptions()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chunk",
        help="cut a genome into variable-length pretraining chunks (train/valid chunk store)",
        description="Cut a genome into variable-length pretraining chunks, deduplicated, split train/valid by hash.",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain, gzip or bgzip)")
    parser.add_argument("--out", required=True, help="output directory of the chunk store")
    add_output_options(parser)
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS.seed, help="seed of the start offsets and piece lengths"
    )
    parser.add_argument("--chromosomes", nargs="+", default=None, help="contigs to use (default: all)")
    parser.add_argument(
        "--non-acgt",
        choices=NON_ACGT_MODES,
        default=DEFAULTS.non_acgt,
        help="split chunks at non-ACGT runs, or delete non-ACGT letters as the published code did "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--valid-fraction",
        type=float,
        default=DEFAULTS.valid_fraction,
        help="fraction of chunks for validation (default %(default)s)",
    )
    parser.add_argument(
        "--random-sampling-coverage",
        type=float,
        default=DEFAULTS.random_sampling_coverage,
        help="add DNABERT's random-start sampling pass at this genome coverage (0 = off; DNABERT used ~5)",
    )
    parser.add_argument(
        "--min-length",
        type=int,
        default=DEFAULTS.min_length,
        help="shortest chunk kept (nt, default %(default)s)",
    )
    parser.add_argument(
        "--max-length", type=int, default=DEFAULTS.max_length, help="longest chunk (nt, default %(default)s)"
    )
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
