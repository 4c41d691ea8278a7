"""BERT's 80/10/10 replacement of masked tokens, deterministic per (seed, epoch, chunk index) like the masks."""

from __future__ import annotations

import numpy as np

from genemask.masking.jit import kernel
from genemask.masking.random_streams import (
    STREAM_RANDOM_TOKEN,
    STREAM_REPLACE,
    UNIFORM_SHIFT,
    batch_keys,
    draw_bits,
    probability_threshold,
    stream_key,
)
from genemask.masking.tokenizer import MASK_ID, N_SPECIAL

# BERT's replacement of a masked token: [MASK] with this probability, a random k-mer with the next; else kept.
DEFAULT_MASK_TOKEN_PROB = 0.8
DEFAULT_RANDOM_TOKEN_PROB = 0.1


@kernel(nogil=True)
def _replace(ids, offsets, keys, mask, mask_threshold, random_threshold, n_kmers, mask_id, out):
    """BERT's 80/10/10: masked tokens become [MASK], a random k-mer, or stay, decided per token."""
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        replace_key = stream_key(keys[s], STREAM_REPLACE)
        token_key = stream_key(keys[s], STREAM_RANDOM_TOKEN)
        for t in range(n):
            out[start + t] = ids[start + t]
            if mask[start + t]:
                u = draw_bits(replace_key, t) >> UNIFORM_SHIFT
                if u < mask_threshold:
                    out[start + t] = mask_id
                elif u < random_threshold:
                    out[start + t] = N_SPECIAL + np.int64(draw_bits(token_key, t) % np.uint64(n_kmers))


def replace_masked(
    ids: np.ndarray,
    offsets: np.ndarray,
    mask: np.ndarray,
    *,
    seed: int,
    chunk_index,
    epoch,
    k: int = 6,
    mask_token_prob: float = DEFAULT_MASK_TOKEN_PROB,
    random_token_prob: float = DEFAULT_RANDOM_TOKEN_PROB,
    mask_id: int = MASK_ID,
) -> np.ndarray:
    """The corrupted input: masked tokens become [MASK] (mask_token_prob), a random k-mer (random_token_prob) or
    stay; deterministic per (seed, epoch, chunk index), like the masks."""
    if mask_token_prob < 0 or random_token_prob < 0 or mask_token_prob + random_token_prob > 1:
        raise ValueError(f"bad replacement probabilities {mask_token_prob}, {random_token_prob}")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    keys = batch_keys(seed, epoch, chunk_index, len(offsets) - 1)
    out = np.empty(len(ids), dtype=np.int64)
    _replace(
        np.ascontiguousarray(ids, dtype=np.int64),
        offsets,
        keys,
        np.ascontiguousarray(mask, dtype=np.bool_),
        probability_threshold(mask_token_prob),
        probability_threshold(mask_token_prob + random_token_prob),
        4**k,
        mask_id,
        out,
    )
    return out
