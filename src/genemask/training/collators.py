"""The masked-LM collators of a pretraining run: precomputed masks (checked against the train split) or masks drawn
on the fly; for a time-variant strategy one collator per component (`ComponentBatches`), so that the loader can run
ahead of the schedule's choice. Nothing here depends on which strategy a run uses beyond its registry entry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from genemask.errors import UserError
from genemask.masking import registry
from genemask.masking.collator import MLMCollator
from genemask.masking.settings import MaskingSettings
from genemask.masking.store import MaskStore
from genemask.masking.strategies import Masker
from genemask.training.data import WithMaskedPositions
from genemask.training.settings import PretrainConfig


class ComponentBatches:
    """A collator that collates each micro-batch once per component strategy (same sequences, other masks)."""

    def __init__(self, collators: Mapping[str, Callable[[list[dict]], dict]]) -> None:
        self.collators = dict(collators)

    def __call__(self, items: list[dict]) -> dict[str, dict]:
        return {name: collate(items) for name, collate in self.collators.items()}


def make_collator(
    k: int, strategy: str, seed: int, *, ranks: Path | None = None, ngrams: Path | None = None
) -> MLMCollator:
    """The masked-LM collator of masks drawn on the fly (train or validation batches)."""
    settings = MaskingSettings(strategy=strategy, k=k, seed=seed, ranks=ranks, ngrams=ngrams)
    return MLMCollator(Masker.from_settings(settings))


def _open_stores(config: PretrainConfig, n_train: int) -> dict[str, MaskStore]:
    """The run's mask stores by strategy, each checked against the train split."""
    c, stores = config, {}
    for path in c.masks:
        store = MaskStore.open(path)
        if store.k != c.k:
            raise UserError(f"{path}: masks of {store.k}-mer tokens, but --k is {c.k}")
        if store.meta.get("split", "train") != "train" or len(store) != n_train:
            raise UserError(
                f"{path}: masks for {len(store)} chunks, the train split of {c.chunks} has "
                f"{n_train}; were they made from this chunk store's train split?"
            )
        stores[store.strategy] = store
    return stores


def train_collate(config: PretrainConfig, n_train: int) -> Callable[[list[dict]], dict]:
    """Precomputed masks when given (checked against the train split), else masks drawn on the fly; for a
    time-variant strategy one collator per component (ComponentBatches), the choice being made per step."""
    c = config
    components = registry.get(c.strategy).components
    needed = components or (c.strategy,)
    if c.masks is None:
        collators = {
            name: WithMaskedPositions(make_collator(c.k, name, c.mask_seed, ranks=c.ranks, ngrams=c.ngrams))
            for name in needed
        }
    else:
        stores = _open_stores(c, n_train)
        if sorted(stores) != sorted(needed):
            raise UserError(
                f"--masks: stores of {', '.join(sorted(stores))}, but --strategy {c.strategy} needs "
                f"{', '.join(needed)}"
            )
        collators = {name: WithMaskedPositions(MLMCollator(stores[name])) for name in needed}
    return ComponentBatches(collators) if components else collators[c.strategy]
