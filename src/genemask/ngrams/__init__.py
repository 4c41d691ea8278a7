"""Stage 2: exact n-gram counts (a C extension) and the NPMI ranking of k-mers.

Its public names (`__all__`), imported on first use: `from genemask.ngrams import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "counting": ("NgramCounts", "count_fasta"),
        "npmi": ("NpmiScores", "score", "rank_kmers", "npmi_stage"),
        "ranks": ("KmerRanking", "read_kmer_ranks", "write_kmer_ranks"),
    },
)
