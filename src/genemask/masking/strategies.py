"""Masking strategies over batches of k-mer token sequences (method.md section 4).

A batch is flat: `ids` holds the k-mer token ids of every sequence (no [CLS]/[SEP]) concatenated, and
`offsets` (length n+1) delimits them; sequence s is ids[offsets[s]:offsets[s+1]]. Every strategy returns a flat
boolean mask of the same length.

Randomness is counter-based, so that a sequence's mask depends only on (seed, epoch, chunk index) and never on the
batch it is in: a per-sequence key is hashed from the three numbers with splitmix64, and the draw for token t of
stream S is splitmix64(key_S + (t + 1) * gamma). The kernels are numba-compiled loops (no Python loop per token)
that release the GIL, so batches can be masked on several threads.

Strategies:
- `random` (DNABERT): every token is a centre with probability p; a centre c masks tokens c-lo..c+hi (lo = (k-1)//2,
  hi = k-1-lo: c-2..c+3 for k = 6), clipped to the sequence.
- `genemask` (the paper): centres as above. For each centre the candidate tokens are c, c-lo..c-1, c+1..c+hi (in
  this order, which breaks ties as the published code does); MC* is the candidate whose k-mer has the best (lowest)
  NPMI rank. Centres are ordered by (MC* rank, position); the best ceil(m/2) form the high set and also mask
  MC*-(k-1)..MC*+(k-1), which hides every nucleotide of MC*. When m <= all_high_below (8, published behaviour)
  every centre is high.
- `genemask-as-released`: as `genemask`, but the rank of the token at position t is looked up by its position in
  the published input (t + 1, after [CLS]) used as a token id, as the published code did; positions that are
  special-token ids get rank 0, better than any k-mer (the published rank table was a defaultdict(int)). Ablation.
- `pmi-vocab`: n-gram occurrences (n = min_n..max_n nt) from an NPMI vocabulary become masking units, longest
  first, overlaps between equally long ones resolved at random; every nucleotide left over is a unit of its own.
  Units are drawn in random order until mask_fraction of the tokens are masked (a unit that would overshoot is
  skipped, as in whole-word masking); a unit's nucleotides s..e-1 are hidden by masking tokens s-k+1..e-1. A
  one-nucleotide unit costs exactly the k tokens that cover it, DNABERT's window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from genemask.errors import UserError
from genemask.masking.tokenizer import N_SPECIAL, check_k, kmer_vocab

STRATEGIES = ("random", "genemask", "genemask-as-released", "pmi-vocab")
DEFAULT_CENTRE_PROBABILITY = {"random": 0.025, "genemask": 0.0176, "genemask-as-released": 0.0176}
DEFAULT_ALL_HIGH_BELOW = 8
DEFAULT_MASK_FRACTION = 0.15
DEFAULT_NGRAM_VOCAB_SIZE = 100_000
DEFAULT_MIN_N, DEFAULT_MAX_N = 2, 10
# Rank given to special-token ids by the published lookup (missing key in a defaultdict(int)).
RELEASED_SPECIAL_RANK = 0

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)

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
def _stream_key(key, stream):
    return _mix(key ^ (np.uint64(stream) * _GAMMA))


@numba.njit(inline="always")
def _draw(stream_key, index):
    """The 64 random bits of item `index` (>= 0) of a stream."""
    return _mix(stream_key + np.uint64(index + 1) * _GAMMA)


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
        z = _mix_np(np.full(epoch.shape, np.uint64(seed % 2**64) + _GAMMA, dtype=np.uint64))
        z = _mix_np(z ^ (epoch + _GAMMA))
        return _mix_np(z ^ (chunk_index + _GAMMA)).reshape(-1)


def stream_bits(key: int, stream: int, n: int) -> np.ndarray:
    """The first n draws (uint64) of one sequence's stream; numpy twin of the kernels' draws, for tests."""
    with np.errstate(over="ignore"):
        stream_key = _mix_np(np.array([key], dtype=np.uint64) ^ (np.uint64(stream) * _GAMMA))
        return _mix_np(stream_key + np.arange(1, n + 1, dtype=np.uint64) * _GAMMA)


def probability_threshold(p: float) -> np.uint64:
    """A draw `bits` succeeds with probability p when (bits >> 11) < threshold."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return np.uint64(min(round(p * 2**53), 2**53))


