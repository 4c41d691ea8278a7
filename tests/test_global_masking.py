"""`global` masking: hand-made sequences whose best-ranked positions are known, ties, clipping, a numpy oracle on
random data, the binomial count, and determinism per (seed, epoch, chunk)."""

from __future__ import annotations

import numpy as np
from masking_oracles import stream_bits
from scipy import stats

from genemask.masking.genemask_kernel import released_position_ranks
from genemask.masking.global_masking import (
    DEFAULT_GLOBAL_CENTRE_PROBABILITY,
    DRAW_COUNTS,
    NO_POSITIONS,
    checked_probability,
    global_kernel,
    global_spans_kernel,
)
from genemask.masking.random_streams import STREAM_CENTRE, probability_threshold, sequence_keys
from genemask.masking.strategies import Masker, flatten
from genemask.masking.tokenizer import N_SPECIAL

N_KMERS = 4**6
P = 0.0136


def global_masks(
    ids, offsets, keys, rank_of_id, *, k=6, centre_probability=DEFAULT_GLOBAL_CENTRE_PROBABILITY
):
    """The flat `global` masks of a flat batch, one key per sequence, as the registry's kernel computes them."""
    out = np.zeros(len(ids), dtype=np.bool_)
    global_kernel(
        np.ascontiguousarray(ids, dtype=np.int64),
        np.ascontiguousarray(offsets, dtype=np.int64),
        np.ascontiguousarray(keys, dtype=np.uint64),
        rank_of_id,
        k,
        centre_probability,
        out,
    )
    return out


