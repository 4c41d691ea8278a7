"""Overlapping k-mer tokens in DNABERT's vocabulary order, encoded with numpy (no loop per k-mer).

Vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK], then the 4^k k-mers in itertools.product('ATCG') order, so that
released DNABERT checkpoints keep their meaning with our ids.
"""

from __future__ import annotations

import itertools

import numpy as np

from genemask.genome.fasta import NON_ACGT, encode

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
N_SPECIAL = len(SPECIAL_TOKENS)
DNABERT_BASE_ORDER = "ATCG"
MIN_K, MAX_K = 3, 6

# Our 2-bit codes are A0 C1 G2 T3; DNABERT's digits follow 'ATCG': A0 T1 C2 G3.
_CODE_TO_DIGIT = np.array([0, 2, 3, 1], dtype=np.int64)


def check_k(k: int) -> None:
    if not MIN_K <= k <= MAX_K:
        raise ValueError(f"k must be in {MIN_K}..{MAX_K}, got {k}")


def kmer_vocab(k: int = 6) -> list[str]:
    """The vocabulary list; its index is the token id."""
    check_k(k)
    return list(SPECIAL_TOKENS) + ["".join(p) for p in itertools.product(DNABERT_BASE_ORDER, repeat=k)]


def vocab_size(k: int = 6) -> int:
    return N_SPECIAL + 4**k


def codes_to_token_ids(codes: np.ndarray, k: int = 6) -> np.ndarray:
    """2-bit codes (A0 C1 G2 T3, 4 = other) of one sequence -> its L-k+1 overlapping k-mer token ids.

    Any k-mer containing a non-ACGT letter becomes [UNK]. Sequences shorter than k give no tokens.
    """
    check_k(k)
    codes = np.asarray(codes)
    n_tokens = codes.shape[-1] - k + 1
    if n_tokens <= 0:
        return np.zeros(codes.shape[:-1] + (0,), dtype=np.int64)
    bad = codes >= NON_ACGT
    digits = _CODE_TO_DIGIT[np.where(bad, 0, codes)]
    ids = np.zeros(codes.shape[:-1] + (n_tokens,), dtype=np.int64)
    unknown = np.zeros(ids.shape, dtype=bool)
    for j in range(k):  # k <= 6 vectorised passes over the whole sequence
        ids = ids * 4 + digits[..., j : j + n_tokens]
        unknown |= bad[..., j : j + n_tokens]
    ids += N_SPECIAL
    ids[unknown] = UNK_ID
    return ids


def sequence_to_token_ids(sequence: str, k: int = 6) -> np.ndarray:
    """A DNA string (any case) -> overlapping k-mer token ids."""
    ascii_seq = np.frombuffer(sequence.upper().encode("ascii"), dtype=np.uint8)
    return codes_to_token_ids(encode(ascii_seq), k)


def kmer_to_id(kmer: str) -> int:
    """One k-mer string -> its token id."""
    return int(sequence_to_token_ids(kmer, len(kmer))[0])


def chunk_token_ids(codes: np.ndarray, offsets: np.ndarray, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated sequences (2-bit codes, sequence i is codes[offsets[i]:offsets[i+1]]) -> (flat token ids,
    token offsets): each sequence's L-k+1 tokens, concatenated. One vectorised pass over the whole batch."""
    check_k(k)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_tokens = np.maximum(np.diff(offsets) - k + 1, 0)
    token_offsets = np.zeros(len(offsets), dtype=np.int64)
    np.cumsum(n_tokens, out=token_offsets[1:])
    all_ids = codes_to_token_ids(np.asarray(codes[offsets[0] : offsets[-1]]), k)
    # Token j of sequence i (flat token index token_offsets[i] + j) starts at nucleotide offsets[i] + j.
    shift = offsets[:-1] - offsets[0] - token_offsets[:-1]
    starts = np.repeat(shift, n_tokens) + np.arange(token_offsets[-1])
    return all_ids[starts], token_offsets
