"""The k-mer ranking and its file, `kmer_ranks.tsv`: the one class, reader and writer every stage uses.

The file is tab-separated with the header `kmer count npmi rank` (columns in any order; extra columns are
ignored) and one row per k-mer, all 4**k of them. `npmi` is a number, or `NA` (also empty or `nan`) for
k-mers below the count threshold; `rank` is 1 for the highest NPMI, and the k-mers without NPMI share the
worst rank. `genemask npmi` writes the rows best rank first.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.ngrams.counting import ngram_strings

RANKS_COLUMNS = ("kmer", "count", "npmi", "rank")
_MISSING_NPMI = frozenset({"", "na", "nan"})
_INTEGER = re.compile(r"\d+")


@dataclass(frozen=True)
class KmerRanking:
    """All 4**k k-mers in code order (ACGT lexicographic): count, NPMI (NaN below the count threshold) and
    rank (1 = highest NPMI; the k-mers without NPMI share the worst rank)."""

    k: int
    count: np.ndarray  # int64 (4**k,)
    npmi: np.ndarray  # float64 (4**k,)
    rank: np.ndarray  # int64 (4**k,)

    def __post_init__(self) -> None:
        size = 4**self.k
        for name in ("count", "npmi", "rank"):
            if np.shape(getattr(self, name)) != (size,):
                raise ValueError(f"KmerRanking.{name}: expected shape ({size},) for k = {self.k}")

    @functools.cached_property
    def kmers(self) -> np.ndarray:
        """The k-mer strings, in code order."""
        return np.array(ngram_strings(np.arange(4**self.k), self.k))

    @functools.cached_property
    def codes(self) -> np.ndarray:
        """uint8 (4**k, k) letter codes, A0 C1 G2 T3, in code order."""
        shifts = 2 * np.arange(self.k - 1, -1, -1)
        return ((np.arange(4**self.k)[:, None] >> shifts) & 3).astype(np.uint8)

    @property
    def n_ranked(self) -> int:
        """The number of k-mers with an NPMI value."""
        return int(np.isfinite(self.npmi).sum())

    @property
    def worst_rank(self) -> int:
        """The rank shared by every k-mer below the threshold: one past the ranked ones."""
        return self.n_ranked + 1

    def top(self, n: int) -> np.ndarray:
        """Codes of the n best-ranked k-mers, best first (ties in code order)."""
        return np.argsort(self.rank, kind="stable")[:n]


def write_kmer_ranks(ranking: KmerRanking, path: str | Path) -> None:
    """TSV `kmer count npmi rank`, one row per k-mer, best rank first; NPMI `NA` below threshold."""
    order = np.lexsort((np.arange(ranking.rank.size), ranking.rank))
    kmers = ngram_strings(order, ranking.k)
    lines = ["\t".join(RANKS_COLUMNS)]
    for kmer, count, value, rank in zip(
        kmers,
        ranking.count[order].tolist(),
        ranking.npmi[order].tolist(),
        ranking.rank[order].tolist(),
        strict=True,
    ):
        lines.append(f"{kmer}\t{count}\t{'NA' if math.isnan(value) else repr(value)}\t{rank}")
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _codes_of(kmers: list[str], k: int) -> np.ndarray:
    """Codes of validated ACGT k-mers of length k."""
    letters = np.frombuffer("".join(kmers).encode("ascii"), dtype=np.uint8).reshape(len(kmers), k)
    lookup = np.zeros(256, dtype=np.int64)
    lookup[np.frombuffer(b"ACGT", dtype=np.uint8)] = np.arange(4)
    digits = lookup[letters]
    return digits @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64)) if k else np.zeros(len(kmers), np.int64)


def read_kmer_ranks(path: str | Path) -> KmerRanking:
    """Read and validate `kmer_ranks.tsv`; every problem is a one-line UserError naming the file and line."""
    path = Path(path)
    expected = "header '" + " ".join(RANKS_COLUMNS) + "' (tab-separated)"
    if not path.is_file():
        raise UserError(f"{path}: no such file, expected a k-mer ranking with {expected}")
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (UnicodeDecodeError, OSError) as error:
        raise UserError(f"{path}: unreadable ({type(error).__name__}), expected a k-mer ranking") from None
    if not lines or not any(lines):
        raise UserError(f"{path}: empty file, expected {expected}")
    header = [name.strip() for name in lines[0].split("\t")]
    missing = [name for name in RANKS_COLUMNS if name not in header]
    if missing:
        raise UserError(f"{path}: line 1: missing column(s) {', '.join(missing)}; expected {expected}")
    if len(lines) == 1:
        raise UserError(f"{path}: no k-mer rows after the header")
    rows = [line.split("\t") for line in lines[1:]]
    for number, fields in enumerate(rows, start=2):
        if len(fields) != len(header):
            raise UserError(
                f"{path}: line {number}: {len(fields)} fields, expected {len(header)} as the header"
            )
    kmer_at, count_at, npmi_at, rank_at = (header.index(name) for name in RANKS_COLUMNS)

    def fail(index: int, message: str) -> UserError:
        return UserError(f"{path}: line {index + 2}: {message}")

    kmers = [fields[kmer_at].strip().upper() for fields in rows]
    lengths = np.bincount([len(kmer) for kmer in kmers])
    k = max(int(lengths.argmax()), 1)  # the usual length, so the odd row is the one reported
    kmer_pattern = re.compile(f"[ACGT]{{{k}}}")
    seen: set[str] = set()
    for index, kmer in enumerate(kmers):
        if not kmer_pattern.fullmatch(kmer):
            raise fail(index, f"k-mer {rows[index][kmer_at]!r}: expected {k} letters from ACGT")
        if kmer in seen:
            raise fail(index, f"duplicate k-mer {kmer}")
        seen.add(kmer)
    if len(kmers) != 4**k:
        absent = (
            next((m for m in ngram_strings(np.arange(4**k), k) if m not in seen), None) if k <= 10 else None
        )
        example = f", e.g. {absent}" if absent else ""
        raise UserError(f"{path}: {len(kmers)} k-mers, expected all 4^{k} = {4**k}{example}")

    def integers(at: int, name: str, minimum: int) -> np.ndarray:
        values = np.empty(len(rows), dtype=np.int64)
        for index, fields in enumerate(rows):
            text = fields[at].strip()
            if not _INTEGER.fullmatch(text) or int(text) < minimum:
                raise fail(index, f"{name} {fields[at]!r}: expected an integer >= {minimum}")
            values[index] = int(text)
        return values

    count = integers(count_at, "count", 0)
    rank = integers(rank_at, "rank", 1)
    npmi = np.empty(len(rows), dtype=np.float64)
    for index, fields in enumerate(rows):
        text = fields[npmi_at].strip()
        if text.lower() in _MISSING_NPMI:
            npmi[index] = math.nan
            continue
        try:
            npmi[index] = float(text)
        except ValueError:
            npmi[index] = math.inf
        if not math.isfinite(npmi[index]):
            raise fail(index, f"npmi {fields[npmi_at]!r}: expected a number, or NA below the threshold")
    if not np.isfinite(npmi).any():
        raise UserError(f"{path}: no ranked k-mer: every npmi is NA, expected at least one number")
    _check_rank_agrees(path, kmers, npmi, rank)
    order = np.argsort(_codes_of(kmers, k))
    return KmerRanking(k, count[order], npmi[order], rank[order])


def _check_rank_agrees(path: Path, kmers: list[str], npmi: np.ndarray, rank: np.ndarray) -> None:
    """The rank column must order the k-mers by NPMI, best first; those without NPMI share the worst rank."""
    ranked = np.isfinite(npmi)
    unranked = np.flatnonzero(~ranked)
    worst_ranked = int(rank[ranked].max())
    shared = int(rank[unranked].max()) if unranked.size else worst_ranked + 1
    wrong = unranked[(rank[unranked] != shared) | (rank[unranked] <= worst_ranked)]
    if wrong.size:
        at = int(wrong[0])
        raise UserError(
            f"{path}: line {at + 2}: k-mer {kmers[at]} has no npmi but rank {rank[at]}; expected one rank shared "
            f"by every k-mer without npmi, below the {worst_ranked} of the ranked ones"
        )
    rows = np.flatnonzero(ranked)
    by_rank = rows[np.lexsort((-npmi[rows], rank[rows]))]
    worse = np.flatnonzero(np.diff(npmi[by_rank]) > 0)
    if worse.size:
        better, after = int(by_rank[worse[0]]), int(by_rank[worse[0] + 1])
        raise UserError(
            f"{path}: line {after + 2}: k-mer {kmers[after]} (npmi {npmi[after]!r}, rank {rank[after]}) ranks "
            f"below {kmers[better]} (npmi {npmi[better]!r}, rank {rank[better]}); the rank column contradicts "
            f"the npmi column"
        )
