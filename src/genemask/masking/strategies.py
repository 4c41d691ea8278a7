"""Masking strategies over batches of k-mer token sequences (docs/method.md section 4): `Masker`, one configured strategy.

A batch is flat: `ids` holds the k-mer token ids of every sequence (no [CLS]/[SEP]) concatenated, and
`offsets` (length n+1) delimits them; sequence s is ids[offsets[s]:offsets[s+1]]. Every strategy returns a flat
boolean mask of the same length, deterministic per (seed, epoch, chunk index) (`random_streams`). The kernels are
numba-compiled loops (no Python loop per token) that release the GIL, so batches can be masked on several threads.

Strategies (each kernel module describes its own): `random` (DNABERT, `random_kernel`), `genemask` (the paper) and
`genemask-as-released` (the published code's rank lookup, an ablation) (`genemask_kernel`), `pmi-vocab` (n-grams of
an NPMI vocabulary as masking units, `pmi_vocab_kernel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from genemask.errors import UserError
from genemask.masking.genemask_kernel import (
    NO_CENTRES,
    NO_RECORD,
    released_position_ranks,
    run_genemask_kernel,
)
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.pmi_vocab_kernel import pmi_vocab_spans_kernel
from genemask.masking.random_kernel import random_spans_kernel, window
from genemask.masking.random_streams import batch_keys, probability_threshold
from genemask.masking.settings import (
    DEFAULT_ALL_HIGH_BELOW,
    DEFAULT_CENTRE_PROBABILITY,
    DEFAULT_K,
    DEFAULT_MASK_FRACTION,
    DEFAULT_SEED,
    MAX_NGRAM_N,
    STRATEGIES,
    MaskingSettings,
)
from genemask.masking.tokenizer import N_SPECIAL, check_k
from genemask.masking.vocabulary import NgramVocabulary, load_ngram_vocabulary


@dataclass(frozen=True)
class Masker:
    """One configured strategy: call it on a flat batch to get its masks, deterministic per (seed, epoch, chunk).
    `Masker.from_settings` builds one from MaskingSettings, reading the files the strategy needs."""

    strategy: str
    k: int = DEFAULT_K
    seed: int = DEFAULT_SEED
    centre_probability: float | None = None
    all_high_below: int = DEFAULT_ALL_HIGH_BELOW
    mask_fraction: float = DEFAULT_MASK_FRACTION
    rank_of_id: np.ndarray | None = field(default=None, repr=False)
    ngrams: NgramVocabulary | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: MaskingSettings) -> Masker:
        """The Masker of `settings`; reads the k-mer ranking (genemask strategies) or the n-gram vocabulary
        (pmi-vocab) from the paths in settings.ranks / settings.ngrams. Bad settings raise UserError."""
        s = settings
        rank_of_id = ngrams = None
        if s.strategy.startswith("genemask") and s.ranks:
            rank_of_id = load_kmer_ranks(s.ranks, s.k)
        if s.strategy == "pmi-vocab" and s.ngrams:
            if s.ngram_vocab_size < 1:
                raise UserError(f"ngram_vocab_size must be positive, got {s.ngram_vocab_size}")
            if not 1 <= s.min_n <= s.max_n <= MAX_NGRAM_N:
                raise UserError(
                    f"min_n/max_n must satisfy 1 <= min_n <= max_n <= {MAX_NGRAM_N}, got {s.min_n}..{s.max_n}"
                )
            ngrams = load_ngram_vocabulary(s.ngrams, s.ngram_vocab_size, s.min_n, s.max_n)
        try:
            return cls(
                s.strategy,
                k=s.k,
                seed=s.seed,
                centre_probability=s.centre_probability,
                all_high_below=s.all_high_below,
                mask_fraction=s.mask_fraction,
                rank_of_id=rank_of_id,
                ngrams=ngrams,
            )
        except ValueError as error:
            raise UserError(str(error)) from None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown masking strategy '{self.strategy}', expected one of {', '.join(STRATEGIES)}"
            )
        check_k(self.k)
        if self.centre_probability is None and self.strategy in DEFAULT_CENTRE_PROBABILITY:
            object.__setattr__(self, "centre_probability", DEFAULT_CENTRE_PROBABILITY[self.strategy])
        if self.centre_probability is not None and not 0 < self.centre_probability < 1:
            raise UserError(f"centre_probability must be in (0, 1), got {self.centre_probability}")
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
        keys = batch_keys(self.seed, epoch, chunk_index, len(offsets) - 1)
        out = np.zeros(len(ids), dtype=np.bool_)
        lo, hi = window(self.k)
        if self.strategy == "random":
            random_spans_kernel(offsets, keys, probability_threshold(self.centre_probability), lo, hi, out)
        elif self.strategy == "pmi-vocab":
            v = self.ngrams
            pmi_vocab_spans_kernel(
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
            run_genemask_kernel(
                ids,
                offsets,
                keys,
                probability_threshold(self.centre_probability),
                NO_CENTRES,
                self.rank_of_id,
                self.k,
                self.all_high_below,
                self.strategy == "genemask-as-released",
                out,
                NO_RECORD,
                NO_CENTRES,
                self._position_ranks,
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
