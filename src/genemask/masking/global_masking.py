"""`global` masking (CM-GEMS, the "hard" masking; docs/method.md section 4), vectorised over flat batches.

Per sequence of n tokens: the count m ~ Binomial(n, p) is drawn from the sequence's centre stream (one uniform,
inverted through the binomial CDF: the same law as counting n Bernoulli draws and discarding their positions,
at a fraction of the cost); every token is ranked by its k-mer's NPMI rank (best
first, ties to the lower position); the best m tokens become centres, and each masks c-(k-1)..c+(k-1) (c-5..c+5
for k = 6, which hides all six nucleotides of its k-mer), clipped to the sequence. Nothing else is random, so a
sequence's masks depend on (seed, epoch, chunk index) only through m.

The top m are kept in a small sorted buffer (m is about 7 per 512 tokens) while the tokens are scanned once,
so a sequence costs one draw and n rank look-ups (`random` costs n draws), plus about m(1 + ln(n/m))
branch-free insertions.

Top-up (`masking.global.top_up`, off by default: the paper): the best-ranked tokens cluster and their spans
overlap, so the m spans hide about 11% of the tokens, not the 15% that m ~ Binomial(n, 0.0136) aims at. With
top-up the tokens are fully sorted by rank, and after the best m further centres are taken in rank order while
fewer than mask_fraction x n tokens are masked.

`global-as-released`: the published code (curriculum-GeneMask, `mask_tokens` of Global-pretraining-code.py and of
the global phase of CM-GEMS_pretraining_code.py) ranks input position P (token t sits at P = t + 1, after [CLS])
by the k-mer whose token id is P (`kmer_id_to_pmi_rank(token_index)`), so the centres depend on the sequence's
length and m alone; ids of special tokens have no k-mer and get the worst rank (4096 for 6-mers, as released).
"""

from __future__ import annotations

import numba
import numpy as np

from genemask.masking.jit import kernel
from genemask.masking.random_streams import STREAM_CENTRE, UNIFORM_SHIFT, draw_bits, stream_key

DEFAULT_GLOBAL_CENTRE_PROBABILITY = 0.0136
_EMPTY = np.int64(1) << 62  # above every key of a token


@numba.njit(nogil=True, inline="always")
def _binomial(centre_key, n, p):
    """m ~ Binomial(n, p) from one uniform draw by the inverse CDF (O(m) steps); where (1-p)^n underflows (n p in
    the hundreds, far beyond a 512-token sequence), the count of n Bernoulli draws instead."""
    if n == 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    pmf = np.exp(n * np.log1p(-p))
    if pmf < 1e-200:
        threshold = np.uint64(min(round(p * 2.0**53), 2**53))
        m = 0
        for t in range(n):
            m += (draw_bits(centre_key, t) >> UNIFORM_SHIFT) < threshold
        return m
    u = np.float64(draw_bits(centre_key, 0) >> UNIFORM_SHIFT) * 2.0**-53
    odds = p / (1.0 - p)
    m, cdf = 0, pmf
    while cdf <= u and m < n:
        pmf *= (n - m) / (m + 1.0) * odds
        m += 1
        cdf += pmf
    return m


@kernel(nogil=True)
def global_spans_kernel(
    ids,
    offsets,
    keys,
    p,
    counts,
    rank_of_id,
    rank_of_position,
    by_position,
    reach,
    top_up_fraction,
    out,
    centres,
):
    """Global spans. The count per sequence is drawn from `keys` when `counts` is empty, else taken from it.
    Token t is ranked by rank_of_position[t] when `by_position` (as released), else by its k-mer's rank. With
    top_up_fraction > 0, centres are added in rank order until that fraction of the tokens is masked. When
    `centres` is non-empty (flat boolean) it records the chosen centres."""
    draw = len(counts) == 0
    record = len(centres) > 0
    n_max = 1
    for s in range(len(offsets) - 1):
        n_max = max(n_max, offsets[s + 1] - offsets[s])
    bits = 1
    while (1 << bits) < n_max:
        bits += 1
    low = (np.int64(1) << bits) - 1
    best = np.empty(n_max + 1, dtype=np.int64)  # sorted keys (rank << bits) | position, best first
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        if draw:
            m = _binomial(stream_key(keys[s], STREAM_CENTRE), n, p)
        else:
            m = min(counts[s], n)
        if top_up_fraction > 0.0:
            # Every token in rank order (the best m first, as below), then more while too few are masked.
            for t in range(n):
                rank = rank_of_position[t] if by_position else rank_of_id[ids[start + t]]
                best[t] = (rank << bits) | t
            order = np.sort(best[:n])
            masked, i = 0, 0
            while i < n and (i < m or masked < top_up_fraction * n):
                c = order[i] & low
                if record:
                    centres[start + c] = True
                for j in range(max(0, c - reach), min(n, c + reach + 1)):
                    if not out[start + j]:
                        masked += 1
                        out[start + j] = True
                i += 1
            continue
        if m == 0:
            continue
        best[:m] = _EMPTY  # a sentinel above every key
        worst_rank = _EMPTY >> bits  # rank of best[m - 1]
        for t in range(n):  # a tight loop: one look-up and one comparison per token
            rank = rank_of_position[t] if by_position else rank_of_id[ids[start + t]]
            if rank >= worst_rank:
                continue  # not among the best m so far (an equal rank loses: its position is higher)
            key = (rank << bits) | t
            # Branch-free insertion into the sorted best[:m]: about m(1 + ln(n/m)) tokens get here, and a loop
            # that stops where the key belongs would mispredict its exit every time.
            for j in range(m - 1, 0, -1):
                best[j] = min(best[j], max(best[j - 1], key))
            best[0] = min(best[0], key)
            worst_rank = best[m - 1] >> bits
        for i in range(m):
            c = best[i] & low
            if record:
                centres[start + c] = True
            for j in range(max(0, c - reach), min(n, c + reach + 1)):
                out[start + j] = True


def checked_probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return float(p)


# Empty arrays for the kernel's optional inputs: draw the counts, record nothing.
DRAW_COUNTS = np.zeros(0, dtype=np.int64)
NO_RECORD = np.zeros(0, dtype=np.bool_)
NO_POSITIONS = np.zeros(0, dtype=np.int64)


def global_kernel(
    ids,
    offsets,
    keys,
    rank_of_id,
    k: int,
    centre_probability: float,
    out: np.ndarray,
    *,
    top_up_fraction: float = 0.0,
    position_ranks: np.ndarray | None = None,
) -> None:
    """Set the `global` masks of a flat batch in `out` (flat boolean), one key per sequence. With
    `position_ranks` (genemask_kernel.released_position_ranks), tokens are ranked by position, as released."""
    by_position = position_ranks is not None
    if by_position and len(offsets) > 1 and np.diff(offsets).max() > len(position_ranks):
        raise ValueError(f"global-as-released supports sequences of at most {len(position_ranks)} tokens")
    if not 0.0 <= top_up_fraction < 1.0:
        raise ValueError(f"the top-up fraction must be in [0, 1), got {top_up_fraction}")
    global_spans_kernel(
        ids,
        offsets,
        keys,
        checked_probability(centre_probability),
        DRAW_COUNTS,
        rank_of_id,
        position_ranks if by_position else NO_POSITIONS,
        by_position,
        k - 1,
        float(top_up_fraction),
        out,
        NO_RECORD,
    )