def window(k: int) -> tuple[int, int]:
    """(lo, hi): a centre c masks tokens c-lo..c+hi, DNABERT's MASK_LIST (c-2..c+3 for k = 6)."""
    lo = (k - 1) // 2
    return lo, k - 1 - lo


# ----------------------------------------------------------------------------------------------------------
# Kernels


@numba.njit(nogil=True, cache=True)
def _draw_centres(offsets, keys, threshold, out):
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        centre_key = _stream_key(keys[s], STREAM_CENTRE)
        for t in range(n):
            out[start + t] = (_draw(centre_key, t) >> _S11) < threshold


@numba.njit(nogil=True, cache=True)
def _random_spans(offsets, centres, lo, hi, out):
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        for t in range(n):
            if centres[start + t]:
                for j in range(max(0, t - lo), min(n, t + hi + 1)):
                    out[start + j] = True


@numba.njit(nogil=True, cache=True)
def _random_fused(offsets, keys, threshold, lo, hi, out):
    """_draw_centres then _random_spans, per sequence (the hot path)."""
    n_max = 0
    for s in range(len(offsets) - 1):
        n_max = max(n_max, offsets[s + 1] - offsets[s])
    centre_pos = np.empty(n_max, dtype=np.int64)
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        centre_key = _stream_key(keys[s], STREAM_CENTRE)
        m = 0
        for t in range(n):  # a tight loop: the draws are most of the work
            if (_draw(centre_key, t) >> _S11) < threshold:
                centre_pos[m] = t
                m += 1
        for c in range(m):
            t = centre_pos[c]
            for j in range(max(0, t - lo), min(n, t + hi + 1)):
                out[start + j] = True


@numba.njit(nogil=True, cache=True)
def _genemask_spans(
    ids,
    offsets,
    keys,
    threshold,
    centres,
    rank_of_id,
    rank_of_position,
    by_position,
    lo,
    hi,
    all_high_below,
    out,
    mc_star,
    high,
):
    """GeneMask spans. Centres are drawn from `keys` when `centres` is empty, else taken from it (flat boolean).
    When mc_star/high are non-empty (flat, per token) they record each centre's MC* and the high set."""
    draw = len(centres) == 0
    record = len(mc_star) > 0
    reach = lo + hi  # k - 1: MC*-(k-1)..MC*+(k-1) hides all of MC*'s nucleotides
    n_max = 0
    for s in range(len(offsets) - 1):
        n_max = max(n_max, offsets[s + 1] - offsets[s])
    centre_pos = np.empty(n_max, dtype=np.int64)
    best_pos = np.empty(n_max, dtype=np.int64)
    order_key = np.empty(n_max, dtype=np.int64)  # (MC* rank, centre number), sorted in place
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        m = 0
        if draw:  # a tight loop: the draws are most of the work
            centre_key = _stream_key(keys[s], STREAM_CENTRE)
            for t in range(n):
                if (_draw(centre_key, t) >> _S11) < threshold:
                    centre_pos[m] = t
                    m += 1
        else:
            for t in range(n):
                if centres[start + t]:
                    centre_pos[m] = t
                    m += 1
        for c in range(m):
            t = centre_pos[c]
            first, last = max(0, t - lo), min(n - 1, t + hi)
            # Candidate key (rank, tie order): the centre first, then left to right, as the published code.
            best_key = np.int64(1) << 62
            for j in range(first, last + 1):
                r = rank_of_position[j] if by_position else rank_of_id[ids[start + j]]
                best_key = min(best_key, r * 16 + (j - t + lo + 1) * (j != t))
                out[start + j] = True
            best_rank = best_key >> 4
            tie = best_key & 15
            best = t if tie == 0 else t + tie - lo - 1
            best_pos[c] = best
            order_key[c] = best_rank * n_max + c
            if record:
                mc_star[start + t] = best
        if m <= all_high_below:
            n_high = m
        else:
            n_high = (m + 1) // 2
            for i in range(1, m):  # insertion sort: m is about 9 per 512 tokens
                key = order_key[i]
                j = i - 1
                while j >= 0 and order_key[j] > key:
                    order_key[j + 1] = order_key[j]
                    j -= 1
                order_key[j + 1] = key
        for i in range(n_high):
            c = order_key[i] % n_max if m > all_high_below else i
            if record:
                high[start + centre_pos[c]] = True
            b = best_pos[c]
            for j in range(max(0, b - reach), min(n, b + reach + 1)):
                out[start + j] = True


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


