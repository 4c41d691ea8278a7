"""The pmi-vocab n-gram vocabulary: the top n-grams by NPMI from ngrams.parquet, as bitsets the kernel reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genemask.errors import UserError
from genemask.masking.settings import DEFAULT_MAX_N, DEFAULT_MIN_N, DEFAULT_NGRAM_VOCAB_SIZE, MAX_NGRAM_N

_DIGIT = np.full(256, -1, dtype=np.int64)
for _digit, _base in enumerate("ATCG"):
    _DIGIT[ord(_base)] = _digit


@dataclass(frozen=True)
class NgramVocabulary:
    """The pmi-vocab n-grams as two flat bitsets. An n-gram of length n with base-4 code c (DNABERT digits
    A0 T1 C2 G3) has index start[n] + c, for n = 1..max_n; `member` holds the vocabulary, `prefix` every prefix of
    a vocabulary n-gram (so that matching stops early). Bitsets keep the lookups in cache (175 kB for max_n 10)."""

    member: np.ndarray
    prefix: np.ndarray
    start: np.ndarray
    min_n: int
    max_n: int
    size: int

    @classmethod
    def from_ngrams(
        cls, ngrams: Sequence[str], min_n: int = DEFAULT_MIN_N, max_n: int = DEFAULT_MAX_N
    ) -> NgramVocabulary:
        if not 1 <= min_n <= max_n <= MAX_NGRAM_N:
            raise ValueError(f"need 1 <= min_n <= max_n <= {MAX_NGRAM_N}, got {min_n}..{max_n}")
        start = np.zeros(max_n + 2, dtype=np.int64)
        for n in range(1, max_n + 1):
            start[n + 1] = start[n] + 4**n
        member = np.zeros(int(start[max_n + 1]), dtype=np.bool_)
        prefix = np.zeros(int(start[max_n + 1]), dtype=np.bool_)
        size = 0
        for n in range(min_n, max_n + 1):
            group = sorted({g.upper() for g in ngrams if len(g) == n})
            if not group:
                continue
            digits = _DIGIT[np.frombuffer("".join(group).encode("ascii"), dtype=np.uint8)].reshape(
                len(group), n
            )
            if (digits < 0).any():
                bad = group[int(np.flatnonzero((digits < 0).any(axis=1))[0])]
                raise UserError(f"n-gram '{bad}' is not over ACGT")
            code = np.zeros(len(group), dtype=np.int64)
            for j in range(n):
                code = code * 4 + digits[:, j]
                prefix[start[j + 1] + code] = True
            member[start[n] + code] = True
            size += len(group)
        return cls(
            np.packbits(member, bitorder="little"),
            np.packbits(prefix, bitorder="little"),
            start,
            min_n,
            max_n,
            size,
        )


def load_ngram_vocabulary(
    path: str | Path,
    vocab_size: int = DEFAULT_NGRAM_VOCAB_SIZE,
    min_n: int = DEFAULT_MIN_N,
    max_n: int = DEFAULT_MAX_N,
) -> NgramVocabulary:
    """The top `vocab_size` n-grams (min_n <= n <= max_n) by NPMI from ngrams.parquet (columns ngram, n, npmi)."""
    path = Path(path)
    try:
        table = pd.read_parquet(path, columns=["ngram", "n", "npmi"])
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"{path}: cannot read the n-gram table (columns ngram, n, npmi): {error}") from None
    held = table.loc[table["npmi"].notna(), "n"]
    table = table[(table["n"] >= min_n) & (table["n"] <= max_n) & table["npmi"].notna()]
    if table.empty:  # an empty vocabulary would silently mask single nucleotides
        holds = f"n = {held.min()}..{held.max()}" if len(held) else "none"
        raise UserError(
            f"{path}: no n-gram with an NPMI of length {min_n}..{max_n} (pmi-vocab --min-n/--max-n); the table "
            f"holds {holds}"
        )
    top = table.sort_values(["npmi", "ngram"], ascending=[False, True], kind="stable").head(vocab_size)
    return NgramVocabulary.from_ngrams(top["ngram"].astype(str).tolist(), min_n, max_n)
