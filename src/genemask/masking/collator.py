"""The masked-LM collator, for the HF Trainer and plain PyTorch loops.

Each example is a dict with `input_ids` (k-mer token ids WITHOUT [CLS]/[SEP]), `chunk_index` and `epoch`. The
collator masks them (read from a precomputed MaskStore, or computed on the fly with the same determinism, so
both give the same masks), applies BERT's 80/10/10 replacement (deterministic per (seed, epoch, chunk index) too),
adds [CLS]/[SEP], pads with [PAD], and returns torch tensors `input_ids`, `attention_mask` and `labels`
(-100 everywhere except masked positions). Special and padding tokens are never masked.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from genemask.masking.store import MaskStore
from genemask.masking.strategies import (
    DEFAULT_ALL_HIGH_BELOW,
    DEFAULT_MASK_FRACTION,
    DEFAULT_MAX_N,
    DEFAULT_MIN_N,
    DEFAULT_NGRAM_VOCAB_SIZE,
    Masker,
    NgramVocabulary,
    flatten,
    load_kmer_ranks,
    load_ngram_vocabulary,
    replace_masked,
)
from genemask.masking.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID

IGNORE_INDEX = -100


class MLMCollator:
    """Callable on a list of examples; see the module docstring.

    `ranks`: a kmer_ranks.tsv path or a rank-per-token-id array (genemask strategies). `ngrams`: an
    ngrams.parquet path or an NgramVocabulary (pmi-vocab). With `mask_store` (a MaskStore or its directory) the
    masks are read from it and `strategy` is ignored; an epoch past the precomputed ones reuses epoch % epochs.
    """

    def __init__(
        self,
        k: int = 6,
        strategy: str = "random",
        ranks: str | Path | np.ndarray | None = None,
        seed: int = 0,
        mask_store: MaskStore | str | Path | None = None,
        pad_to_multiple_of: int | None = 8,
        mask_token_prob: float = 0.8,
        random_token_prob: float = 0.1,
        *,
        ngrams: str | Path | NgramVocabulary | None = None,
        centre_probability: float | None = None,
        all_high_below: int = DEFAULT_ALL_HIGH_BELOW,
        mask_fraction: float = DEFAULT_MASK_FRACTION,
        ngram_vocab_size: int = DEFAULT_NGRAM_VOCAB_SIZE,
        min_n: int = DEFAULT_MIN_N,
        max_n: int = DEFAULT_MAX_N,
    ) -> None:
        self.k = k
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.mask_token_prob = mask_token_prob
        self.random_token_prob = random_token_prob
        self._warned_epoch_wrap = False
        if mask_store is not None:
            self.mask_store = mask_store if isinstance(mask_store, MaskStore) else MaskStore.open(mask_store)
            if self.mask_store.k != k:
                raise ValueError(
                    f"{self.mask_store.directory}: masks for k={self.mask_store.k}, collator k={k}"
                )
            self.masker = None
            return
        self.mask_store = None
        if isinstance(ranks, str | Path):
            ranks = load_kmer_ranks(ranks, k)
        if isinstance(ngrams, str | Path):
            ngrams = load_ngram_vocabulary(ngrams, ngram_vocab_size, min_n, max_n)
        self.masker = Masker(
            strategy,
            k=k,
            seed=seed,
            centre_probability=centre_probability,
            all_high_below=all_high_below,
            mask_fraction=mask_fraction,
            rank_of_id=ranks,
            ngrams=ngrams,
        )

    @property
    def strategy(self) -> str:
        return self.mask_store.strategy if self.mask_store is not None else self.masker.strategy

    def masks(
        self, ids: np.ndarray, offsets: np.ndarray, chunk_index: np.ndarray, epoch: np.ndarray
    ) -> np.ndarray:
        """The flat masks of a flat batch, from the store or computed."""
        if self.mask_store is None:
            return self.masker(ids, offsets, chunk_index, epoch)
        store = self.mask_store
        if (epoch >= store.epochs).any() and not self._warned_epoch_wrap:
            warnings.warn(
                f"{store.directory}: epochs beyond the {store.epochs} precomputed reuse epoch % {store.epochs}",
                stacklevel=3,
            )
            self._warned_epoch_wrap = True
        parts = [store.mask(int(e) % store.epochs, int(c)) for e, c in zip(epoch, chunk_index, strict=True)]
        lengths = np.diff(offsets)
        for part, length, c in zip(parts, lengths, chunk_index, strict=True):
            if len(part) != length:
                raise ValueError(
                    f"{store.directory}: chunk {c} has {len(part)} masked tokens, the example {length}"
                )
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)

    def __call__(self, examples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        ids, offsets = flatten([np.asarray(e["input_ids"], dtype=np.int64) for e in examples])
        chunk_index = np.array([int(e["chunk_index"]) for e in examples], dtype=np.int64)
        epoch = np.array([int(e["epoch"]) for e in examples], dtype=np.int64)
        mask = self.masks(ids, offsets, chunk_index, epoch)
        corrupted = replace_masked(
            ids,
            offsets,
            mask,
            seed=self.seed,
            chunk_index=chunk_index,
            epoch=epoch,
            k=self.k,
            mask_token_prob=self.mask_token_prob,
            random_token_prob=self.random_token_prob,
            mask_id=MASK_ID,
        )
        lengths = np.diff(offsets)
        width = int(lengths.max(initial=0)) + 2
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(examples)
        input_ids = np.full((n, width), PAD_ID, dtype=np.int64)
        labels = np.full((n, width), IGNORE_INDEX, dtype=np.int64)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(ids)) - np.repeat(offsets[:-1], lengths) + 1  # after [CLS]
        input_ids[:, 0] = CLS_ID
        input_ids[np.arange(n), lengths + 1] = SEP_ID
        input_ids[rows, cols] = corrupted
        labels[rows[mask], cols[mask]] = ids[mask]
        attention_mask = (np.arange(width)[None, :] < (lengths + 2)[:, None]).astype(np.int64)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels),
        }
