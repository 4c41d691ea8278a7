"""`genemask simulate-genome`: synthetic genome with planted JASPAR motifs, and the truth table of sites."""

from __future__ import annotations

import argparse
from pathlib import Path

from genemask.options import add_option

# Repeated here so that `genemask --help` does not import numba; test_simulate checks it agrees (the other defaults
# are the schema's genome.simulate keys).
DEFAULT_MOTIFS = "MA0139.2,MA0079.5,MA0482.3,MA0098.4,MA0106.3,MA0105.4"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate-genome",
        help="write a synthetic genome (FASTA.gz) with planted JASPAR motif sites",
        description=(
            "Write a deterministic synthetic genome: human-like composition (GC ~41%, CpG depletion), "
            "soft-masked repeats and micro-satellites, N runs, and JASPAR motif instances on both strands. "
            "The planted sites go to X.motifs.tsv beside X.fa.gz (0-based half-open; `sequence` is the "
            "forward strand, so for '-' sites its reverse complement is the motif-oriented site)."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FASTA.gz", help="output FASTA (gzip)")
    add_option(parser, "--length", key="genome.simulate.length")
    add_option(parser, "--seed", key="genome.simulate.seed")
    add_option(parser, "--contigs", key="genome.simulate.contigs", help="number of contigs chr1..chrC")
    add_option(
        parser,
        "--motifs",
        default=DEFAULT_MOTIFS,
        metavar="ID,ID,...",
        help="comma-separated JASPAR matrix ids to plant; empty plants none",
    )
    add_option(parser, "--jaspar-release", key="genome.simulate.jaspar_release")
    add_option(parser, "--motif-density", key="genome.simulate.motif_density", metavar="D")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genemask.atomic import check_output_file
    from genemask.genome.simulate import simulate_genome, truth_table_path

    check_output_file(args.out)
    check_output_file(truth_table_path(args.out), "truth table")
    summary = simulate_genome(
        args.out,
        length=args.length,
        seed=args.seed,
        n_contigs=args.contigs,
        motifs=[motif.strip() for motif in args.motifs.split(",") if motif.strip()],
        jaspar_release=args.jaspar_release,
        instances_per_mb=args.motif_density,
    )
    print(
        f"{summary.fasta}: {len(summary.contig_lengths)} contigs, {sum(summary.contig_lengths.values())} nt, "
        f"GC {summary.gc_fraction:.3f}, CpG o/e {summary.cpg_observed_expected:.2f}, "
        f"soft-masked {summary.soft_masked_fraction:.2f}, N {summary.n_fraction:.3f}"
    )
    for motif in summary.motifs:
        count = summary.planted[motif.motif_id]
        print(f"{summary.truth}: {motif.motif_id} {motif.name} {motif.consensus}: {count} sites")
    return 0
