"""Masking strategies: hand-built oracles (exact spans, clipping, the m <= 8 rule, high and low sets), a port of
the published per-centre loop, a plain-Python oracle of pmi-vocab, rates on random data, and determinism."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from masking_oracles import drawn_centres, genemask_spans, random_spans, stream_bits

import genemask
from genemask.config import fill_defaults, load_schema
from genemask.errors import UserError
from genemask.masking.genemask_kernel import (
    CPYTHON36_RESIZE,
    CPYTHON37_RESIZE,
    NO_CENTRES,
    NO_RECORD,
    cpython_set_order,
    released_position_ranks,
    run_genemask_kernel,
)
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.random_kernel import window
from genemask.masking.random_streams import (
    STREAM_OVERLAP,
    STREAM_UNIT_ORDER,
    sequence_keys,
)
from genemask.masking.settings import MaskingSettings
from genemask.masking.strategies import Masker, flatten
from genemask.masking.tokenizer import N_SPECIAL, kmer_vocab, sequence_to_token_ids
from genemask.masking.vocabulary import NgramVocabulary

N_KMERS = 4**6
WORST = 5000


def batch(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return flatten([rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, size=n) for n in lengths])


def random_ranks(seed=0):
    rng = np.random.default_rng(seed)
    ranks = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    ranks[N_SPECIAL:] = rng.permutation(N_KMERS) + 1
    return ranks


def positions(mask):
    return np.flatnonzero(mask).tolist()


# ---------------------------------------------------------------------------------------------- random


@pytest.mark.parametrize(
    ("k", "published"), [(3, [-1, 1]), (4, [-1, 1, 2]), (5, [-2, -1, 1, 2]), (6, [-2, -1, 1, 2, 3])]
)
def test_window_is_dnabert_mask_list(k, published):
    lo, hi = window(k)
    assert [d for d in range(-lo, hi + 1) if d != 0] == published


def test_random_spans_exact_and_clipped():
    n = 12
    centres = np.zeros(n, bool)
    centres[[0, 5, 11]] = True
    mask = random_spans(np.array([0, n]), centres, k=6)
    # 0 -> 0..3 (clipped left), 5 -> 3..8, 11 -> 9..11 (clipped right)
    assert positions(mask) == list(range(0, 12))
    centres[:] = False
    centres[6] = True
    assert positions(random_spans(np.array([0, n]), centres, k=6)) == [4, 5, 6, 7, 8, 9]
    assert positions(random_spans(np.array([0, n]), centres, k=3)) == [5, 6, 7]


def test_random_spans_stay_inside_each_sequence():
    ids, offsets = batch([3, 1, 4])
    centres = np.zeros(len(ids), bool)
    centres[[2, 3]] = True  # last token of sequence 0, the only token of sequence 1
    assert positions(random_spans(offsets, centres)) == [0, 1, 2, 3]


def test_centres_follow_the_counter_based_draws():
    ids, offsets = batch([50, 7, 300])
    masker = Masker("random", seed=5)
    drawn = drawn_centres(masker, offsets, np.array([4, 9, 2]), 3)
    assert (masker(ids, offsets, [4, 9, 2], 3) == random_spans(offsets, drawn)).all()


# ---------------------------------------------------------------------------------------------- genemask


def hand_built(n, best):
    """A sequence of n distinct k-mer tokens, all of rank WORST - 1 except `best` {position: rank}."""
    ids = np.arange(N_SPECIAL + 100, N_SPECIAL + 100 + n)
    ranks = np.full(N_SPECIAL + N_KMERS, WORST - 1, dtype=np.int64)
    for position, rank in best.items():
        ranks[ids[position]] = rank
    return ids, ranks


def centres_at(n, where):
    centres = np.zeros(n, bool)
    centres[list(where)] = True
    return centres


def test_genemask_spans_high_centre_hides_mc_star():
    n = 40
    ids, ranks = hand_built(n, {12: 5, 24: 7})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [10, 25]), ranks)
    # m = 2 <= 8: both centres are high. Centre 10: candidates 8..13, MC* = 12 -> 7..17 plus window 8..13.
    # Centre 25: candidates 23..28, MC* = 24 -> 19..29 plus window 23..28.
    assert spans.mc_star[10] == 12 and spans.mc_star[25] == 24
    assert positions(spans.high) == [10, 25]
    assert positions(spans.mask) == list(range(7, 18)) + list(range(19, 30))


def test_genemask_ties_prefer_the_centre_then_the_leftmost():
    n = 30
    ids, ranks = hand_built(n, {})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [15]), ranks)
    assert spans.mc_star[15] == 15  # all candidates tie: the centre
    ids, ranks = hand_built(n, {14: 3, 17: 3})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [15]), ranks)
    assert spans.mc_star[15] == 14


def test_genemask_clipping_at_sequence_ends():
    n = 20
    ids, ranks = hand_built(n, {0: 1, 19: 2})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [1, 18]), ranks)
    assert spans.mc_star[1] == 0 and spans.mc_star[18] == 19
    # MC* 0 -> 0..5; window of 1 -> 0..4; MC* 19 -> 14..19; window of 18 -> 16..19 (clipped)
    assert positions(spans.mask) == list(range(0, 6)) + list(range(14, 20))


def test_genemask_m_above_8_makes_half_the_centres_high():
    n = 200
    where = [10 + 18 * i for i in range(10)]  # 10 centres, far apart
    best = {c + 3: 100 - i for i, c in enumerate(where)}  # MC* = c+3; later centres rank better
    ids, ranks = hand_built(n, best)
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, where), ranks)
    high = where[5:]  # ceil(10/2) = 5 best MC* ranks
    assert positions(spans.high) == high
    expected = set()
    for c in where:
        expected |= set(range(c - 2, c + 4))
    for c in high:
        expected |= set(range(c + 3 - 5, c + 3 + 6))
    assert positions(spans.mask) == sorted(expected)
    # Low-set centres mask only their window: nothing of MC*'s far side.
    assert not spans.mask[where[0] + 3 + 5]


def test_genemask_m_at_most_8_all_high_and_parameter():
    n = 200
    where = [10 + 20 * i for i in range(8)]
    ids, ranks = hand_built(n, {c: 50 + i for i, c in enumerate(where)})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, where), ranks)
    assert positions(spans.high) == where
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, where), ranks, all_high_below=0)
    assert positions(spans.high) == where[:4]
    nine = where + [190]
    ids, ranks = hand_built(n, {c: 50 + i for i, c in enumerate(nine)})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, nine), ranks)
    assert positions(spans.high) == nine[:5]


def published_mask_tokens(ids, centres, rank_of, by_position):
    """Port of the published loop (roysoumya/GeneMask Code-B mask_tokens, k = 6) for one sequence, on given
    centres; positions include [CLS] at 0. Centres are visited in order (the published set order, which only
    matters for ties)."""
    inputs = [2, *ids.tolist(), 3]
    end = len(inputs) - 2
    lookup = (lambda p: rank_of(p)) if by_position else (lambda p: rank_of(inputs[p]))
    masked = {c + 1 for c in np.flatnonzero(centres)}
    chosen = []
    for centre in sorted(masked):
        best_rank, best_index = lookup(centre), centre
        for offset in [-2, -1, 1, 2, 3]:
            index = centre + offset
            if 1 <= index <= end:
                masked.add(index)
                rank = lookup(index)
                if rank < best_rank:
                    best_rank, best_index = rank, index
        chosen.append((best_rank, best_index))
    if chosen:
        top = (
            chosen
            if math.ceil(len(chosen) / 2) < 5
            else sorted(chosen, key=lambda a: a[0])[: math.ceil(len(chosen) / 2)]
        )
        for _, index in top:
            for offset in [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]:
                if 1 <= index + offset <= end:
                    masked.add(index + offset)
    mask = np.zeros(len(ids), bool)
    mask[[p - 1 for p in masked]] = True
    return mask


@pytest.mark.parametrize("as_released", [False, True])
def test_genemask_matches_the_published_loop(as_released):
    rng = np.random.default_rng(11)
    ranks = random_ranks(3)
    vocab = kmer_vocab(6)
    # The published rank table: a defaultdict(int) over 6-mer strings, looked up by decoding an id.
    rank_table = {vocab[i]: int(ranks[i]) for i in range(N_SPECIAL, len(vocab))}

    def rank_of(token_id):
        return rank_table.get(vocab[token_id] if token_id >= N_SPECIAL else "", 0)

    for trial in range(300):
        n = int(rng.integers(1, 511))
        ids = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, size=n)
        centres = rng.random(n) < rng.choice([0.0176, 0.05, 0.2])
        spans = genemask_spans(ids, np.array([0, n]), centres, ranks, as_released=as_released)
        assert (spans.mask == published_mask_tokens(ids, centres, rank_of, as_released)).all(), trial


def test_genemask_as_released_depends_on_position_only():
    ranks = random_ranks(4)
    lengths = [400, 400]
    ids, offsets = batch(lengths, seed=1)
    masker = Masker("genemask-as-released", seed=2, rank_of_id=ranks)
    both = masker(ids, offsets, [7, 7], 0)  # same (seed, epoch, chunk): same centres, different tokens
    assert (both[:400] == both[400:]).all()
    paper = Masker("genemask", seed=2, rank_of_id=ranks)(ids, offsets, [7, 7], 0)
    assert (paper[:400] != paper[400:]).any()


def test_genemask_released_special_positions_rank_best():
    # Tokens 0..3 sit at positions 1..4, the ids of [UNK] [CLS] [SEP] [MASK]: rank 0 beats every k-mer.
    n = 30
    ids, ranks = hand_built(n, {5: 1})
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [4]), ranks, as_released=True)
    assert spans.mc_star[4] == 2  # candidates 2..7; positions 2 and 3 have rank 0; the leftmost wins
    spans = genemask_spans(ids, np.array([0, n]), centres_at(n, [4]), ranks)
    assert spans.mc_star[4] == 5


# ------------------------------------------------------------------------------- cm-gems' first phase as released


def test_the_set_order_is_cpythons():
    """This interpreter (3.7 or later) grows a set's table at 3/5; with that rule the emulation is its order."""
    rng = np.random.default_rng(5)
    table, scratch = np.empty(4096, np.int64), np.empty(4096, np.int64)
    for m in [*range(0, 40), 100, 300]:
        values = np.sort(rng.choice(600, size=m, replace=False)).astype(np.int64)
        order = np.empty(max(m, 1), np.int64)
        cpython_set_order(values, m, *CPYTHON37_RESIZE, table, scratch, order)
        assert values[order[:m]].tolist() == list(set(values.tolist())), m


