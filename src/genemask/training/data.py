"""Pretraining batches: a deterministic order, a function of the global batch alone, that a resumed run
reproduces without replay.

Batch order. Per epoch, a permutation from (seed, epoch) is cut into global batches of `global_batch` chunks
(the chunks left over sit the epoch out); optimiser step s uses global batch j of epoch e, where
(e, j) = divmod(s, steps_per_epoch). Which chunks make a step depends on the seed and the global batch only,
never on the number of processes or the micro-batch, so 1 GPU x 100 accumulation and 8 GPUs x 5 train on the
same sequences step by step, and (epoch, step within epoch) is all a resumed run needs.

Micro-batches. A global batch is sorted by length and cut into `world * accum` micro-batches as equal as possible
(sizes differ by at most one; training/settings.py batch_geometry); micro-batch i goes to process i % world as its
accumulation step i // world. Neighbours in length share a micro-batch, so padding stays small (about 1% at the
published lengths and 100 micro-batches), and every process gets short and long ones alike.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore
from genemask.masking.tokenizer import codes_to_token_ids
from genemask.training.models import MAX_POSITIONS, masked_positions

N_SPECIAL_PER_SEQUENCE = 2  # [CLS] and [SEP]
_EPOCH_STREAM = 0x5EED_0001  # keeps the batch-order stream apart from other uses of the same seed
_EVAL_STREAM = 0x5EED_0002


def token_lengths(nucleotide_lengths: np.ndarray, k: int) -> np.ndarray:
    """Sequence lengths in tokens as the model sees them: L-k+1 k-mers plus [CLS] and [SEP]."""
    return np.maximum(np.asarray(nucleotide_lengths, dtype=np.int64) - k + 1, 0) + N_SPECIAL_PER_SEQUENCE


def check_fits(lengths: np.ndarray, where: str) -> None:
    """Every sequence must fit the 512 positions of the model."""
    too_long = np.flatnonzero(lengths > MAX_POSITIONS)
    if too_long.size:
        raise UserError(
            f"{where}: chunk {too_long[0]} has {lengths[too_long[0]]} tokens with [CLS]/[SEP], "
            f"expected at most {MAX_POSITIONS} (chunks of at most 511 nt for k = 6)"
        )


@dataclass(frozen=True)
class GlobalBatches:
    """The global batches of each epoch: rows of `global_batch` chunk indices, each sorted by length,
    deterministic per (seed, epoch)."""

    lengths: np.ndarray = field(repr=False)  # per chunk, any measure monotone in its token count
    global_batch: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return len(self.lengths) // self.global_batch

    def epoch(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch, _EPOCH_STREAM])
        order = rng.permutation(len(self.lengths))[: self.steps_per_epoch * self.global_batch]
        batches = order.reshape(-1, self.global_batch)
        return np.take_along_axis(batches, np.argsort(self.lengths[batches], axis=1, kind="stable"), axis=1)


def padded_length(longest: np.ndarray | int, multiple: int) -> np.ndarray:
    return -(-np.asarray(longest) // multiple) * multiple


def padding_waste(batches: list[np.ndarray], lengths: np.ndarray, pad_to_multiple_of: int = 8) -> float:
    """Fraction of the positions in the padded batches that are padding (lengths in tokens, specials included)."""
    real = sum(int(lengths[batch].sum()) for batch in batches)
    positions = sum(
        int(padded_length(lengths[batch].max(), pad_to_multiple_of)) * len(batch) for batch in batches
    )
    return 1.0 - real / positions


def split_global_batch(batch: np.ndarray, world: int, accum: int, rank: int) -> list[np.ndarray]:
    """Process `rank`'s micro-batches of one length-sorted global batch, in accumulation order."""
    return np.array_split(batch, world * accum)[rank::world]


