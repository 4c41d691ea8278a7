"""Counter-based random streams: a sequence's random draws depend only on (seed, epoch, chunk index).

A per-sequence key is hashed from the three numbers with splitmix64, and the draw for item t of stream S is
splitmix64(key_S + (t + 1) * gamma) with key_S = splitmix64(key ^ S * gamma). The draws are numba functions inlined
into the masking kernels, so a sequence's masks never depend on the batch it is in.
"""

from __future__ import annotations

import numba
import numpy as np

GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
# A draw's top 53 bits, compared with probability_threshold().
UNIFORM_SHIFT = np.uint64(11)

# Independent random streams per sequence.
STREAM_CENTRE = 1
STREAM_REPLACE = 2
STREAM_RANDOM_TOKEN = 3
STREAM_OVERLAP = 4
STREAM_UNIT_ORDER = 5


@numba.njit(inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@numba.njit(inline="always")
def stream_key(key, stream):
    return _mix(key ^ (np.uint64(stream) * GAMMA))


@numba.njit(inline="always")
def draw_bits(key_of_stream, index):
    """The 64 random bits of item `index` (>= 0) of a stream (key from stream_key)."""
    return _mix(key_of_stream + np.uint64(index + 1) * GAMMA)


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


def sequence_keys(seed: int, epoch, chunk_index) -> np.ndarray:
    """Per-sequence random keys from (seed, epoch, chunk index); epoch and chunk_index broadcast."""
    epoch = np.asarray(epoch, dtype=np.int64).astype(np.uint64)
    chunk_index = np.asarray(chunk_index, dtype=np.int64).astype(np.uint64)
    epoch, chunk_index = np.broadcast_arrays(epoch, chunk_index)
    with np.errstate(over="ignore"):
        z = _mix_np(np.full(epoch.shape, np.uint64(seed % 2**64) + GAMMA, dtype=np.uint64))
        z = _mix_np(z ^ (epoch + GAMMA))
        return _mix_np(z ^ (chunk_index + GAMMA)).reshape(-1)


def batch_keys(seed: int, epoch, chunk_index, n_sequences: int) -> np.ndarray:
    """sequence_keys broadcast to one writable key per sequence of a batch."""
    return np.broadcast_to(sequence_keys(seed, epoch, chunk_index), (n_sequences,)).copy()


def probability_threshold(p: float) -> np.uint64:
    """A draw `bits` succeeds with probability p when (bits >> UNIFORM_SHIFT) < threshold."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return np.uint64(min(round(p * 2**53), 2**53))
