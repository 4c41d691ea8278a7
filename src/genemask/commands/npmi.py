"""`genemask npmi`: n-gram counts, PMI_n and NPMI of every n-gram, and the k-mer ranking."""

from __future__ import annotations

import argparse
import json
import time

from genemask.atomic import add_output_options, check_output_dir
from genemask.commands._common import add_threads
from genemask.ngrams.npmi import npmi_stage
from genemask.options import add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "npmi",
        help="count every n-gram and rank the k-mers by NPMI (kmer_ranks.tsv, ngrams.parquet, summary.json)",
        description=(
            "Count every nucleotide n-gram (n = 1..max-n; none crosses a non-ACGT letter or a contig end), "
            "score naive PMI, PMI_n (the best segmentation) and NPMI (discounted with threshold c; rarer "
            "n-grams are dropped), and rank the k-mers by NPMI. Writes DIR/kmer_ranks.tsv, DIR/ngrams.parquet "
            "and DIR/summary.json."
        ),
    )
    parser.add_argument("--fasta", required=True, help="genome FASTA (plain, gzip or bgzip)")
    parser.add_argument("--out", required=True, help="output directory")
    add_output_options(parser)
    add_option(parser, "--max-n", key="npmi.max_n")
    add_option(parser, "--min-count", key="npmi.min_count")
    add_option(parser, "--k", key="npmi.k", help="k-mer length of the ranking, at most --max-n")
    add_threads(parser, "counting threads")
    parser.add_argument(
        "--chromosomes", nargs="+", default=None, help="contigs counted, by name (default: every contig)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    check_output_dir(args.out, whole=True, force=args.force)
    summary = npmi_stage(
        args.fasta, args.out, args.max_n, args.min_count, args.k, args.threads, args.chromosomes
    )
    keys = ("bases_acgt", "max_n", "min_count", "kept")
    print(
        json.dumps({key: summary[key] for key in keys} | {"seconds": round(time.perf_counter() - start, 3)})
    )
    return 0
