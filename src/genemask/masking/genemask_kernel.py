"""The GeneMask strategies' kernel (the paper, and the published codes' behaviour as ablations).

`genemask`: centres as in `random`. For each centre the candidate tokens are c, c-lo..c-1, c+1..c+hi (in this
order, which breaks ties as the published code does); MC* is the candidate whose k-mer has the best (lowest) NPMI
rank. Centres are ordered by (MC* rank, position); the best ceil(m/2) form the high set and also mask
MC*-(k-1)..MC*+(k-1), which hides every nucleotide of MC*. When m <= all_high_below (8, published behaviour) every
centre is high.

`genemask-as-released`: as `genemask`, but the rank of the token at position t is looked up by its position in the
published input (t + 1, after [CLS]) used as a token id, as the published code did; positions that are
special-token ids get rank 0, better than any k-mer (the published rank table was a defaultdict(int)).

`cm-gems-genemask-as-released`: the first phase of cm-gems as released (`mask_tokens` of curriculum-GeneMask's
CM-GEMS_pretraining_code.py): the rank looked up by position as above, but special-token ids get the worst rank
(`kmer_id_to_pmi_rank` maps a missing or 0 rank to 4096), and the high set is cut from the list of centres BEFORE it
is sorted: `top_segments_only = highest_pmi_id_per_mask_center[0:segment_cnt]` precedes the sort, so the high
centres are the first ceil(m/2) in the iteration order of the Python set of centre positions, not the best-ranked.
That order is CPython 3.6's (the authors' environment pins python 3.6.13), emulated by `cpython_set_order`.
"""

from __future__ import annotations

import numpy as np

from genemask.masking.jit import kernel
from genemask.masking.random_kernel import window
from genemask.masking.random_streams import STREAM_CENTRE, UNIFORM_SHIFT, draw_bits, stream_key
from genemask.masking.tokenizer import N_SPECIAL

# Rank given to special-token ids by the published lookup (missing key in a defaultdict(int)).
RELEASED_SPECIAL_RANK = 0
# CPython's set table: LINEAR_PROBES and PERTURB_SHIFT (Objects/setobject.c), the smallest table, and the load
# at which a table grows, as fill * numerator >= mask * denominator: 3.6 grows at 2/3, 3.7 and later at 3/5.
_LINEAR_PROBES, _PERTURB_SHIFT, _SET_MINSIZE = 9, 5, 8
CPYTHON36_RESIZE = (3, 2)
CPYTHON37_RESIZE = (5, 3)
# Empty arrays for the kernel's optional inputs: draw the centres, record nothing.
NO_CENTRES = np.zeros(0, dtype=np.bool_)
NO_RECORD = np.zeros(0, dtype=np.int64)


@kernel(nogil=True)
def _set_insert(table, mask, values, index):
    """set_add_entry / set_insert_clean of a new key hash(values[index]) = values[index] (a non-negative int)."""
    perturb = values[index]
    i = values[index] & mask
    while True:
        if table[i] < 0:
            table[i] = index
            return
        if i + _LINEAR_PROBES <= mask:
            for j in range(i + 1, i + _LINEAR_PROBES + 1):
                if table[j] < 0:
                    table[j] = index
                    return
        perturb >>= _PERTURB_SHIFT
        i = (i * 5 + 1 + perturb) & mask


@kernel(nogil=True)
def cpython_set_order(values, m, numerator, denominator, table, scratch, order):
    """order[:m] = the indices of values[:m] (distinct non-negative ints, added in this order) in the order CPython
    iterates set(values[:m]); the table grows when fill * numerator >= mask * denominator. `table` and `scratch`
    hold at least the final table size (the smallest power of two >= 8 above 4m)."""
    mask = _SET_MINSIZE - 1
    table[: mask + 1] = -1
    for index in range(m):
        _set_insert(table, mask, values, index)
        fill = index + 1
        if fill * numerator >= mask * denominator:  # set_table_resize(so, used * 4)
            size = _SET_MINSIZE
            while size <= fill * 4:
                size <<= 1
            scratch[: mask + 1] = table[: mask + 1]
            old_size, mask = mask + 1, size - 1
            table[:size] = -1
            for slot in range(old_size):  # reinserted in the old table's order
                if scratch[slot] >= 0:
                    _set_insert(table, mask, values, scratch[slot])
    n = 0
    for slot in range(mask + 1):
        if table[slot] >= 0:
            order[n] = table[slot]
            n += 1


def set_table_size(m: int) -> int:
    """A table size that holds the set of any m <= `m` ints (see cpython_set_order)."""
    size = _SET_MINSIZE
    while size <= 4 * max(m, 1):
        size <<= 1
    return size


