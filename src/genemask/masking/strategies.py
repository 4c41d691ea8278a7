"""Masking strategies over batches of k-mer token sequences (docs/method.md section 4): `Masker`, one configured
strategy.

A batch is flat: `ids` holds the k-mer token ids of every sequence (no [CLS]/[SEP]) concatenated, and
`offsets` (length n+1) delimits them; sequence s is ids[offsets[s]:offsets[s+1]]. Every strategy returns a flat
boolean mask of the same length, deterministic per (seed, epoch, chunk index) (`random_streams`). The kernels are
numba-compiled loops (no Python loop per token) that release the GIL, so batches can be masked on several threads.

The strategies, their inputs, parameters and kernels are listed in `genemask.masking.registry`: `random` (DNABERT),
`genemask` (the paper), `genemask-as-released` (the published code's rank lookup, an ablation), `pmi-vocab` (n-grams
of an NPMI vocabulary as masking units), `global` (CM-GEMS), the ablations `global-as-released` and
`cm-gems-genemask-as-released` (CM-GEMS's released code), and the time-variant `cm-step`, `cm-gems` and
`cm-gems-as-released`, whose components are masked by Maskers of their own and chosen per optimiser step in
training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from genemask.errors import UserError
from genemask.masking import registry
from genemask.masking.genemask_kernel import released_position_ranks
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.random_streams import batch_keys
from genemask.masking.settings import DEFAULT_K, DEFAULT_SEED, MAX_NGRAM_N, MaskingSettings
from genemask.masking.tokenizer import MAX_K, MIN_K, N_SPECIAL, check_k
from genemask.masking.vocabulary import NgramVocabulary, load_ngram_vocabulary


@dataclass(frozen=True)
class Masker:
    """One configured time-invariant strategy: call it on a flat batch to get its masks, deterministic per (seed,
    epoch, chunk). Parameters left None take the strategy's defaults from its registry entry; `rank_of_id` and
    `ngrams` are the inputs it reads. `Masker.from_settings` builds one from MaskingSettings, reading the files."""

    strategy: str
    k: int = DEFAULT_K
    seed: int = DEFAULT_SEED
    centre_probability: float | None = None
    all_high_below: int | None = None
    mask_fraction: float | None = None
    top_up: bool | None = None
    rank_of_id: np.ndarray | None = field(default=None, repr=False)
    ngrams: NgramVocabulary | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: MaskingSettings) -> Masker:
        """The Masker of `settings`; reads the inputs the strategy needs (the k-mer ranking, the n-gram
        vocabulary) from the paths in settings.ranks / settings.ngrams. Bad settings raise UserError."""
        s = settings
        if not MIN_K <= s.k <= MAX_K:
            raise UserError(
                f"--k {s.k}: expected a k-mer length in {MIN_K}..{MAX_K} (DNABERT's vocabularies)"
            )
        entry = registry.get(s.strategy)
        entry.check({p.name: getattr(s, p.name, None) for p in entry.parameters})
        reads = entry.reads
        rank_of_id = ngrams = None
        if "ranks" in reads and s.ranks:
            rank_of_id = load_kmer_ranks(s.ranks, s.k)
        if "ngrams" in reads and s.ngrams:
            if not s.min_n <= s.max_n <= MAX_NGRAM_N:
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
                top_up=s.top_up,
                rank_of_id=rank_of_id,
                ngrams=ngrams,
            )
        except ValueError as error:
            raise UserError(str(error)) from None

    def __post_init__(self) -> None:
        entry = registry.get(self.strategy)
        if entry.time_variant:
            raise UserError(
                f"strategy '{self.strategy}' is time-variant: its components ({', '.join(entry.components)}) "
                "are masked separately and chosen per optimiser step in training"
            )
        check_k(self.k)
        for name, default in entry.defaults.items():
            if getattr(self, name, None) is None:
                object.__setattr__(self, name, default)
        entry.check({name: getattr(self, name) for name in entry.defaults})
        if "ranks" in entry.reads:
            if self.rank_of_id is None:
                raise UserError(f"strategy '{self.strategy}' needs a k-mer ranking (kmer_ranks.tsv)")
            if len(self.rank_of_id) != N_SPECIAL + 4**self.k:
                raise UserError(
                    f"the k-mer ranking covers {len(self.rank_of_id)} token ids, expected {N_SPECIAL + 4**self.k}"
                )
            rank_of_id = np.ascontiguousarray(self.rank_of_id, dtype=np.int64)
            object.__setattr__(self, "rank_of_id", rank_of_id)
            object.__setattr__(self, "position_ranks", released_position_ranks(rank_of_id))
            # CM-GEMS's released lookup gives special-token ids the worst rank, 4**k (4096 for 6-mers).
            object.__setattr__(
                self, "cm_gems_position_ranks", released_position_ranks(rank_of_id, special_rank=4**self.k)
            )
        if "ngrams" in entry.reads and self.ngrams is None:
            raise UserError(f"strategy '{self.strategy}' needs an n-gram vocabulary (ngrams.parquet)")

    @property
    def params(self) -> dict:
        """The settings that determine the masks (recorded with precomputed masks)."""
        recorded = registry.get(self.strategy).recorded_parameters(self)
        return {"strategy": self.strategy, "k": self.k, "seed": self.seed, **recorded}

    def __call__(self, ids: np.ndarray, offsets: np.ndarray, chunk_index, epoch) -> np.ndarray:
        """Masks of a flat batch; chunk_index and epoch are per sequence (or scalars, broadcast)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        keys = batch_keys(self.seed, epoch, chunk_index, len(offsets) - 1)
        out = np.zeros(len(ids), dtype=np.bool_)
        registry.get(self.strategy).kernel(self, ids, offsets, keys, out)
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
