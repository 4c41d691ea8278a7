"""Test-only helpers for the masking tests: plain numpy oracles of the random streams, the centre draws and
DNABERT's spans, and a wrapper that runs the genemask kernel on given centres and records MC* and the high set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genemask.masking.genemask_kernel import run_genemask_kernel
from genemask.masking.random_kernel import window
from genemask.masking.random_streams import STREAM_CENTRE, probability_threshold, sequence_keys
from genemask.masking.settings import DEFAULT_ALL_HIGH_BELOW

# splitmix64, written out again so that the kernels' draws are checked against an independent copy.
GAMMA = np.uint64(0x9E3779B97F4A7C15)


def splitmix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_bits(key: int, stream: int, n: int) -> np.ndarray:
    """The first n draws (uint64) of one sequence's stream, as the kernels draw them."""
    with np.errstate(over="ignore"):
        stream_key = splitmix(np.array([key], dtype=np.uint64) ^ (np.uint64(stream) * GAMMA))
        return splitmix(stream_key + np.arange(1, n + 1, dtype=np.uint64) * GAMMA)


def drawn_centres(masker, offsets: np.ndarray, chunk_index, epoch) -> np.ndarray:
    """The flat centre indicator of a batch (random and genemask strategies), from the stream draws."""
    keys = np.broadcast_to(sequence_keys(masker.seed, epoch, chunk_index), (len(offsets) - 1,))
    threshold = probability_threshold(masker.centre_probability)
    return np.concatenate(
        [
            (stream_bits(int(key), STREAM_CENTRE, n) >> np.uint64(11)) < threshold
            for key, n in zip(keys, np.diff(offsets), strict=True)
        ]
        + [np.zeros(0, dtype=bool)]
    )


def random_spans(offsets: np.ndarray, centre_flags: np.ndarray, k: int = 6) -> np.ndarray:
    """DNABERT spans around given centres (flat boolean), clipped to each sequence."""
    out = np.zeros(len(centre_flags), dtype=bool)
    lo, hi = window(k)
    for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
        for centre in np.flatnonzero(centre_flags[start:stop]):
            out[start + max(0, centre - lo) : start + min(stop - start, centre + hi + 1)] = True
    return out


@dataclass(frozen=True)
class GenemaskSpans:
    mask: np.ndarray  # flat boolean
    mc_star: np.ndarray  # flat: at each centre, the index (within its sequence) of its MC*; -1 elsewhere
    high: np.ndarray  # flat boolean: centres in the high set


def genemask_spans(
    ids: np.ndarray,
    offsets: np.ndarray,
    centre_flags: np.ndarray,
    rank_of_id: np.ndarray,
    *,
    k: int = 6,
    all_high_below: int = DEFAULT_ALL_HIGH_BELOW,
    as_released: bool = False,
) -> GenemaskSpans:
    """The genemask kernel's spans around given centres (flat boolean), with each centre's MC* and the high set."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    centre_flags = np.ascontiguousarray(centre_flags, dtype=np.bool_)
    assert len(centre_flags) == len(ids)
    out = np.zeros(len(ids), dtype=np.bool_)
    mc_star = np.full(len(ids), -1, dtype=np.int64)
    high = np.zeros(len(ids), dtype=np.bool_)
    keys = np.zeros(len(offsets) - 1, dtype=np.uint64)  # unused: the centres are given
    run_genemask_kernel(
        ids,
        offsets,
        keys,
        np.uint64(0),
        centre_flags,
        rank_of_id,
        k,
        all_high_below,
        as_released,
        out,
        mc_star,
        high,
    )
    return GenemaskSpans(out, mc_star, high)
