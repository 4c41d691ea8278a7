"""`genemask masks`: precompute the masks of a chunk store for E epochs (packed bits, memory-mapped)."""

from __future__ import annotations

import argparse

from genemask.errors import UserError
from genemask.genome.chunkstore import SPLITS, ChunkStore
from genemask.masking.store import write_mask_store
from genemask.masking.strategies import (
    DEFAULT_ALL_HIGH_BELOW,
    DEFAULT_MASK_FRACTION,
    DEFAULT_MAX_N,
    DEFAULT_MIN_N,
    DEFAULT_NGRAM_VOCAB_SIZE,
    STRATEGIES,
    Masker,
    load_kmer_ranks,
    load_ngram_vocabulary,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "masks",
        help="precompute masks of a chunk store for E epochs (random, genemask, genemask-as-released, pmi-vocab)",
        description="Precompute the masks of every chunk for epochs 0..E-1, deterministic per (seed, epoch, chunk), "
        "as packed bits that training memory-maps.",
    )
    parser.add_argument("--chunks", required=True, help="chunk store directory (from `genemask chunk`)")
    parser.add_argument(
        "--ranks", help="kmer_ranks.tsv from `genemask npmi` (needed by the genemask strategies)"
    )
    parser.add_argument("--ngrams", help="ngrams.parquet from `genemask npmi` (needed by pmi-vocab)")
    parser.add_argument("--strategy", required=True, choices=STRATEGIES, help="masking strategy")
    parser.add_argument("--out", required=True, help="output mask store directory")
    parser.add_argument("--epochs", type=int, default=1, help="number of epochs to precompute (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="masking seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="threads (default 1)")
    parser.add_argument("--split", choices=SPLITS, default="train", help="chunk store split (default train)")
    parser.add_argument("--k", type=int, default=6, help="k-mer length of the tokens (default 6)")
    parser.add_argument(
        "--centre-probability",
        type=float,
        help="probability of a token being a span centre (default 0.025 random, 0.0176 genemask)",
    )
    parser.add_argument(
        "--all-high-below",
        type=int,
        default=DEFAULT_ALL_HIGH_BELOW,
        help=f"genemask: with m <= this many centres every centre is high (default {DEFAULT_ALL_HIGH_BELOW}, "
        "the published behaviour; 0 disables)",
    )
    parser.add_argument(
        "--mask-fraction",
        type=float,
        default=DEFAULT_MASK_FRACTION,
        help=f"pmi-vocab: fraction of tokens to mask (default {DEFAULT_MASK_FRACTION})",
    )
    parser.add_argument(
        "--ngram-vocab-size",
        type=int,
        default=DEFAULT_NGRAM_VOCAB_SIZE,
        help=f"pmi-vocab: top-V n-grams by NPMI (default {DEFAULT_NGRAM_VOCAB_SIZE})",
    )
    parser.add_argument("--min-n", type=int, default=DEFAULT_MIN_N, help="pmi-vocab: shortest n-gram (nt)")
    parser.add_argument("--max-n", type=int, default=DEFAULT_MAX_N, help="pmi-vocab: longest n-gram (nt)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ranks = ngrams = None
    if args.strategy.startswith("genemask"):
        if not args.ranks:
            raise UserError(f"--strategy {args.strategy} needs --ranks kmer_ranks.tsv")
        ranks = load_kmer_ranks(args.ranks, args.k)
    if args.strategy == "pmi-vocab":
        if not args.ngrams:
            raise UserError("--strategy pmi-vocab needs --ngrams ngrams.parquet")
        if args.ngram_vocab_size < 1:
            raise UserError(f"--ngram-vocab-size must be positive, got {args.ngram_vocab_size}")
        if not 1 <= args.min_n <= args.max_n <= 15:
            raise UserError(
                f"--min-n/--max-n must satisfy 1 <= min <= max <= 15, got {args.min_n}..{args.max_n}"
            )
        ngrams = load_ngram_vocabulary(args.ngrams, args.ngram_vocab_size, args.min_n, args.max_n)
    if args.centre_probability is not None and not 0 < args.centre_probability < 1:
        raise UserError(f"--centre-probability must be in (0, 1), got {args.centre_probability}")
    try:
        masker = Masker(
            args.strategy,
            k=args.k,
            seed=args.seed,
            centre_probability=args.centre_probability,
            all_high_below=args.all_high_below,
            mask_fraction=args.mask_fraction,
            rank_of_id=ranks,
            ngrams=ngrams,
        )
    except ValueError as error:
        raise UserError(str(error)) from None
    chunks = ChunkStore.open(args.chunks, args.split)
    inputs = {"ranks": args.ranks, "ngrams": args.ngrams}
    write_mask_store(
        chunks,
        masker,
        args.out,
        epochs=args.epochs,
        threads=args.threads,
        extra_meta={key: value for key, value in inputs.items() if value},
    )
    return 0