@numba.njit(nogil=True, cache=True)
def _pmi_vocab_spans(ids, offsets, keys, k, member, prefix, table_start, min_n, max_n, mask_fraction, out):
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
        overlap_key = _stream_key(keys[s], STREAM_OVERLAP)
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
                    priority = np.int64(_draw(overlap_key, i * 16 + length) & priority_mask)
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
        order_key = _stream_key(keys[s], STREAM_UNIT_ORDER)
        target = max(1, int(mask_fraction * n + 0.5))
        covered = 0
        for u in range(n_unit):
            pick = u + np.int64(_draw(order_key, u) % np.uint64(n_unit - u))
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


@numba.njit(nogil=True, cache=True)
def _replace(ids, offsets, keys, mask, mask_threshold, random_threshold, n_kmers, mask_id, out):
    """BERT's 80/10/10: masked tokens become [MASK], a random k-mer, or stay, decided per token."""
    for s in range(len(offsets) - 1):
        start, n = offsets[s], offsets[s + 1] - offsets[s]
        replace_key = _stream_key(keys[s], STREAM_REPLACE)
        token_key = _stream_key(keys[s], STREAM_RANDOM_TOKEN)
        for t in range(n):
            out[start + t] = ids[start + t]
            if mask[start + t]:
                u = _draw(replace_key, t) >> _S11
                if u < mask_threshold:
                    out[start + t] = mask_id
                elif u < random_threshold:
                    out[start + t] = N_SPECIAL + np.int64(_draw(token_key, t) % np.uint64(n_kmers))


# ----------------------------------------------------------------------------------------------------------
# Inputs: k-mer ranks and the n-gram vocabulary


