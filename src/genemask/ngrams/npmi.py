"""NPMI of every n-gram, and the k-mer ranking that guides GeneMask's masking (docs/method.md section 3).

With p(w) = count(w) / (occurrences of n-grams of length |w|), natural logs:

- naive PMI(w) = log p(w) - sum_i log p(w_i), over the letters w_i;
- PMI_n(w) = log p(w) - max over segmentations of w into 2 or more contiguous parts of sum log p(part);
- d(w) = ln f(w) / (ln f(w) + ln c), with f the count and c the threshold (d = 1 when f = c = 1);
- NPMI(w) = PMI_n(w) * d(w); n-grams with f(w) < c are dropped.

1-grams have no segmentation, so their PMI, naive PMI and NPMI are NaN. A part of w occurs at least as often
as w, so every part of a kept n-gram is itself kept: dropping rare n-grams never changes a kept one's PMI_n.

PMI_n is one dynamic programme over all codes at once. best[n][w] (the best segmentation of w into one or
more parts) depends on the prefix only, so it is shared by every longer n-gram: with the last part
w[i:], the best 2+ part score is max over i of best[i][w[:i]] + log p(w[i:]), an outer sum of two arrays
whose flattening is exactly the n-gram code order. Cost: sum over n of (n - 1) * 4**n additions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_dir, atomic_file, check_output_dir
from genemask.errors import UserError
from genemask.ngrams.counting import MAX_N, NgramCounts, count_fasta, ngram_letters
from genemask.ngrams.ranks import KmerRanking, write_kmer_ranks

DEFAULT_MAX_N = 10
DEFAULT_MIN_COUNT = 101
DEFAULT_K = 6
RANKS_FILE = "kmer_ranks.tsv"
TABLE_FILE = "ngrams.parquet"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class NpmiScores:
    """Per-n arrays over all 4**n codes; entries of n-grams with count < min_count are NaN in `npmi`."""

    counts: NgramCounts
    min_count: int
    naive_pmi: tuple[np.ndarray, ...]
    pmi: tuple[np.ndarray, ...]
    npmi: tuple[np.ndarray, ...]

    def kept(self, n: int) -> np.ndarray:
        """Codes of the n-grams of length n with count >= min_count, ascending."""
        return np.flatnonzero(self.counts.of(n) >= self.min_count)


def log_probabilities(counts: NgramCounts) -> list[np.ndarray]:
    """log p(w) for every code of every n (index n - 1); -inf for n-grams never seen."""
    result = []
    with np.errstate(divide="ignore"):
        for n in range(1, counts.max_n + 1):
            total = counts.total(n)
            log_total = math.log(total) if total else 0.0
            result.append(np.log(counts.of(n).astype(np.float64)) - log_total)
    return result


def _outer_sum(prefix: np.ndarray, suffix: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[code(u + v)] = prefix[code(u)] + suffix[code(v)], for every pair: the flattened outer sum."""
    return np.add(prefix[:, None], suffix[None, :], out=out.reshape(prefix.size, suffix.size)).reshape(-1)


def segmentation_pmi(log_p: list[np.ndarray]) -> list[np.ndarray]:
    """PMI_n for every code of every n (index n - 1): log p(w) minus the best segmentation into 2+ parts."""
    best = [log_p[0]]  # best[n - 1][w]: best sum of log p over segmentations of w into 1 or more parts
    result = [np.full(4, np.nan)]
    for n in range(2, len(log_p) + 1):
        top = np.full(4**n, -np.inf)
        scratch = np.empty(4**n)
        for first in range(1, n):
            np.maximum(top, _outer_sum(best[first - 1], log_p[n - first - 1], scratch), out=top)
        with np.errstate(invalid="ignore"):
            result.append(log_p[n - 1] - top)
        if n < len(log_p):
            best.append(np.maximum(log_p[n - 1], top))
    return result


def naive_pmi(log_p: list[np.ndarray]) -> list[np.ndarray]:
    """log p(w) - sum of log p(letter), for every code of every n (index n - 1)."""
    letters = log_p[0]
    result = [np.full(4, np.nan)]
    letter_sum = letters
    for n in range(2, len(log_p) + 1):
        letter_sum = _outer_sum(letter_sum, letters, np.empty(4**n))
        with np.errstate(invalid="ignore"):
            result.append(log_p[n - 1] - letter_sum)
    return result


def discount(counts: np.ndarray, min_count: int) -> np.ndarray:
    """d(w) = ln f / (ln f + ln c) for counts f >= 1; 1 where both logs are 0 (f = c = 1): no discount."""
    log_f = np.log(np.asarray(counts, dtype=np.float64))
    denominator = log_f + math.log(min_count)
    return np.divide(log_f, denominator, out=np.ones_like(log_f), where=denominator > 0)


def score(counts: NgramCounts, min_count: int = DEFAULT_MIN_COUNT) -> NpmiScores:
    """Naive PMI, PMI_n and NPMI of every n-gram; NPMI is NaN for n-grams with count < min_count."""
    if min_count < 1:
        raise UserError(f"--min-count: expected a positive integer, got {min_count}")
    log_p = log_probabilities(counts)
    pmi = segmentation_pmi(log_p)
    npmi = []
    for n, pmi_n in enumerate(pmi, start=1):
        f = counts.of(n)
        kept = f >= min_count
        npmi_n = np.full(f.size, np.nan)
        npmi_n[kept] = pmi_n[kept] * discount(f[kept], min_count)
        npmi.append(npmi_n)
    return NpmiScores(counts, min_count, tuple(naive_pmi(log_p)), tuple(pmi), tuple(npmi))


