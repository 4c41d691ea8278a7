"""JASPAR motif enrichment among the top-NPMI k-mers: the statistics over the motif scores.

A motif "hits" a k-mer when its relative score (genemask.motifs.jaspar) reaches the threshold. Each motif is
then tested for enrichment among the top-N k-mers against all 4^k k-mers (hypergeometric), and for a shift
of its hits towards the top of the whole ranking (Mann-Whitney), with Benjamini-Hochberg FDR control over
motifs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from genemask.errors import UserError
from genemask.motifs.jaspar import (
    BACKGROUNDS,
    DEFAULT_BACKGROUND,
    DEFAULT_PSEUDOCOUNT,
    Motif,
    MotifScores,
    score_kmers,
)
from genemask.ngrams.ranks import KmerRanking

ENRICHMENT_COLUMNS = (
    "motif_id",
    "name",
    "length",
    "hits_top",
    "hits_all",
    "odds_ratio",
    "p_hypergeom",
    "q_hypergeom",
    "p_rank",
    "q_rank",
)
DEFAULT_TOP_N = 100
# The schema's motifs.threshold (docs/method.md section 7); tests/test_options.py checks that they agree.
DEFAULT_THRESHOLD = 0.95


@dataclass(frozen=True)
class EnrichmentResult:
    table: pd.DataFrame  # one row per motif, ENRICHMENT_COLUMNS, most significant first
    per_kmer: pd.DataFrame  # one row per top-N k-mer, its best-matching motifs
    scores: MotifScores
    motifs: list[Motif]


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(n)
    q[order] = adjusted
    return q


def hypergeometric_enrichment(hits: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per motif (column of `hits`): hits among the top k-mers, hits overall, odds ratio, one-sided p.

    p = P(X >= hits_top) for X hypergeometric (all k-mers, hits_all, top size), which equals the one-sided
    Fisher exact test. The odds ratio is the sample one, with 0.5 added to every cell when a cell is 0.
    """
    hits = np.asarray(hits, dtype=bool)
    n_all, n_top = hits.shape[0], int(top.sum())
    hits_top = hits[top].sum(axis=0)
    hits_all = hits.sum(axis=0)
    p = stats.hypergeom.sf(hits_top - 1, n_all, hits_all, n_top)
    cells = np.stack(
        [hits_top, n_top - hits_top, hits_all - hits_top, n_all - n_top - hits_all + hits_top]
    ).astype(np.float64)
    cells += np.where((cells == 0).any(axis=0), 0.5, 0.0)
    odds_ratio = cells[0] * cells[3] / (cells[1] * cells[2])
    return hits_top, hits_all, odds_ratio, np.clip(p, 0.0, 1.0)


def rank_enrichment(hits: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """One-sided Mann-Whitney p per motif: are the NPMI ranks of its hits better (smaller) than the others'?

    Normal approximation with tie correction and continuity correction (as scipy's asymptotic method); a motif
    that hits no k-mer or every k-mer gets p = 1.
    """
    hits = np.asarray(hits, dtype=bool)
    n = hits.shape[0]
    midranks = stats.rankdata(rank)
    n_hit = hits.sum(axis=0).astype(np.float64)
    n_other = n - n_hit
    u_hit = midranks @ hits - n_hit * (n_hit + 1) / 2
    _, tie_sizes = np.unique(rank, return_counts=True)
    tie_term = (tie_sizes**3 - tie_sizes).sum() / (n * (n - 1)) if n > 1 else 0.0
    variance = n_hit * n_other / 12 * ((n + 1) - tie_term)
    testable = variance > 0
    z = np.divide(
        u_hit - n_hit * n_other / 2 + 0.5, np.sqrt(variance), out=np.zeros(hits.shape[1]), where=testable
    )
    return np.where(testable, stats.norm.cdf(z), 1.0)


def check_settings(ranking: KmerRanking, *, top_n: int, threshold: float, pseudocount: float) -> None:
    if not 0 < threshold <= 1:
        raise UserError(f"threshold {threshold}: expected a relative score in (0, 1]")
    if pseudocount < 0:
        raise UserError(f"pseudocount {pseudocount}: expected a non-negative number")
    n_ranked = ranking.n_ranked
    if not 1 <= top_n <= n_ranked:
        raise UserError(f"top-n {top_n}: expected 1..{n_ranked}, the number of k-mers with an NPMI value")


def motif_enrichment(
    ranking: KmerRanking,
    motifs: Sequence[Motif],
    *,
    top_n: int = DEFAULT_TOP_N,
    threshold: float = DEFAULT_THRESHOLD,
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
    background: np.ndarray | None = None,
    n_best: int = 3,
) -> EnrichmentResult:
    """Score, test and tabulate: the enrichment table and the best motifs of each top-N k-mer."""
    if background is None:
        background = np.array(BACKGROUNDS[DEFAULT_BACKGROUND])
    check_settings(ranking, top_n=top_n, threshold=threshold, pseudocount=pseudocount)
    scores = score_kmers(ranking.codes, motifs, background, pseudocount)
    hits = scores.relative >= np.float32(threshold)
    top_index = ranking.top(top_n)
    top = np.zeros(len(ranking.kmers), dtype=bool)
    top[top_index] = True
    hits_top, hits_all, odds_ratio, p_hypergeom = hypergeometric_enrichment(hits, top)
    p_rank = rank_enrichment(hits, ranking.rank)
    table = pd.DataFrame(
        {
            "motif_id": [m.motif_id for m in motifs],
            "name": [m.name for m in motifs],
            "length": [m.length for m in motifs],
            "hits_top": hits_top,
            "hits_all": hits_all,
            "odds_ratio": odds_ratio,
            "p_hypergeom": p_hypergeom,
            "q_hypergeom": benjamini_hochberg(p_hypergeom),
            "p_rank": p_rank,
            "q_rank": benjamini_hochberg(p_rank),
        }
    )
    table = table.sort_values(["p_hypergeom", "p_rank", "motif_id"], kind="stable").reset_index(drop=True)
    return EnrichmentResult(
        table, _best_motifs(ranking, motifs, scores, top_index, n_best), scores, list(motifs)
    )


def _best_motifs(
    ranking: KmerRanking, motifs: Sequence[Motif], scores: MotifScores, top_index: np.ndarray, n_best: int
) -> pd.DataFrame:
    """The n_best motifs of each top k-mer by relative score (ties: smaller motif id first)."""
    relative = scores.relative[top_index]
    n_best = min(n_best, len(motifs))
    order = np.argsort(-relative, axis=1, kind="stable")[:, :n_best]  # motifs are sorted by id
    ids = np.array([m.motif_id for m in motifs])
    names = np.array([m.name for m in motifs])
    columns: dict[str, object] = {
        "kmer": ranking.kmers[top_index],
        "rank": ranking.rank[top_index],
        "npmi": ranking.npmi[top_index],
    }
    for j in range(n_best):
        chosen = order[:, j]
        columns[f"motif{j + 1}_id"] = ids[chosen]
        columns[f"motif{j + 1}_name"] = names[chosen]
        columns[f"motif{j + 1}_score"] = relative[np.arange(len(top_index)), chosen]
        columns[f"motif{j + 1}_strand"] = np.where(scores.strand[top_index, chosen] > 0, "+", "-")
        columns[f"motif{j + 1}_offset"] = scores.offset[top_index, chosen]
    return pd.DataFrame(columns)
