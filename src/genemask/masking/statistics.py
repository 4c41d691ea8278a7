"""What a set of precomputed masks hides: the paper's first check of GeneMask against random masking.

Per strategy (one mask store over a chunk store), over all its epochs:
- masked_fraction: masked tokens / tokens (target about 0.15);
- spans_per_sequence: maximal runs of masked tokens per chunk;
- hidden_nucleotide_fraction: of the nucleotides some masked token covers, the fraction that no unmasked token
  covers (fully hidden);
- the fully hidden 6-mers (all six nucleotides fully hidden): their number, and their mean and median rank in the
  NPMI ranking (rank 1 = highest NPMI), with the share in each tenth of the ranks 1..worst (rank_decile_1 = the
  top tenth; the 6-mers below the count threshold share the worst rank, so they fall in the last tenth);
- all_6mer_mean_rank: the mean rank over every 6-mer of the chunks, the level that blind masking would hide.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore
from genemask.masking.jit import kernel
from genemask.masking.store import MaskStore
from genemask.masking.tokenizer import N_SPECIAL, chunk_token_ids

STAT_K = 6  # the NPMI ranking is over 6-mers
N_DECILES = 10


@kernel(nogil=True)
def _accumulate(mask, token_offsets, kmer_rank, kmer_offsets, k, counts, rank_histogram):
    """counts: [tokens, masked tokens, spans, masked nucleotides, hidden nucleotides];
    rank_histogram[r] += number of fully hidden 6-mers of rank r."""
    n_max = 0
    for s in range(len(token_offsets) - 1):
        n_max = max(n_max, token_offsets[s + 1] - token_offsets[s])
    prefix = np.zeros(n_max + 1, dtype=np.int64)  # masked tokens before each token
    for s in range(len(token_offsets) - 1):
        start, n = token_offsets[s], token_offsets[s + 1] - token_offsets[s]
        if n == 0:
            continue
        for t in range(n):
            prefix[t + 1] = prefix[t] + mask[start + t]
            if mask[start + t] and (t == 0 or not mask[start + t - 1]):
                counts[2] += 1
        counts[0] += n
        counts[1] += prefix[n]
        hidden_run = 0
        kmer_start = kmer_offsets[s]
        n_kmers = kmer_offsets[s + 1] - kmer_start
        for i in range(n + k - 1):
            first, last = max(0, i - k + 1), min(i, n - 1)
            masked = prefix[last + 1] - prefix[first]
            if masked > 0:
                counts[3] += 1
            if masked == last - first + 1:
                counts[4] += 1
                hidden_run += 1
            else:
                hidden_run = 0
            j = i - STAT_K + 1  # the 6-mer ending at nucleotide i
            if hidden_run >= STAT_K and 0 <= j < n_kmers:
                rank_histogram[kmer_rank[kmer_start + j]] += 1


def mask_statistics(
    chunks: ChunkStore, masks: MaskStore, rank_of_6mer_id: np.ndarray, batch_chunks: int = 20_000
) -> dict:
    """One row of the statistics table (see the module docstring)."""
    if len(masks) != len(chunks):
        raise UserError(
            f"{masks.directory}: masks for {len(masks)} chunks, but {chunks.directory} "
            f"({chunks.split}) has {len(chunks)}"
        )
    k = masks.k
    counts = np.zeros(5, dtype=np.int64)
    histogram = np.zeros(int(rank_of_6mer_id.max()) + 1, dtype=np.int64)
    all_rank_sum = all_kmers = 0
    with tqdm(
        total=masks.epochs * len(chunks), unit="chunk", desc=f"stats {masks.strategy}", disable=None
    ) as bar:
        for first in range(0, len(chunks), batch_chunks):
            stop = min(first + batch_chunks, len(chunks))
            seq = chunks.seq[chunks.offsets[first] : chunks.offsets[stop]]
            offsets = chunks.offsets[first : stop + 1] - chunks.offsets[first]
            kmer_ids, kmer_offsets = chunk_token_ids(seq, offsets, STAT_K)
            kmer_rank = rank_of_6mer_id[kmer_ids]
            token_offsets = masks.token_offsets[first : stop + 1] - masks.token_offsets[first]
            if token_offsets[-1] != np.maximum(np.diff(offsets) - k + 1, 0).sum():
                raise UserError(
                    f"{masks.directory}: token counts differ from {chunks.directory}; "
                    "were the masks computed on this chunk store?"
                )
            all_rank_sum += int(kmer_rank.sum())
            all_kmers += len(kmer_rank)
            for epoch in range(masks.epochs):
                _accumulate(
                    masks.masks(epoch, first, stop),
                    token_offsets,
                    kmer_rank,
                    kmer_offsets,
                    k,
                    counts,
                    histogram,
                )
                bar.update(stop - first)
    tokens, masked, spans, masked_nt, hidden_nt = (int(c) for c in counts)
    hidden_kmers = int(histogram.sum())
    ranks = np.arange(len(histogram))
    worst = int(rank_of_6mer_id.max())  # 6-mers below the count threshold share it
    decile = np.minimum((np.maximum(ranks, 1) - 1) * N_DECILES // worst, N_DECILES - 1)
    decile_counts = np.bincount(decile, weights=histogram, minlength=N_DECILES)
    row = {
        "strategy": masks.strategy,
        "epochs": masks.epochs,
        "chunks": len(chunks),
        "tokens": tokens,
        "masked_fraction": masked / tokens if tokens else np.nan,
        "spans_per_sequence": spans / (len(chunks) * masks.epochs) if len(chunks) else np.nan,
        "hidden_nucleotide_fraction": hidden_nt / masked_nt if masked_nt else np.nan,
        "hidden_6mers": hidden_kmers,
        "hidden_6mer_mean_rank": float(ranks @ histogram) / hidden_kmers if hidden_kmers else np.nan,
        "hidden_6mer_median_rank": float(ranks[np.searchsorted(np.cumsum(histogram), (hidden_kmers + 1) / 2)])
        if hidden_kmers
        else np.nan,
        "all_6mer_mean_rank": all_rank_sum / all_kmers if all_kmers else np.nan,
    }
    for d in range(N_DECILES):
        row[f"rank_decile_{d + 1}"] = decile_counts[d] / hidden_kmers if hidden_kmers else np.nan
    return row


def statistics_table(
    chunks_dir: str | Path, mask_dirs: Sequence[str | Path], rank_of_6mer_id: np.ndarray
) -> pd.DataFrame:
    """One row per mask store, each over the split its masks were computed on."""
    if len(rank_of_6mer_id) != N_SPECIAL + 4**STAT_K:
        raise UserError(f"the statistics need a ranking of all {4**STAT_K} 6-mers")
    rows = []
    for directory in mask_dirs:
        masks = MaskStore.open(directory)
        chunks = ChunkStore.open(chunks_dir, masks.meta.get("split", "train"))
        rows.append(mask_statistics(chunks, masks, rank_of_6mer_id))
    return pd.DataFrame(rows)