def rank_kmers(scores: NpmiScores, k: int = DEFAULT_K) -> KmerRanking:
    """Rank the k-mers by NPMI, descending; ties by k-mer (ACGT order). Those below threshold share the
    worst rank (1 + the number ranked)."""
    if not 2 <= k <= scores.counts.max_n:
        raise UserError(f"--k: expected an integer in 2..{scores.counts.max_n} (--max-n), got {k}")
    npmi = scores.npmi[k - 1]
    kept = np.flatnonzero(np.isfinite(npmi))
    order = kept[np.lexsort((kept, -npmi[kept]))]
    ranks = np.full(4**k, kept.size + 1, dtype=np.int64)
    ranks[order] = np.arange(1, kept.size + 1)
    return KmerRanking(k, scores.counts.of(k).astype(np.int64, copy=False), npmi, ranks)


def write_table(scores: NpmiScores, path: str | Path) -> int:
    """Parquet `ngram n count naive_pmi pmi npmi` of every kept n-gram, by n then ACGT order. Returns rows."""
    import pyarrow as pa  # imported here: only this writer needs it
    import pyarrow.parquet as pq

    kept = [scores.kept(n) for n in range(1, scores.counts.max_n + 1)]
    lengths = np.concatenate(
        [np.full(codes.size, n, dtype=np.int32) for n, codes in enumerate(kept, start=1)]
    )
    letters = np.concatenate([ngram_letters(codes, n).ravel() for n, codes in enumerate(kept, start=1)])
    offsets = np.zeros(lengths.size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])

    def column(kind: pa.DataType, values: np.ndarray) -> pa.Array:
        # Built from the buffers: pa.array() on numpy would import pandas (~0.3 s) to look for its types.
        return pa.Array.from_buffers(kind, values.size, [None, pa.py_buffer(np.ascontiguousarray(values))])

    def gather(arrays: tuple[np.ndarray, ...]) -> np.ndarray:
        return np.concatenate([values[codes] for values, codes in zip(arrays, kept, strict=True)])

    table = pa.Table.from_arrays(
        [
            pa.Array.from_buffers(
                pa.string(), lengths.size, [None, pa.py_buffer(offsets), pa.py_buffer(letters)]
            ),
            column(pa.int32(), lengths),
            column(pa.int64(), gather(scores.counts.counts).astype(np.int64)),
            column(pa.float64(), gather(scores.naive_pmi)),
            column(pa.float64(), gather(scores.pmi)),
            column(pa.float64(), gather(scores.npmi)),
        ],
        names=["ngram", "n", "count", "naive_pmi", "pmi", "npmi"],
    )
    with atomic_file(path) as tmp:
        # Chosen for speed (this write is a fifth of the stage on the benchmark input): every ngram is
        # distinct, so dictionary encoding only costs time (3x the write); compression halves the file
        # but costs a third more; statistics only on n, which is what readers filter on.
        pq.write_table(table, tmp, use_dictionary=False, compression="none", write_statistics=["n"])
    return table.num_rows


def summarise(
    scores: NpmiScores, ranking: KmerRanking, fasta: str | Path, chromosomes: list[str] | None
) -> dict:
    counts = scores.counts
    per_n = [
        {
            "n": n,
            "total": counts.total(n),
            "distinct": int(np.count_nonzero(counts.of(n))),
            "kept": int(scores.kept(n).size),
        }
        for n in range(1, counts.max_n + 1)
    ]
    return {
        "fasta": str(fasta),
        "chromosomes": chromosomes,
        "contigs": counts.contigs,
        "bases_acgt": sum(counts.contigs.values()),
        "other_letters": counts.other_letters,
        "max_n": counts.max_n,
        "min_count": scores.min_count,
        "per_n": per_n,
        "kept": sum(row["kept"] for row in per_n),
        "ranking": {"k": ranking.k, "kmers": int(ranking.rank.size), "worst_rank": ranking.worst_rank},
    }


def npmi_stage(
    fasta: str | Path,
    out: str | Path,
    max_n: int = DEFAULT_MAX_N,
    min_count: int = DEFAULT_MIN_COUNT,
    k: int = DEFAULT_K,
    threads: int = 1,
    chromosomes: Iterable[str] | None = None,
) -> dict:
    """Count, score and write DIR/kmer_ranks.tsv, DIR/ngrams.parquet and DIR/summary.json; returns the summary."""
    if not 2 <= max_n <= MAX_N:
        raise UserError(
            f"--max-n: expected an integer in 2..{MAX_N} (the ranking needs k-mer counts), got {max_n}"
        )
    if not 2 <= k <= max_n:
        raise UserError(f"--k: expected an integer in 2..{max_n} (--max-n), got {k}")
    if min_count < 1:
        raise UserError(f"--min-count: expected a positive integer, got {min_count}")
    out = check_output_dir(out, "--out", whole=True)
    chromosomes = None if chromosomes is None else list(chromosomes)
    counts = count_fasta(fasta, max_n, chromosomes, threads)
    scores = score(counts, min_count)
    ranking = rank_kmers(scores, k)
    if sum(counts.contigs.values()) == 0:
        raise UserError(
            f"{fasta}: no A, C, G or T in the selected contigs (all N or gaps), expected a genome"
        )
    if ranking.n_ranked == 0:  # kmer_ranks.tsv would rank nothing, and its readers reject such a table
        raise UserError(
            f"--min-count {min_count}: no {k}-mer of {fasta} occurs that often; expected a lower threshold"
        )
    summary = summarise(scores, ranking, fasta, chromosomes)
    with atomic_dir(out) as tmp:  # all three files or none: an interrupted run never mixes old and new
        write_kmer_ranks(ranking, tmp / RANKS_FILE)
        write_table(scores, tmp / TABLE_FILE)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    return summary
