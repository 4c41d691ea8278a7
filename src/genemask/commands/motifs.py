"""`genemask motifs`: JASPAR motif enrichment among the top-NPMI k-mers."""

from __future__ import annotations

import argparse
import json
import time

from genemask.atomic import atomic_file, check_output_dir
from genemask.errors import UserError
from genemask.motifs import enrichment, jaspar, plots
from genemask.ngrams.ranks import read_kmer_ranks
from genemask.options import add_option


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "motifs",
        help="test JASPAR motifs for enrichment among the top-NPMI k-mers",
        description=(
            "Score every k-mer of the NPMI ranking against every JASPAR motif (relative PWM score at the "
            "best alignment, both strands), test each motif for enrichment among the top-N k-mers "
            "(hypergeometric) and along the ranking (Mann-Whitney), with Benjamini-Hochberg FDR. Writes "
            "enrichment.tsv, "
            "kmer_best_motifs.tsv, enrichment.png, logos.png, report.html and summary.json into --out."
        ),
    )
    parser.add_argument("--ranks", required=True, help="kmer_ranks.tsv from `genemask npmi`")
    parser.add_argument("--out", required=True, help="output directory")
    for flag in ("--release", "--collection", "--top-n", "--threshold", "--pseudocount"):
        add_option(parser, flag, key=f"motifs.{flag[2:].replace('-', '_')}")
    add_option(parser, "--tax-group", key="motifs.tax_group", help="JASPAR taxonomic group, or 'all'")
    add_option(
        parser,
        "--background",
        key="motifs.background",
        help="PWM background: uniform, human (A/T 0.295, C/G 0.205), or 'a,c,g,t' probabilities",
    )
    add_option(parser, "--fdr", key="motifs.fdr", help="FDR level for the report")
    add_option(parser, "--logos", key="motifs.logos")
    parser.add_argument("--motif-ids", nargs="+", metavar="ID", help="restrict to these JASPAR matrix ids")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    if not 0 < args.fdr < 1:
        raise UserError(f"--fdr {args.fdr}: expected a level in (0, 1)")
    if args.logos < 0:
        raise UserError(f"--logos {args.logos}: expected a non-negative number")
    background = jaspar.parse_background(args.background)
    ranking = read_kmer_ranks(args.ranks)
    enrichment.check_settings(
        ranking, top_n=args.top_n, threshold=args.threshold, pseudocount=args.pseudocount
    )
    started = time.perf_counter()
    loaded_motifs = jaspar.load_jaspar(args.release, args.collection, args.tax_group, args.motif_ids)
    loaded = time.perf_counter()
    result = enrichment.motif_enrichment(
        ranking,
        loaded_motifs,
        top_n=args.top_n,
        threshold=args.threshold,
        pseudocount=args.pseudocount,
        background=background,
    )
    scored = time.perf_counter()
    parameters = {
        "release": args.release,
        "collection": args.collection,
        "tax_group": args.tax_group,
        "motifs": len(loaded_motifs),
        "k": ranking.k,
        "top_n": args.top_n,
        "threshold": args.threshold,
        "pseudocount": args.pseudocount,
        "background": args.background,
    }
    plots.write_outputs(result, args.out, parameters=parameters, fdr=args.fdr, n_logos=args.logos)
    table = result.table
    summary = parameters | {
        "background_probabilities": background.round(6).tolist(),
        "fdr": args.fdr,
        "enriched_hypergeom": int((table["q_hypergeom"] < args.fdr).sum()),
        "enriched_rank": int((table["q_rank"] < args.fdr).sum()),
        "top_motifs": table["motif_id"].head(10).tolist(),
        "seconds_load_jaspar": round(loaded - started, 3),
        "seconds_score_and_test": round(scored - loaded, 3),
    }
    with atomic_file(f"{args.out}/summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return 0