def global_spans(ids, offsets, counts, rank_of_id, *, k=6, keys=None, p=P):
    """(flat mask, flat centres): the best counts[s] tokens of sequence s are its centres, or with counts None
    the counts are drawn from `keys` as the masks draw them."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if counts is None:
        counts = DRAW_COUNTS
    else:
        counts = np.asarray(counts, dtype=np.int64)
        keys = np.zeros(len(offsets) - 1, dtype=np.uint64)
    out = np.zeros(len(ids), dtype=np.bool_)
    centres = np.zeros(len(ids) + 1, dtype=np.bool_)  # non-empty: record
    global_spans_kernel(
        ids,
        offsets,
        keys,
        checked_probability(p),
        counts,
        rank_of_id,
        NO_POSITIONS,
        False,
        k - 1,
        0.0,
        out,
        centres,
    )
    return out, centres[: len(ids)]


def ranks_by_id() -> np.ndarray:
    """Token id N_SPECIAL + r - 1 has rank r: the ids of a hand-made sequence spell out its ranks."""
    ranks = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    ranks[N_SPECIAL:] = np.arange(1, N_KMERS + 1)
    return ranks


def with_ranks(ranks: list[int]) -> np.ndarray:
    return np.asarray(ranks, dtype=np.int64) + N_SPECIAL - 1


def positions(flags: np.ndarray) -> list[int]:
    return np.flatnonzero(flags).tolist()


def test_the_best_ranked_positions_are_the_centres_and_mask_eleven_tokens():
    ranks = [50] * 40
    ranks[12], ranks[30], ranks[25] = 3, 1, 2  # the best three, in rank order 30, 25, 12
    ids, offsets = flatten([with_ranks(ranks)])
    for m, expected in [(1, [30]), (2, [25, 30]), (3, [12, 25, 30])]:
        mask, centres = global_spans(ids, offsets, [m], ranks_by_id())
        assert positions(centres) == expected
        assert positions(mask) == sorted({j for c in expected for j in range(c - 5, c + 6)})


def test_ties_go_to_the_lower_position():
    ids, offsets = flatten([with_ranks([9, 4, 7, 4, 4, 9, 4, 8, 9, 9, 9, 9, 9, 9, 9, 9])])
    _, centres = global_spans(ids, offsets, [2], ranks_by_id())
    assert positions(centres) == [1, 3]
    _, centres = global_spans(ids, offsets, [5], ranks_by_id())
    assert positions(centres) == [1, 2, 3, 4, 6]


def test_spans_are_clipped_at_both_ends_and_stay_in_their_sequence():
    first = [9] * 12
    first[0], first[11] = 1, 2
    second = [9] * 7
    second[3] = 1
    ids, offsets = flatten([with_ranks(first), with_ranks(second)])
    mask, centres = global_spans(ids, offsets, [2, 1], ranks_by_id())
    assert positions(centres) == [0, 11, 12 + 3]
    assert positions(mask[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    mask, _ = global_spans(ids, offsets, [1, 1], ranks_by_id())
    assert positions(mask[:12]) == [0, 1, 2, 3, 4, 5]
    assert mask[12:].all()  # 3-5..3+5 covers the whole 7-token sequence, nothing beyond it


def test_a_count_above_the_length_masks_everything_and_zero_masks_nothing():
    ids, offsets = flatten([with_ranks([5, 6, 7]), with_ranks([1, 2])])
    mask, centres = global_spans(ids, offsets, [10, 0], ranks_by_id())
    assert positions(centres) == [0, 1, 2] and positions(mask) == [0, 1, 2]


def numpy_oracle(ids, offsets, keys, rank_of_id, p=P, k=6):
    out = np.zeros(len(ids), dtype=bool)
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        bits = stream_bits(int(keys[s]), STREAM_CENTRE, max(n, 1)) >> np.uint64(11)
        if n * np.log1p(-p) > np.log(1e-200):  # one uniform through the binomial's inverse CDF
            m = int(stats.binom.ppf(float(bits[0]) * 2.0**-53, n, p)) if n else 0
        else:  # (1-p)^n underflows: the count of n Bernoulli draws
            m = int((bits < probability_threshold(p)).sum())
        order = np.lexsort((np.arange(n), rank_of_id[ids[start : start + n]]))
        for c in order[:m]:
            out[start + max(0, c - k + 1) : start + min(n, c + k)] = True
    return out


def test_matches_a_numpy_oracle_on_random_sequences():
    rng = np.random.default_rng(4)
    ranks = np.full(N_SPECIAL + N_KMERS, 3000, dtype=np.int64)
    ranks[N_SPECIAL:] = rng.integers(1, 3001, N_KMERS)  # many ties
    lengths = [0, 1, 5, 510, 300, 77, 510, 1000, 6000]  # 6000 x 0.1: the fallback
    ids, offsets = flatten([rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, n) for n in lengths])
    keys = sequence_keys(3, 1, np.arange(len(lengths)))
    for p in (P, 0.1):
        expected = numpy_oracle(ids, offsets, keys, ranks, p=p)
        assert (global_masks(ids, offsets, keys, ranks, centre_probability=p) == expected).all()


def test_the_count_follows_the_binomial():
    n, sequences = 510, 6000
    rng = np.random.default_rng(5)
    ids, offsets = flatten([rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, n) for _ in range(sequences)])
    keys = sequence_keys(11, 0, np.arange(sequences))
    _, centres = global_spans(ids, offsets, None, ranks_by_id(), keys=keys)
    counts = centres.reshape(sequences, n).sum(axis=1)
    # Pool the tails so that every expected cell holds at least 5 sequences.
    values = np.arange(n + 1)
    expected = stats.binom.pmf(values, n, P) * sequences
    low, high = 1, 15
    observed_cells = [np.sum(counts <= low), *[np.sum(counts == v) for v in range(low + 1, high)]]
    observed_cells.append(np.sum(counts >= high))
    expected_cells = [expected[: low + 1].sum(), *expected[low + 1 : high], expected[high:].sum()]
    assert min(expected_cells) >= 5
    assert stats.chisquare(observed_cells, expected_cells).pvalue > 1e-4  # fails by chance 1 in 10,000


def test_deterministic_per_seed_epoch_and_chunk_whatever_the_batch():
    rng = np.random.default_rng(6)
    lengths = [1, 5, 506, 300, 77, 506]
    sequences = [rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, n) for n in lengths]
    ids, offsets = flatten(sequences)
    chunks = np.array([10, 11, 12, 13, 14, 15])
    full = global_masks(ids, offsets, sequence_keys(1, 2, chunks), ranks_by_id())
    for s in range(len(lengths)):
        one = global_masks(sequences[s], [0, lengths[s]], sequence_keys(1, 2, chunks[s]), ranks_by_id())
        assert (one == full[offsets[s] : offsets[s + 1]]).all()
    assert (global_masks(ids, offsets, sequence_keys(1, 3, chunks), ranks_by_id()) != full).any()
    assert (global_masks(ids, offsets, sequence_keys(2, 2, chunks), ranks_by_id()) != full).any()


def test_masking_rate_is_about_fifteen_percent():
    rng = np.random.default_rng(7)
    ids, offsets = flatten([rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, 510) for _ in range(2000)])
    rank_of_id = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    rank_of_id[N_SPECIAL:] = rng.permutation(N_KMERS) + 1
    mask = global_masks(ids, offsets, sequence_keys(0, 0, np.arange(2000)), rank_of_id)
    # 0.0136 x 11 tokens = 15%, less where top-ranked tokens are close enough that their spans overlap.
    assert 0.13 < mask.mean() < 0.155


# ---------------------------------------------------------------------------------------------- top-up


def topped_up(ids, count, rank_of_id, fraction, k=6):
    """Oracle: the best `count` tokens are centres, then more in rank order while fewer than fraction x n tokens
    are masked; each centre masks c-(k-1)..c+(k-1)."""
    n = len(ids)
    order = sorted(range(n), key=lambda t: (int(rank_of_id[ids[t]]), t))
    mask, i = np.zeros(n, dtype=bool), 0
    while i < n and (i < count or mask.sum() < fraction * n):
        c = order[i]
        mask[max(0, c - k + 1) : c + k] = True
        i += 1
    return mask


def test_top_up_adds_centres_in_rank_order_until_the_fraction_is_masked():
    rng = np.random.default_rng(8)
    ranks = np.full(N_SPECIAL + N_KMERS, 3000, dtype=np.int64)
    ranks[N_SPECIAL:] = rng.integers(1, 3001, N_KMERS)
    # Clustered best ranks: a few k-mers repeated in runs, as top-NPMI k-mers are in repeats.
    for trial in range(60):
        n = int(rng.integers(1, 511))
        ids = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, n)
        ids[rng.integers(0, n, n // 20)] = N_SPECIAL + int(np.argmin(ranks[N_SPECIAL:]))
        count = int(rng.integers(0, 12))
        fraction = float(rng.choice([0.15, 0.3]))
        out = np.zeros(n, dtype=np.bool_)
        global_spans_kernel(
            ids, np.array([0, n]), np.zeros(1, np.uint64), 0.0, np.array([count]), ranks, NO_POSITIONS, False, 5,
            fraction, out, np.zeros(0, np.bool_),
        )  # fmt: skip
        assert (out == topped_up(ids, count, ranks, fraction)).all(), trial


def test_global_hides_less_than_its_target_and_top_up_reaches_it():
    rng = np.random.default_rng(9)
    # Top-ranked 6-mers cluster (repeats): every sequence holds runs of the 30 best.
    ranks = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    ranks[N_SPECIAL:] = rng.permutation(N_KMERS) + 1
    best = np.argsort(ranks[N_SPECIAL:])[:30] + N_SPECIAL
    sequences = []
    for _ in range(400):
        ids = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, 510)
        start = int(rng.integers(0, 400))
        ids[start : start + 60] = rng.choice(best, 60)
        sequences.append(ids)
    ids, offsets = flatten(sequences)
    keys = sequence_keys(0, 0, np.arange(400))
    paper = global_masks(ids, offsets, keys, ranks)
    out = np.zeros(len(ids), dtype=np.bool_)
    global_kernel(ids, offsets, keys, ranks, 6, P, out, top_up_fraction=0.15)
    assert paper.mean() < 0.12  # the clustered centres' spans overlap
    assert (out | paper).sum() == out.sum()  # top-up only adds
    per_sequence = out.reshape(400, 510).mean(axis=1)
    assert (per_sequence >= 0.15).all() and per_sequence.mean() < 0.15 + 11 / 510


# ---------------------------------------------------------------------------------------------- as released


def released_global(n, count, rank_of_position):
    """Port of curriculum-GeneMask's Global-pretraining-code.py `mask_tokens` for one sequence of n tokens and
    `count` drawn centres: every input position 1..end ranked by kmer_id_to_pmi_rank(position), the first
    `count` of the sorted (rank, position) list are centres, each masks its 11 positions within 1..end."""
    end = n
    tok_index_pmi_dict = {token_index: rank_of_position(token_index) for token_index in range(1, end + 1)}
    sorted_tok_index_pmi_list = sorted(tok_index_pmi_dict.items(), key=lambda kv: (kv[1], kv[0]))
    new_centers = set()
    for pmi_index, _ in sorted_tok_index_pmi_list[0:count]:
        for mask_number in range(-5, 6):
            if 1 <= pmi_index + mask_number <= end:
                new_centers.add(pmi_index + mask_number)
    mask = np.zeros(n, dtype=bool)
    mask[[p - 1 for p in new_centers]] = True
    return mask


def test_global_as_released_matches_the_released_loop_and_ignores_the_tokens():
    rng = np.random.default_rng(10)
    ranks = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    ranks[N_SPECIAL:] = rng.integers(1, 3001, N_KMERS)  # ties
    position_ranks = released_position_ranks(ranks, special_rank=4**6)

    def rank_of_position(position):  # decode(position) is a k-mer only for ids >= N_SPECIAL; else 4096
        return int(ranks[position]) if position >= N_SPECIAL else 4096

    for trial in range(80):
        n = int(rng.integers(1, 511))
        count = int(rng.integers(0, 15))
        ids = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, n)
        out = np.zeros(n, dtype=np.bool_)
        global_spans_kernel(
            ids, np.array([0, n]), np.zeros(1, np.uint64), 0.0, np.array([count]), ranks, position_ranks, True, 5,
            0.0, out, np.zeros(0, np.bool_),
        )  # fmt: skip
        assert (out == released_global(n, count, rank_of_position)).all(), trial
    masker = Masker("global-as-released", seed=3, rank_of_id=ranks)
    a, b = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, (2, 500))
    ids, offsets = flatten([a, b])
    both = masker(ids, offsets, [4, 4], 0)  # the same count (same seed, epoch, chunk), other tokens
    assert (both[:500] == both[500:]).all()
