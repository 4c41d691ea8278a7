"""Plain-Python k-mer helpers shared by the tests: oracles independent of the package's vectorised code."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from genemask.ngrams.counting import NgramCounts, count_fasta


def ngram_code(ngram: str) -> int:
    """2-bit code of an ACGT string (A0 C1 G2 T3, first letter most significant)."""
    if not ngram or any(letter not in "ACGT" for letter in ngram.upper()):
        raise ValueError(f"not an ACGT n-gram: {ngram!r}")
    code = 0
    for letter in ngram.upper():
        code = 4 * code + "ACGT".index(letter)
    return code


def all_kmers(k: int) -> list[str]:
    """All 4^k k-mers in lexicographic ACGT order."""
    return ["".join(p) for p in itertools.product("ACGT", repeat=k)]


def kmer_codes(kmers: list[str]) -> np.ndarray:
    """k-mer strings (equal length) -> uint8 letter codes (n, k), A0 C1 G2 T3."""
    return np.array([["ACGT".index(c) for c in kmer] for kmer in kmers], dtype=np.uint8).reshape(
        len(kmers), -1
    )


def count_sequences(sequences: Iterable[str], max_n: int, threads: int = 1) -> NgramCounts:
    """count_fasta over in-memory sequences, written as contigs seq0, seq1, ... of a temporary FASTA."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "sequences.fa"
        path.write_text("".join(f">seq{i}\n{sequence}\n" for i, sequence in enumerate(sequences)))
        return count_fasta(path, max_n, threads=threads)