def load_kmer_ranks(path: str | Path, k: int = 6) -> np.ndarray:
    """kmer_ranks.tsv (header `kmer count npmi rank`) -> rank per token id; non-k-mer tokens get the worst rank."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype={"kmer": str})
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the k-mer ranking: {error}") from None
    missing = {"kmer", "rank"} - set(table.columns)
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}; expected `kmer count npmi rank`"
        )
    return kmer_ranks_from_table(table["kmer"].to_numpy(), table["rank"].to_numpy(), k=k, source=str(path))


def kmer_ranks_from_table(
    kmers: Sequence[str], ranks: Sequence[int], k: int = 6, source: str = "ranks"
) -> np.ndarray:
    """Rank per token id (length vocab_size(k)) from parallel k-mer / rank lists covering all 4^k k-mers."""
    vocab = kmer_vocab(k)
    index = {kmer: i for i, kmer in enumerate(vocab[N_SPECIAL:], start=N_SPECIAL)}
    rank_of_id = np.full(len(vocab), -1, dtype=np.int64)
    for line, (kmer, rank) in enumerate(zip(kmers, ranks, strict=True), start=2):
        token = index.get(str(kmer).upper())
        if token is None:
            raise UserError(f"{source}: line {line}: '{kmer}' is not a {k}-mer over ACGT")
        if not (isinstance(rank, int | np.integer) and rank >= 1):
            raise UserError(f"{source}: line {line}: rank '{rank}' is not a positive integer")
        rank_of_id[token] = rank
    absent = np.flatnonzero(rank_of_id[N_SPECIAL:] < 0)
    if absent.size:
        raise UserError(
            f"{source}: {absent.size} of the {4**k} {k}-mers are missing, e.g. {vocab[absent[0] + N_SPECIAL]}"
        )
    rank_of_id[:N_SPECIAL] = rank_of_id[N_SPECIAL:].max()
    return rank_of_id


def released_position_ranks(rank_of_id: np.ndarray) -> np.ndarray:
    """The published lookup: token t sits at input position t+1 (after [CLS]); that position is used as a token id,
    and ids of special tokens get rank 0. Covers every position a vocabulary id can name."""
    positions = np.arange(1, len(rank_of_id))
    ranks = rank_of_id[positions].copy()
    ranks[positions < N_SPECIAL] = RELEASED_SPECIAL_RANK
    return ranks


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
        if not 1 <= min_n <= max_n <= 15:
            raise ValueError(f"need 1 <= min_n <= max_n <= 15, got {min_n}..{max_n}")
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
    table = table[(table["n"] >= min_n) & (table["n"] <= max_n) & table["npmi"].notna()]
    top = table.sort_values(["npmi", "ngram"], ascending=[False, True], kind="stable").head(vocab_size)
    return NgramVocabulary.from_ngrams(top["ngram"].astype(str).tolist(), min_n, max_n)


# ----------------------------------------------------------------------------------------------------------
# Strategies


@dataclass(frozen=True)
class Masker:
    """One configured strategy: call it on a flat batch to get its masks, deterministic per (seed, epoch, chunk)."""

    strategy: str
    k: int = 6
    seed: int = 0
    centre_probability: float | None = None
    all_high_below: int = DEFAULT_ALL_HIGH_BELOW
    mask_fraction: float = DEFAULT_MASK_FRACTION
    rank_of_id: np.ndarray | None = field(default=None, repr=False)
    ngrams: NgramVocabulary | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown masking strategy '{self.strategy}', expected one of {', '.join(STRATEGIES)}"
            )
        check_k(self.k)
        if self.centre_probability is None and self.strategy in DEFAULT_CENTRE_PROBABILITY:
            object.__setattr__(self, "centre_probability", DEFAULT_CENTRE_PROBABILITY[self.strategy])
        if self.strategy.startswith("genemask"):
            if self.rank_of_id is None:
                raise UserError(f"strategy '{self.strategy}' needs a k-mer ranking (kmer_ranks.tsv)")
            if len(self.rank_of_id) != N_SPECIAL + 4**self.k:
                raise UserError(
                    f"the k-mer ranking covers {len(self.rank_of_id)} token ids, expected {N_SPECIAL + 4**self.k}"
                )
            rank_of_id = np.ascontiguousarray(self.rank_of_id, dtype=np.int64)
            object.__setattr__(self, "rank_of_id", rank_of_id)
            object.__setattr__(self, "_position_ranks", released_position_ranks(rank_of_id))
        if self.strategy == "pmi-vocab" and self.ngrams is None:
            raise UserError("strategy 'pmi-vocab' needs an n-gram vocabulary (ngrams.parquet)")
        if not 0.0 < self.mask_fraction < 1.0:
            raise UserError(f"mask_fraction must be in (0, 1), got {self.mask_fraction}")

    @property
    def params(self) -> dict:
        """The settings that determine the masks (recorded with precomputed masks)."""
        params = {"strategy": self.strategy, "k": self.k, "seed": self.seed}
        if self.strategy == "pmi-vocab":
            params |= {
                "mask_fraction": self.mask_fraction,
                "min_n": self.ngrams.min_n,
                "max_n": self.ngrams.max_n,
                "ngram_vocab_size": self.ngrams.size,
            }
        else:
            params["centre_probability"] = self.centre_probability
        if self.strategy.startswith("genemask"):
            params["all_high_below"] = self.all_high_below
        return params

    def __call__(self, ids: np.ndarray, offsets: np.ndarray, chunk_index, epoch) -> np.ndarray:
        """Masks of a flat batch; chunk_index and epoch are per sequence (or scalars, broadcast)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        keys = np.broadcast_to(sequence_keys(self.seed, epoch, chunk_index), (len(offsets) - 1,)).copy()
        out = np.zeros(len(ids), dtype=np.bool_)
        lo, hi = window(self.k)
        if self.strategy == "random":
            _random_fused(offsets, keys, probability_threshold(self.centre_probability), lo, hi, out)
        elif self.strategy == "pmi-vocab":
            v = self.ngrams
            _pmi_vocab_spans(
                ids,
                offsets,
                keys,
                self.k,
                v.member,
                v.prefix,
                v.start,
                v.min_n,
                v.max_n,
                self.mask_fraction,
                out,
            )
        else:
            _run_genemask(
                ids,
                offsets,
                keys,
                probability_threshold(self.centre_probability),
                _NO_CENTRES,
                self.rank_of_id,
                self.k,
                self.all_high_below,
                self.strategy == "genemask-as-released",
                out,
                _NO_RECORD,
                _NO_CENTRES,
                self._position_ranks,
            )
        return out

    def centres(self, offsets: np.ndarray, chunk_index, epoch) -> np.ndarray:
        """The flat centre indicator of a batch (random and genemask strategies), as the masks draw them."""
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        keys = np.broadcast_to(sequence_keys(self.seed, epoch, chunk_index), (len(offsets) - 1,)).copy()
        centres = np.empty(int(offsets[-1] - offsets[0]), dtype=np.bool_)
        _draw_centres(offsets - offsets[0], keys, probability_threshold(self.centre_probability), centres)
        return centres