@dataclass(frozen=True)
class StepLayout:
    """How optimiser steps map onto micro-batches: `accum` per process and step, `world` processes."""

    batches: GlobalBatches
    accum: int
    world: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return self.batches.steps_per_epoch

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, step within epoch) of optimiser step `step` (0-based: the step about to run)."""
        return divmod(step, self.steps_per_epoch)

    def rank_batches(self, start_step: int, rank: int) -> Iterator[list[tuple[int, int]]]:
        """This process's micro-batches from `start_step` on, forever, as lists of (epoch, chunk index)."""
        cached_epoch, plan = -1, np.empty((0, 0), dtype=np.int64)
        step = start_step
        while True:
            epoch, within = self.position(step)
            if epoch != cached_epoch:
                cached_epoch, plan = epoch, self.batches.epoch(epoch)
            for micro in split_global_batch(plan[within], self.world, self.accum, rank):
                yield [(epoch, int(index)) for index in micro]
            step += 1


class ChunkTokens(Dataset):
    """Chunk i of a split as k-mer token ids, keyed by (epoch, chunk index) so that masks can depend on both.

    The chunk store is opened lazily in each process, so loader workers memory-map it instead of copying it.
    """

    def __init__(self, directory: str | Path, split: str, k: int = 6) -> None:
        self.directory, self.split, self.k = Path(directory), split, k
        self._store: ChunkStore | None = None

    @property
    def store(self) -> ChunkStore:
        if self._store is None:
            self._store = ChunkStore.open(self.directory, self.split)
        return self._store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        return {
            "input_ids": codes_to_token_ids(self.store[index], self.k),
            "chunk_index": index,
            "epoch": epoch,
        }

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_store": None}


class WithMaskedPositions:
    """Wraps an MLM collator: adds the flat masked positions and their targets, computed in the loader worker so
    that the training step never has to synchronise the GPU to find them."""

    def __init__(self, collator: Callable[[list[dict]], dict]) -> None:
        self.collator = collator

    def __call__(self, items: list[dict]) -> dict:
        batch = dict(self.collator(items))
        batch["masked_index"], batch["masked_labels"] = masked_positions(batch["labels"])
        return batch


def _ignore_stop_signals(_worker_id: int) -> None:
    """Loader workers leave SIGTERM/SIGUSR1/SIGINT to the main process, which checkpoints and then shuts them
    down (Ctrl-C reaches the whole foreground process group)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(
    dataset: Dataset,
    batches: Iterator[list[tuple[int, int]]] | list[list[tuple[int, int]]],
    collate: Callable[[list[dict]], dict],
    *,
    workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader over explicit micro-batches, collated by `collate` (a WithMaskedPositions, or one per component
    of a time-variant strategy). Its own generator keeps it from drawing on the global torch RNG, which would make
    dropout depend on when a loader was created (and break exact resume)."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(0),
        worker_init_fn=_ignore_stop_signals if workers else None,
        prefetch_factor=4 if workers else None,
    )


def batch_to_device(batch: dict, device: torch.device) -> dict:
    """A collated batch on `device`. On CUDA an attention mask without padding becomes None, decided here on the
    CPU: given a mask, HF's attention checks on the GPU whether it masks anything, a host-device sync per forward."""
    moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    if device.type == "cuda" and bool(batch["attention_mask"].all()):
        moved["attention_mask"] = None
    return moved


@contextlib.contextmanager
def iterate(loader: DataLoader) -> Iterator[Iterator[dict]]:
    """Iterate a loader and shut its workers down however the block ends. Otherwise an exception whose traceback
    keeps the iterator alive would leave the interpreter's exit waiting on workers that ignore SIGTERM."""
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)  # present when there are worker processes
        if shutdown is not None:
            shutdown()


def eval_batches(
    lengths: np.ndarray, n_chunks: int, batch_size: int, seed: int
) -> list[list[tuple[int, int]]]:
    """A fixed validation subset (seeded), sorted by length and cut into batches; epoch 0 fixes its masks."""
    rng = np.random.default_rng([seed, _EVAL_STREAM])
    chosen = rng.permutation(len(lengths))[: min(n_chunks, len(lengths))]
    chosen = chosen[np.argsort(lengths[chosen], kind="stable")]
    return [[(0, int(i)) for i in chosen[s : s + batch_size]] for s in range(0, len(chosen), batch_size)]
