"""The `pmi-vocab` strategy: n-gram occurrences (n = min_n..max_n nt) from an NPMI vocabulary become masking
units, longest first, overlaps between equally long ones resolved at random; every nucleotide left over is a unit
of its own. Units are drawn in random order until mask_fraction of the tokens are masked (a unit that would
overshoot is skipped, as in whole-word masking); a unit's nucleotides s..e-1 are hidden by masking tokens
s-k+1..e-1. A one-nucleotide unit costs exactly the k tokens that cover it, DNABERT's window.
"""

from __future__ import annotations

import numba
import numpy as np

from genemask.masking.jit import kernel
from genemask.masking.random_streams import STREAM_OVERLAP, STREAM_UNIT_ORDER, draw_bits, stream_key
from genemask.masking.tokenizer import N_SPECIAL

_PRIORITY_BITS = 16


@numba.njit(nogil=True, inline="always")
def _radix_argsort(keys, n, n_bits, order, scratch, counts):
    """Stable LSD radix argsort (8-bit digits) of keys[:n] (non-negative, < 2**n_bits) into order[:n]."""
    for i in range(n):
        order[i] = i
    for shift in range(0, n_bits, 8):
        counts[:] = 0
        for i in range(n):
            counts[((keys[order[i]] >> shift) & 255) + 1] += 1
        for b in range(256):
            counts[b + 1] += counts[b]
        for i in range(n):
            digit = (keys[order[i]] >> shift) & 255
            scratch[counts[digit]] = order[i]
            counts[digit] += 1
        order[:n] = scratch[:n]


@kernel(nogil=True)
def pmi_vocab_spans_kernel(
    ids, offsets, keys, k, member, prefix, table_start, min_n, max_n, mask_fraction, out
):
    n_tok_max = 0
    for s in range(len(offsets) - 1):
        n_tok_max = max(n_tok_max, offsets[s + 1] - offsets[s])
    n_nt_max = n_tok_max + k - 1
    n_lengths = max_n - min_n + 1
    bases = np.empty(n_nt_max, dtype=np.int64)
    capacity = n_nt_max * n_lengths
    match_start = np.empty(capacity, dtype=np.int64)
    match_len = np.empty(capacity, dtype=np.int64)
    match_key = np.empty(capacity, dtype=np.int64)
    order = np.empty(capacity, dtype=np.int64)
    scratch = np.empty(capacity, dtype=np.int64)
    counts = np.empty(257, dtype=np.int64)
    taken = np.empty(n_nt_max, dtype=np.bool_)
    unit_len = np.empty(n_nt_max, dtype=np.int64)  # length of the unit starting at a nucleotide, else 0
    units = np.empty(n_nt_max, dtype=np.int64)
    priority_mask = np.uint64((1 << _PRIORITY_BITS) - 1)
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        if n == 0:
            continue
        n_nt = n + k - 1
        # Nucleotides as DNABERT digits (A0 T1 C2 G3) from the tokens; -1 where a token is not a k-mer.
        for i in range(n_nt):
            t = min(i, n - 1)
            token = ids[start + t]
            if token < N_SPECIAL:
                bases[i] = -1
            else:
                bases[i] = ((token - N_SPECIAL) >> (2 * (k - 1 - (i - t)))) & 3
        # Every vocabulary occurrence, ordered longest first, then by a random priority (ties: leftmost).
        overlap_key = stream_key(keys[s], STREAM_OVERLAP)
        n_match = 0
        for i in range(n_nt):
            code = 0
            for length in range(1, min(max_n, n_nt - i) + 1):
                b = bases[i + length - 1]
                if b < 0:
                    break
                code = code * 4 + b
                index = table_start[length] + code
                if not (prefix[index >> 3] >> (index & 7)) & 1:
                    break  # no vocabulary n-gram starts with these letters
                if length >= min_n and (member[index >> 3] >> (index & 7)) & 1:
                    match_start[n_match] = i
                    match_len[n_match] = length
                    priority = np.int64(draw_bits(overlap_key, i * 16 + length) & priority_mask)
                    match_key[n_match] = ((max_n - length) << _PRIORITY_BITS) | priority
                    n_match += 1
        _radix_argsort(match_key, n_match, _PRIORITY_BITS + 8, order, scratch, counts)  # max_n - n < 256
        taken[:n_nt] = False
        unit_len[:n_nt] = 0
        for o in range(n_match):
            i, length = match_start[order[o]], match_len[order[o]]
            free = True
            for j in range(i, i + length):
                if taken[j]:
                    free = False
                    break
            if free:
                taken[i : i + length] = True
                unit_len[i] = length
        # Units: accepted occurrences plus single leftover nucleotides.
        n_unit = 0
        for i in range(n_nt):
            if unit_len[i] == 0 and not taken[i]:
                unit_len[i] = 1
            if unit_len[i] > 0:
                units[n_unit] = i
                n_unit += 1
        # Draw units in random order (a partial Fisher-Yates shuffle) until the budget is met.
        order_key = stream_key(keys[s], STREAM_UNIT_ORDER)
        target = max(1, int(mask_fraction * n + 0.5))
        covered = 0
        for u in range(n_unit):
            pick = u + np.int64(draw_bits(order_key, u) % np.uint64(n_unit - u))
            i = units[pick]
            units[pick] = units[u]
            units[u] = i
            first, last = max(0, i - k + 1), min(n - 1, i + unit_len[i] - 1)
            new = 0
            for j in range(first, last + 1):
                if not out[start + j]:
                    new += 1
            if covered + new > target:
                continue
            out[start + first : start + last + 1] = True
            covered += new
            if covered >= target:
                break
