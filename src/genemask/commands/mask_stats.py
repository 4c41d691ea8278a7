"""`genemask mask-stats`: the masking statistics table, one row per strategy (mask store)."""

from __future__ import annotations

import argparse

from genemask.atomic import atomic_file
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.statistics import statistics_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mask-stats",
        help="masking statistics per strategy: masked fraction, spans, hidden nucleotides, NPMI rank of hidden 6-mers",
        description="Tabulate what each set of precomputed masks hides, one row per mask store. GeneMask should "
        "fully hide 6-mers of markedly better (lower) NPMI rank than random masking.",
    )
    parser.add_argument("--chunks", required=True, help="chunk store directory the masks were computed on")
    parser.add_argument("--masks", required=True, action="append", help="mask store directory (repeatable)")
    parser.add_argument("--ranks", required=True, help="kmer_ranks.tsv (6-mer NPMI ranking)")
    parser.add_argument("--out", required=True, help="output table (TSV)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = statistics_table(args.chunks, args.masks, load_kmer_ranks(args.ranks, 6))
    with atomic_file(args.out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    columns = [
        "strategy",
        "masked_fraction",
        "spans_per_sequence",
        "hidden_nucleotide_fraction",
        "hidden_6mer_mean_rank",
        "all_6mer_mean_rank",
    ]
    print(table[columns].to_string(index=False))
    return 0
