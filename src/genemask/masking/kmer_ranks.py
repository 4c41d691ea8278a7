"""The k-mer NPMI ranking as the genemask kernels read it: one rank per token id (kmer_ranks.tsv is read by its
owner, genemask.ngrams.ranks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genemask.errors import UserError
from genemask.masking.tokenizer import N_SPECIAL, check_k, codes_to_token_ids
from genemask.ngrams.ranks import KmerRanking, read_kmer_ranks


def load_kmer_ranks(path: str | Path, k: int = 6) -> np.ndarray:
    """kmer_ranks.tsv of k-mers -> rank per token id; non-k-mer tokens get the worst rank."""
    check_k(k)
    ranking = read_kmer_ranks(path)
    if ranking.k != k:
        raise UserError(f"{path}: a ranking of {ranking.k}-mers, expected {k}-mers")
    return rank_of_token_id(ranking)


def rank_of_token_id(ranking: KmerRanking) -> np.ndarray:
    """The ranking indexed by token id (DNABERT's vocabulary order, length vocab_size(k)); the special tokens get
    the worst rank, so that they are never a centre's best candidate."""
    token_ids = codes_to_token_ids(ranking.codes, ranking.k)[:, 0]
    rank_of_id = np.empty(N_SPECIAL + 4**ranking.k, dtype=np.int64)
    rank_of_id[token_ids] = ranking.rank
    rank_of_id[:N_SPECIAL] = ranking.rank.max()
    return rank_of_id
