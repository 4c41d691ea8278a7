"""`genemask chunk`: cut a genome FASTA into the pretraining chunk store."""

from __future__ import annotations

import argparse
import json

from genemask.genome.chunking import MAX_LENGTH, MIN_LENGTH, ChunkingOptions, chunk_genome


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chunk",
        help="cut a genome into variable-length pretraining chunks (train/valid chunk store)",
        description="Cut a genome into variable-length pretraining chunks, deduplicated, split train/valid by hash.",
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain, gzip or bgzip)")
    parser.add_argument("--out", required=True, help="output directory of the chunk store")
    parser.add_argument("--seed", type=int, default=0, help="seed of the start offsets and piece lengths")
    parser.add_argument("--chromosomes", nargs="+", default=None, help="contigs to use (default: all)")
    parser.add_argument(
        "--non-acgt",
        choices=("split", "delete"),
        default="split",
        help="split chunks at non-ACGT runs (default) or delete non-ACGT letters as the published code did",
    )
    parser.add_argument("--valid-fraction", type=float, default=0.1, help="fraction of chunks for validation")
    parser.add_argument(
        "--random-sampling-coverage",
        type=float,
        default=0.0,
        help="add DNABERT's random-start sampling pass at this genome coverage (0 = off; DNABERT used ~5)",
    )
    parser.add_argument("--min-length", type=int, default=MIN_LENGTH, help="shortest chunk kept (nt)")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH, help="longest chunk (nt)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
