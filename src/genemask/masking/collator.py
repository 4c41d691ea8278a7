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

from genemask.masking.replacement import DEFAULT_MASK_TOKEN_PROB, DEFAULT_RANDOM_TOKEN_PROB, replace_masked
from genemask.masking.store import MaskStore
from genemask.masking.strategies import Masker, flatten
from genemask.masking.tokenizer import CLS_ID, MASK_ID, PAD_ID, SEP_ID

IGNORE_INDEX = -100


class MLMCollator:
    """Callable on a list of examples; see the module docstring.

    `masker` computes the masks on the fly, as a Hugging Face collator holds its tokenizer; a MaskStore (or its
    directory) reads them from precomputed masks instead, with the store's seed and k (an epoch past the
    precomputed ones reuses epoch % epochs). The replacement of masked tokens uses the masker's (or store's) seed.
    """

    def __init__(
        self,
        masker: Masker | MaskStore | str | Path,
        *,
        pad_to_multiple_of: int | None = 8,
        mask_token_prob: float = DEFAULT_MASK_TOKEN_PROB,
        random_token_prob: float = DEFAULT_RANDOM_TOKEN_PROB,
    ) -> None:
        if isinstance(masker, str | Path):
            masker = MaskStore.open(masker)
        self.masker = masker if isinstance(masker, Masker) else None
        self.mask_store = masker if isinstance(masker, MaskStore) else None
        if self.masker is None and self.mask_store is None:
            raise TypeError(f"MLMCollator needs a Masker or a MaskStore, got {type(masker).__name__}")
        self.k = masker.k
        self.seed = masker.seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.mask_token_prob = mask_token_prob
        self.random_token_prob = random_token_prob
        self._warned_epoch_wrap = False

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
