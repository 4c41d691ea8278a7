"""The `random` strategy (DNABERT): every token is a centre with probability p; a centre c masks tokens
c-lo..c+hi (lo = (k-1)//2, hi = k-1-lo: c-2..c+3 for k = 6), clipped to the sequence."""

from __future__ import annotations

import numpy as np

from genemask.masking.jit import kernel
from genemask.masking.random_streams import STREAM_CENTRE, UNIFORM_SHIFT, draw_bits, stream_key


def window(k: int) -> tuple[int, int]:
    """(lo, hi): a centre c masks tokens c-lo..c+hi, DNABERT's MASK_LIST (c-2..c+3 for k = 6)."""
    lo = (k - 1) // 2
    return lo, k - 1 - lo


@kernel(nogil=True)
def random_spans_kernel(offsets, keys, threshold, lo, hi, out):
    """Draws each sequence's centres (stream STREAM_CENTRE) and masks their windows into `out` (the hot path)."""
    n_max = 0
    for s in range(len(offsets) - 1):
        n_max = max(n_max, offsets[s + 1] - offsets[s])
    centre_pos = np.empty(n_max, dtype=np.int64)
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        centre_key = stream_key(keys[s], STREAM_CENTRE)
        m = 0
        for t in range(n):  # a tight loop: the draws are most of the work
            if (draw_bits(centre_key, t) >> UNIFORM_SHIFT) < threshold:
                centre_pos[m] = t
                m += 1
        for c in range(m):
            t = centre_pos[c]
            for j in range(max(0, t - lo), min(n, t + hi + 1)):
                out[start + j] = True