def test_python_3_6_grows_its_set_table_later():
    """Set_add_entry of 3.6 resizes at fill*3 >= mask*2: 20 values stay in a 32-slot table (ordered by value mod
    32), where 3.7 and later move them to 128 slots (ordered by value mod 128)."""
    values = np.arange(20, dtype=np.int64) * 33
    table, scratch, order = np.empty(256, np.int64), np.empty(256, np.int64), np.empty(20, np.int64)
    cpython_set_order(values, 20, *CPYTHON36_RESIZE, table, scratch, order)
    assert order.tolist() == list(range(20))
    cpython_set_order(values, 20, *CPYTHON37_RESIZE, table, scratch, order)
    assert order.tolist() == sorted(range(20), key=lambda i: (33 * i) % 128)
    assert values[order].tolist() == list(set(values.tolist()))


def released_cm_gems_first_phase(ids, centres, rank_of):
    """Port of curriculum-GeneMask's CM-GEMS_pretraining_code.py `mask_tokens`, its genemask phase (k = 6), for one
    sequence on given centres; positions include [CLS] at 0; `rank_of(position)` is kmer_id_to_pmi_rank."""
    inputs = [2, *ids.tolist(), 3]
    end = len(inputs) - 2
    mask_centers = set((np.flatnonzero(centres) + 1).tolist())
    new_centers = set(mask_centers)
    highest_pmi_id_per_mask_center = []
    for center in mask_centers:
        min_pmi_rank, min_pmi_index = rank_of(center), center
        for mask_number in [-2, -1, 1, 2, 3]:
            current_index = center + mask_number
            if 1 <= current_index <= end:
                new_centers.add(current_index)
                if rank_of(current_index) < min_pmi_rank:
                    min_pmi_rank, min_pmi_index = rank_of(current_index), current_index
        highest_pmi_id_per_mask_center.append((min_pmi_rank, min_pmi_index))
    if highest_pmi_id_per_mask_center:
        segment_cnt = math.ceil(len(highest_pmi_id_per_mask_center) / 2)
        if segment_cnt < 5:
            top_segments_only = highest_pmi_id_per_mask_center
        else:
            top_segments_only = highest_pmi_id_per_mask_center[0:segment_cnt]
        highest_pmi_id_per_mask_center.sort(key=lambda a: a[0])  # after the cut: it changes nothing
        for _, pmi_index in top_segments_only:
            for mask_number in [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5]:
                if 1 <= pmi_index + mask_number <= end:
                    new_centers.add(pmi_index + mask_number)
    mask = np.zeros(len(ids), bool)
    mask[[p - 1 for p in new_centers]] = True
    return mask


