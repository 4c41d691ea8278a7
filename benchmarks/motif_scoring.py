"""Benchmark: score all 4^6 6-mers against every JASPAR2024 CORE vertebrate motif.

Prints the time to load the matrices from pyjaspar, the vectorised scoring time (best of a few repeats), and a
naive loop (one k-mer, one motif, one alignment at a time, PWMs precomputed) timed on a subset in the same run,
extrapolated to all k-mers; the ratio of the two is the speed-up. The subset's scores must agree.

Run: .venv/bin/python benchmarks/motif_scoring.py [--subset 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genemask.motifs import jaspar as motifs
from genemask.ngrams.counting import ngram_strings


def naive_best(kmer: str, pwm: np.ndarray) -> float:
    """Best relative score of one k-mer against one PWM, one alignment at a time."""
    k, length = len(kmer), len(pwm)
    column_min, column_max = pwm.min(axis=1), pwm.max(axis=1)
    best = -np.inf
    for oriented in (kmer, kmer[::-1].translate(str.maketrans("ACGT", "TGCA"))):
        base = ["ACGT".index(c) for c in oriented]
        if length >= k:
            for offset in range(length - k + 1):
                rows = range(offset, offset + k)
                score = sum(pwm[r, b] for r, b in zip(rows, base, strict=True))
                low, high = column_min[offset : offset + k].sum(), column_max[offset : offset + k].sum()
                best = max(best, (score - low) / (high - low) if high > low else 0.0)
        else:
            low, high = column_min.sum(), column_max.sum()
            for start in range(k - length + 1):
                score = sum(pwm[j, base[start + j]] for j in range(length))
                best = max(best, (score - low) / (high - low) if high > low else 0.0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--subset", type=int, default=24, help="k-mers scored by the naive loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    matrices = motifs.load_jaspar("JASPAR2024", "CORE", "vertebrates")
    load_seconds = time.perf_counter() - started
    print(f"load JASPAR2024 CORE vertebrates from pyjaspar: {len(matrices)} motifs in {load_seconds:.2f} s")

    kmers = ngram_strings(np.arange(4**args.k), args.k)
    codes = np.array([["ACGT".index(c) for c in kmer] for kmer in kmers], dtype=np.uint8)
    background = motifs.parse_background("uniform")
    timings = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        scores = motifs.score_kmers(codes, matrices, background, pseudocount=0.8)
        timings.append(time.perf_counter() - started)
    vectorised = min(timings)
    print(
        f"vectorised: {len(kmers)} {args.k}-mers x {len(matrices)} motifs x both strands in {vectorised:.2f} s "
        f"(best of {args.repeats}: {', '.join(f'{t:.2f}' for t in timings)})"
    )

    subset = np.random.default_rng(0).choice(len(kmers), size=args.subset, replace=False)
    pwms = [motifs.log_odds(m.counts, background, 0.8) for m in matrices]
    started = time.perf_counter()
    naive = np.array([[naive_best(kmers[i], pwm) for pwm in pwms] for i in subset])
    naive_seconds = time.perf_counter() - started
    extrapolated = naive_seconds / args.subset * len(kmers)
    max_difference = float(np.abs(naive - scores.relative[subset]).max())
    print(
        f"naive loop: {args.subset} k-mers in {naive_seconds:.2f} s -> {extrapolated:.0f} s for all {len(kmers)} "
        f"(extrapolated); max |difference| on the subset {max_difference:.1e}"
    )
    print(f"speed-up vectorised / naive: {extrapolated / vectorised:.0f}x")
    if max_difference > 1e-4:
        raise SystemExit("vectorised and naive scores disagree")


if __name__ == "__main__":
    main()