@kernel(nogil=True)
def _genemask_kernel(
    ids,
    offsets,
    keys,
    threshold,
    centres,
    rank_of_id,
    rank_of_position,
    by_position,
    cut_before_sort,
    lo,
    hi,
    all_high_below,
    out,
    mc_star,
    high,
):
    """GeneMask spans. Centres are drawn from `keys` when `centres` is empty, else taken from it (flat boolean).
    With `cut_before_sort` the high set is the first ceil(m/2) centres in CPython 3.6's set order of their input
    positions (as released in CM-GEMS). When mc_star/high are non-empty (flat, per token) they record each
    centre's MC* and the high set."""
    draw_centres = len(centres) == 0
    record = len(mc_star) > 0
    reach = lo + hi  # k - 1: MC*-(k-1)..MC*+(k-1) hides all of MC*'s nucleotides
    n_max = 0
    for s in range(len(offsets) - 1):
        n_max = max(n_max, offsets[s + 1] - offsets[s])
    centre_pos = np.empty(n_max, dtype=np.int64)
    best_pos = np.empty(n_max, dtype=np.int64)
    order_key = np.empty(n_max, dtype=np.int64)  # (MC* rank, centre number), sorted in place
    input_pos = np.empty(n_max, dtype=np.int64)
    table_size = _SET_MINSIZE
    while table_size <= 4 * max(n_max, 1):
        table_size <<= 1
    table = np.empty(table_size, dtype=np.int64)
    scratch = np.empty(table_size, dtype=np.int64)
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        m = 0
        if draw_centres:  # a tight loop: the draws are most of the work
            centre_key = stream_key(keys[s], STREAM_CENTRE)
            for t in range(n):
                if (draw_bits(centre_key, t) >> UNIFORM_SHIFT) < threshold:
                    centre_pos[m] = t
                    m += 1
        else:
            for t in range(n):
                if centres[start + t]:
                    centre_pos[m] = t
                    m += 1
        for c in range(m):
            t = centre_pos[c]
            first, last = max(0, t - lo), min(n - 1, t + hi)
            # Candidate key (rank, tie order): the centre first, then left to right, as the published code.
            best_key = np.int64(1) << 62
            for j in range(first, last + 1):
                r = rank_of_position[j] if by_position else rank_of_id[ids[start + j]]
                best_key = min(best_key, r * 16 + (j - t + lo + 1) * (j != t))
                out[start + j] = True
            best_rank = best_key >> 4
            tie = best_key & 15
            best = t if tie == 0 else t + tie - lo - 1
            best_pos[c] = best
            order_key[c] = best_rank * n_max + c
            if record:
                mc_star[start + t] = best
        if m <= all_high_below:
            n_high = m
        elif cut_before_sort:
            n_high = (m + 1) // 2
            for c in range(m):
                input_pos[c] = centre_pos[c] + 1  # after [CLS]
            cpython_set_order(
                input_pos, m, CPYTHON36_RESIZE[0], CPYTHON36_RESIZE[1], table, scratch, order_key
            )
        else:
            n_high = (m + 1) // 2
            for i in range(1, m):  # insertion sort: m is about 9 per 512 tokens
                key = order_key[i]
                j = i - 1
                while j >= 0 and order_key[j] > key:
                    order_key[j + 1] = order_key[j]
                    j -= 1
                order_key[j + 1] = key
        for i in range(n_high):
            if m <= all_high_below:
                c = i
            elif cut_before_sort:
                c = order_key[i]  # a centre number, in set order
            else:
                c = order_key[i] % n_max
            if record:
                high[start + centre_pos[c]] = True
            b = best_pos[c]
            for j in range(max(0, b - reach), min(n, b + reach + 1)):
                out[start + j] = True


def released_position_ranks(rank_of_id: np.ndarray, special_rank: int = RELEASED_SPECIAL_RANK) -> np.ndarray:
    """The published lookup: token t sits at input position t+1 (after [CLS]); that position is used as a token id,
    and ids of special tokens get `special_rank` (0 in GeneMask's code; the worst, 4**k, in CM-GEMS's). Covers
    every position a vocabulary id can name."""
    positions = np.arange(1, len(rank_of_id))
    ranks = rank_of_id[positions].copy()
    ranks[positions < N_SPECIAL] = special_rank
    return ranks


def run_genemask_kernel(
    ids,
    offsets,
    keys,
    threshold,
    centres,
    rank_of_id,
    k,
    all_high_below,
    as_released,
    out,
    mc_star,
    high,
    position_ranks=None,
    cut_before_sort=False,
) -> None:
    """Masks of the genemask strategies into `out`. Centres are drawn from `keys` unless `centres` (flat boolean)
    is non-empty; non-empty `mc_star`/`high` record each centre's MC* and the high set (both only for tests).
    `as_released` ranks by position through `position_ranks` (released_position_ranks of rank_of_id by default);
    `cut_before_sort` takes the high set as CM-GEMS's released code does."""
    rank_of_id = np.ascontiguousarray(rank_of_id, dtype=np.int64)
    if position_ranks is None:
        position_ranks = released_position_ranks(rank_of_id)
    if as_released and len(offsets) > 1 and np.diff(offsets).max() > len(position_ranks):
        raise ValueError(f"genemask-as-released supports sequences of at most {len(position_ranks)} tokens")
    lo, hi = window(k)
    _genemask_kernel(
        ids,
        offsets,
        keys,
        threshold,
        centres,
        rank_of_id,
        position_ranks,
        as_released,
        cut_before_sort,
        lo,
        hi,
        all_high_below,
        out,
        mc_star,
        high,
    )