def cm_gems_rank_of(ranks):
    """kmer_id_to_pmi_rank as released in CM-GEMS: decode the id (a special id decodes to no k-mer), look the
    6-mer up in a defaultdict(int), and map a missing (0) rank to 4096."""
    vocab = kmer_vocab(6)
    table = {vocab[i]: int(ranks[i]) for i in range(N_SPECIAL, len(vocab))}

    def rank_of(token_id):
        return table.get(vocab[token_id] if token_id >= N_SPECIAL else "", 0) or 4096

    return rank_of


def test_cm_gems_first_phase_matches_the_released_loop():
    rng = np.random.default_rng(12)
    ranks = random_ranks(6)
    rank_of = cm_gems_rank_of(ranks)
    position_ranks = released_position_ranks(ranks, special_rank=4**6)
    checked = 0
    for trial in range(400):
        n = int(rng.integers(1, 511))
        ids = rng.integers(N_SPECIAL, N_SPECIAL + N_KMERS, size=n)
        centres = rng.random(n) < rng.choice([0.0176, 0.03])
        if centres.sum() > 18:  # this interpreter's set order is 3.6's up to 18 elements
            continue
        out = np.zeros(n, dtype=np.bool_)
        run_genemask_kernel(
            ids.astype(np.int64), np.array([0, n]), np.zeros(1, np.uint64), np.uint64(0), centres, ranks, 6, 8,
            True, out, NO_RECORD, NO_CENTRES, position_ranks, True,
        )  # fmt: skip
        assert (out == released_cm_gems_first_phase(ids, centres, rank_of)).all(), trial
        checked += centres.sum() > 8  # the high set is cut
    assert checked > 50