def random_spans(offsets: np.ndarray, centres: np.ndarray, k: int = 6) -> np.ndarray:
    """DNABERT spans around given centres (flat boolean), clipped to each sequence."""
    out = np.zeros(len(centres), dtype=np.bool_)
    lo, hi = window(k)
    _random_spans(np.asarray(offsets, dtype=np.int64), np.asarray(centres, dtype=np.bool_), lo, hi, out)
    return out


_NO_CENTRES = np.zeros(0, dtype=np.bool_)
_NO_RECORD = np.zeros(0, dtype=np.int64)


def _run_genemask(
    ids,
    offsets,
    keys,
    threshold,
    centres,
    rank_of_id,
    k,
    all_high_below,
    as_released,
    out,
    mc_star,
    high,
    position_ranks=None,
) -> None:
    rank_of_id = np.ascontiguousarray(rank_of_id, dtype=np.int64)
    if position_ranks is None:
        position_ranks = released_position_ranks(rank_of_id)
    if as_released and len(offsets) > 1 and np.diff(offsets).max() > len(position_ranks):
        raise ValueError(f"genemask-as-released supports sequences of at most {len(position_ranks)} tokens")
    lo, hi = window(k)
    _genemask_spans(
        ids,
        offsets,
        keys,
        threshold,
        centres,
        rank_of_id,
        position_ranks,
        as_released,
        lo,
        hi,
        all_high_below,
        out,
        mc_star,
        high,
    )


@dataclass(frozen=True)
class GenemaskSpans:
    mask: np.ndarray  # flat boolean
    mc_star: np.ndarray  # flat: at each centre, the index (within its sequence) of its MC*; -1 elsewhere
    high: np.ndarray  # flat boolean: centres in the high set


def genemask_spans(
    ids: np.ndarray,
    offsets: np.ndarray,
    centres: np.ndarray,
    rank_of_id: np.ndarray,
    *,
    k: int = 6,
    all_high_below: int = DEFAULT_ALL_HIGH_BELOW,
    as_released: bool = False,
) -> GenemaskSpans:
    """GeneMask spans around given centres (flat boolean), with each centre's MC* and the high set."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    centres = np.ascontiguousarray(centres, dtype=np.bool_)
    if len(centres) != len(ids):
        raise ValueError(f"{len(centres)} centre flags for {len(ids)} tokens")
    out = np.zeros(len(ids), dtype=np.bool_)
    mc_star = np.full(len(ids), -1, dtype=np.int64)
    high = np.zeros(len(ids), dtype=np.bool_)
    keys = np.zeros(len(offsets) - 1, dtype=np.uint64)  # unused: the centres are given
    _run_genemask(
        ids,
        offsets,
        keys,
        np.uint64(0),
        centres,
        rank_of_id,
        k,
        all_high_below,
        as_released,
        out,
        mc_star,
        high,
    )
    return GenemaskSpans(out, mc_star, high)


def replace_masked(
    ids: np.ndarray,
    offsets: np.ndarray,
    mask: np.ndarray,
    *,
    seed: int,
    chunk_index,
    epoch,
    k: int = 6,
    mask_token_prob: float = 0.8,
    random_token_prob: float = 0.1,
    mask_id: int = 4,
) -> np.ndarray:
    """The corrupted input: masked tokens become [MASK] (mask_token_prob), a random k-mer (random_token_prob) or
    stay; deterministic per (seed, epoch, chunk index), like the masks."""
    if mask_token_prob < 0 or random_token_prob < 0 or mask_token_prob + random_token_prob > 1:
        raise ValueError(f"bad replacement probabilities {mask_token_prob}, {random_token_prob}")
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    keys = np.broadcast_to(sequence_keys(seed, epoch, chunk_index), (len(offsets) - 1,)).copy()
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


def flatten(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A list of token arrays -> (flat ids, offsets)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = (
        np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        if sequences
        else np.zeros(0, np.int64)
    )
    return flat, offsets