def test_cm_gems_first_phase_cuts_the_high_set_before_sorting():
    """Twelve centres whose MC* rank improves with position: sorted, the last six would be high; as released,
    the first six in the set's order of their input positions are."""
    n, centre_tokens = 300, [20 * i for i in range(1, 13)]
    ranks = np.full(N_SPECIAL + N_KMERS, N_KMERS, dtype=np.int64)
    ranks[N_SPECIAL:] = N_KMERS - np.arange(N_KMERS)  # a higher id (here: a later position) ranks better
    position_ranks = released_position_ranks(ranks, special_rank=4**6)
    ids = np.full(n, N_SPECIAL, dtype=np.int64)
    out, mc_star, high = np.zeros(n, np.bool_), np.full(n, -1, np.int64), np.zeros(n, np.bool_)
    run_genemask_kernel(
        ids, np.array([0, n]), np.zeros(1, np.uint64), np.uint64(0), centres_at(n, centre_tokens), ranks, 6, 8,
        True, out, mc_star, high, position_ranks, True,
    )  # fmt: skip
    assert [mc_star[c] for c in centre_tokens] == [c + 3 for c in centre_tokens]  # the rightmost candidate
    in_set_order = [p - 1 for p in set(c + 1 for c in centre_tokens)]
    assert np.flatnonzero(high).tolist() == sorted(in_set_order[:6])
    assert sorted(in_set_order[:6]) != centre_tokens[6:]  # not the best-ranked half
    assert (
        out == released_cm_gems_first_phase(ids, centres_at(n, centre_tokens), cm_gems_rank_of(ranks))
    ).all()


def test_cm_gems_first_phase_as_released_depends_on_position_only():
    ranks = random_ranks(4)
    ids, offsets = batch([400, 400], seed=1)
    masker = Masker("cm-gems-genemask-as-released", seed=2, rank_of_id=ranks)
    both = masker(ids, offsets, [7, 7], 0)
    assert (both[:400] == both[400:]).all()
    assert 0.12 < masker(*batch([500] * 40, seed=2), np.arange(40), 0).mean() < 0.18


# ---------------------------------------------------------------------------------------------- pmi-vocab


def pmi_vocab_oracle(sequence: str, vocabulary: set[str], key: int, k=6, fraction=0.15, min_n=2, max_n=10):
    """Plain-Python pmi-vocab of one sequence with the kernel's random draws."""
    n_nt = len(sequence)
    n = n_nt - k + 1
    overlap = stream_bits(key, STREAM_OVERLAP, n_nt * 16 + 16)
    matches = []
    for i in range(n_nt):
        for length in range(min_n, min(max_n, n_nt - i) + 1):
            if sequence[i : i + length] in vocabulary:
                priority = int(overlap[i * 16 + length] & np.uint64(0xFFFF))
                matches.append((max_n - length, priority, i, length))
    taken = [False] * n_nt
    unit_len = [0] * n_nt
    for _, _, i, length in sorted(matches):
        if not any(taken[i : i + length]):
            taken[i : i + length] = [True] * length
            unit_len[i] = length
    units = []
    for i in range(n_nt):
        if unit_len[i] == 0 and not taken[i]:
            unit_len[i] = 1
        if unit_len[i]:
            units.append(i)
    draws = stream_bits(key, STREAM_UNIT_ORDER, len(units))
    target = max(1, int(fraction * n + 0.5))
    mask = np.zeros(n, bool)
    for u in range(len(units)):
        pick = u + int(draws[u] % np.uint64(len(units) - u))
        units[u], units[pick] = units[pick], units[u]
        i = units[u]
        first, last = max(0, i - k + 1), min(n - 1, i + unit_len[i] - 1)
        new = int((~mask[first : last + 1]).sum())
        if mask.sum() + new > target:
            continue
        mask[first : last + 1] = True
        if mask.sum() >= target:
            break
    return mask


def test_pmi_vocab_matches_oracle():
    rng = np.random.default_rng(5)
    vocabulary = {"".join(rng.choice(list("ACGT"), size=n)) for n in rng.integers(2, 11, size=400)}
    vocabulary |= {"ACGTACGTAC", "ACGTAC", "AC", "GT", "CGTA"}
    masker = Masker("pmi-vocab", seed=3, ngrams=NgramVocabulary.from_ngrams(sorted(vocabulary)))
    for trial in range(40):
        sequence = "".join(rng.choice(list("ACGT"), size=int(rng.integers(6, 512))))
        if trial % 3 == 0:
            sequence = ("ACGTACGTAC" * 60)[: len(sequence)]
        ids = sequence_to_token_ids(sequence)
        mask = masker(ids, np.array([0, len(ids)]), [trial], 1)
        key = int(sequence_keys(3, 1, [trial])[0])
        assert (mask == pmi_vocab_oracle(sequence, vocabulary, key)).all(), trial


def test_pmi_vocab_longest_occurrence_wins_and_hides_whole_units():
    # Vocabulary: a 10-mer at nucleotides 8..17 and the 3-mer "GTA" inside it (at 11..13). The 10-mer wins, so
    # "GTA" is never a unit; the 10-mer's unit masks tokens 3..17, which hide all of its nucleotides.
    sequence = "T" * 8 + "ACGTACGTAC" + "T" * 20
    ids = sequence_to_token_ids(sequence)
    masker = Masker("pmi-vocab", ngrams=NgramVocabulary.from_ngrams(["ACGTACGTAC", "GTA"]), mask_fraction=0.9)
    chosen = 0
    for chunk in range(200):
        mask = masker(ids, np.array([0, len(ids)]), [chunk], 0)
        # Token 12 covers nucleotides 12..17, all inside the 10-mer: only the 10-mer's unit can mask it.
        if mask[12]:
            assert mask[3:18].all()
            chosen += 1
        else:
            assert not mask[8:13].any()  # a "GTA" unit would mask tokens 6..13
    assert chosen >= 30


def test_pmi_vocab_overlaps_resolved_at_random():
    # Two overlapping occurrences of equal length: either may win, depending on the draws.
    sequence = "T" * 30 + "AACCAACC" + "T" * 30  # "AACCAA" at 30 and "CCAACC" at 32 overlap
    ids = sequence_to_token_ids(sequence)
    vocabulary = NgramVocabulary.from_ngrams(["AACCAA", "CCAACC"])
    winners = set()
    for chunk in range(100):
        key = int(sequence_keys(0, 0, [chunk])[0])
        overlap = stream_bits(key, STREAM_OVERLAP, 40 * 16)
        first = overlap[30 * 16 + 6] & np.uint64(0xFFFF)
        second = overlap[32 * 16 + 6] & np.uint64(0xFFFF)
        winners.add("first" if first < second else "second")
        mask = Masker("pmi-vocab", ngrams=vocabulary)(ids, np.array([0, len(ids)]), [chunk], 0)
        assert (mask == pmi_vocab_oracle(sequence, {"AACCAA", "CCAACC"}, key)).all()
    assert winners == {"first", "second"}


# ---------------------------------------------------------------------------------------------- rates, determinism


@pytest.fixture(scope="module")
def maskers():
    ranks = random_ranks(1)
    rng = np.random.default_rng(9)
    ngrams = NgramVocabulary.from_ngrams(
        ["".join(rng.choice(list("ACGT"), size=n)) for n in rng.integers(5, 11, 3000)]
    )
    return {
        "random": Masker("random", seed=1),
        "genemask": Masker("genemask", seed=1, rank_of_id=ranks),
        "genemask-as-released": Masker("genemask-as-released", seed=1, rank_of_id=ranks),
        "pmi-vocab": Masker("pmi-vocab", seed=1, ngrams=ngrams),
    }


@pytest.mark.parametrize(
    ("strategy", "low", "high"),
    [
        ("random", 0.135, 0.146),
        ("genemask", 0.14, 0.17),
        ("genemask-as-released", 0.14, 0.17),
        ("pmi-vocab", 0.14, 0.151),
    ],
)
def test_masking_rate_on_random_data(maskers, strategy, low, high):
    ids, offsets = batch([510] * 2000, seed=2)
    mask = maskers[strategy](ids, offsets, np.arange(2000), 0)
    assert low < mask.mean() < high


def test_centre_rate(maskers):
    ids, offsets = batch([510] * 2000, seed=2)
    drawn = drawn_centres(maskers["genemask"], offsets, np.arange(2000), 0)
    assert abs(drawn.mean() - 0.0176) < 0.0008  # about 8 binomial standard deviations


@pytest.mark.parametrize("strategy", ["random", "genemask", "genemask-as-released", "pmi-vocab"])
def test_determinism_independent_of_batch(maskers, strategy):
    lengths = [1, 5, 506, 300, 77, 506]
    ids, offsets = batch(lengths, seed=3)
    chunks = np.array([10, 11, 12, 13, 14, 15])
    masker = maskers[strategy]
    full = masker(ids, offsets, chunks, 2)
    assert (masker(ids, offsets, chunks, 2) == full).all()
    for s in range(len(lengths)):
        one = masker(ids[offsets[s] : offsets[s + 1]], np.array([0, lengths[s]]), [chunks[s]], 2)
        assert (one == full[offsets[s] : offsets[s + 1]]).all()
    order = [3, 0, 5, 1, 4, 2]
    shuffled_ids, shuffled_offsets = flatten([ids[offsets[s] : offsets[s + 1]] for s in order])
    shuffled = masker(shuffled_ids, shuffled_offsets, chunks[order], 2)
    for position, s in enumerate(order):
        part = shuffled[shuffled_offsets[position] : shuffled_offsets[position + 1]]
        assert (part == full[offsets[s] : offsets[s + 1]]).all()
    assert (masker(ids, offsets, chunks, 3) != full).any()
    other_seed = Masker(strategy, seed=2, rank_of_id=masker.rank_of_id, ngrams=masker.ngrams)
    assert (other_seed(ids, offsets, chunks, 2) != full).any()


def test_empty_batch_and_empty_sequences(maskers):
    for masker in maskers.values():
        assert masker(np.zeros(0, np.int64), np.array([0]), [], 0).shape == (0,)
        assert masker(np.zeros(0, np.int64), np.array([0, 0]), [1], 0).shape == (0,)


# ---------------------------------------------------------------------------------------------- inputs


def test_load_kmer_ranks(tmp_path):
    kmers = kmer_vocab(6)[N_SPECIAL:]
    path = tmp_path / "kmer_ranks.tsv"
    rows = [f"{kmer}\t10\t0.1\t{min(i + 1, 4000)}" for i, kmer in enumerate(kmers)]
    path.write_text("kmer\tcount\tnpmi\trank\n" + "\n".join(rows) + "\n")
    ranks = load_kmer_ranks(path)
    # Indexed by token id in DNABERT's vocabulary order, whatever the order of the file's rows.
    assert ranks[N_SPECIAL:].tolist() == [min(i + 1, 4000) for i in range(len(kmers))]
    assert ranks[:N_SPECIAL].tolist() == [4000] * N_SPECIAL
    path.write_text("kmer\tcount\tnpmi\trank\n" + "\n".join(rows[::-1]) + "\n")
    assert np.array_equal(load_kmer_ranks(path), ranks)
    with pytest.raises(UserError, match="expected 5-mers"):
        load_kmer_ranks(path, k=5)
    path.write_text("kmer\tcount\tnpmi\trank\n" + "\n".join(rows[:-1]) + "\n")
    with pytest.raises(UserError, match="expected all 4"):
        load_kmer_ranks(path)


def test_strategy_inputs_are_checked():
    with pytest.raises(UserError, match="unknown masking strategy"):
        Masker("spanbert")
    with pytest.raises(UserError, match="needs a k-mer ranking"):
        Masker("genemask")
    with pytest.raises(UserError, match="needs an n-gram vocabulary"):
        Masker("pmi-vocab")
    with pytest.raises(UserError, match="not over ACGT"):
        NgramVocabulary.from_ngrams(["ACGN"])


def test_config_schema_defaults_are_the_library_defaults():
    """The workflow's masking defaults (the packaged config schema) equal the library's MaskingSettings; each
    strategy's parameters are checked against its registry entry in test_registry.py."""
    masking = fill_defaults({}, load_schema())["masking"]
    library = MaskingSettings()
    assert (masking["k"], masking["seed"]) == (library.k, library.seed)
    pmi_vocab = masking["pmi_vocab"]
    assert (pmi_vocab["vocab_size"], pmi_vocab["min_n"], pmi_vocab["max_n"]) == (
        library.ngram_vocab_size,
        library.min_n,
        library.max_n,
    )


# ---------------------------------------------------------------------------------------------- the kernel cache


def test_the_kernel_cache_follows_edits_of_the_modules_a_kernel_inlines(tmp_path):
    """A kernel inlines a function of another module; editing only that module recompiles `jit.kernel`'s cache,
    where numba's own cache (cache=True, the control) keeps the stale machine code; a kernel that does not import
    the edited module is still loaded from the cache."""
    package = tmp_path / "toypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    streams = package / "streams.py"
    streams.write_text(
        "import numba\n\nOFFSET = 1\n\n\n@numba.njit(inline='always')\ndef draw(x):\n    return x + OFFSET\n"
    )
    (package / "kern.py").write_text(
        "import numba\n\nfrom genemask.masking.jit import kernel\nfrom toypkg.streams import draw\n\n\n"
        "@kernel()\ndef ours(x):\n    return draw(x)\n\n\n@numba.njit(cache=True)\ndef plain(x):\n    return draw(x)\n"
    )
    (package / "other.py").write_text(
        "from genemask.masking.jit import kernel\n\n\n@kernel()\ndef alone(x):\n    return x\n"
    )
    script = (
        "from toypkg import kern, other\n"
        "hits = lambda f: sum(f.stats.cache_hits.values())\n"
        "print(kern.ours(10), hits(kern.ours), kern.plain(10), hits(kern.plain), other.alone(3), hits(other.alone))\n"
    )
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(genemask.__file__).parents[1])]),
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
    }

    def run() -> list[int]:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        return [int(x) for x in done.stdout.split()]

    assert run() == [11, 0, 11, 0, 3, 0]  # compiled and cached
    streams.write_text(streams.read_text().replace("OFFSET = 1", "OFFSET = 2"))
    assert run() == [
        12,
        0,
        11,
        1,
        3,
        1,
    ]  # ours recompiled, numba's own cache stale, the unrelated kernel cached
