"""Precomputed masks of a chunk store, one bit per k-mer token, memory-mapped.

Layout of a mask store directory:
- `meta.json`: strategy, k, seed, epochs, split, the strategy's parameters, n_chunks, n_tokens.
- `token_offsets.npy`: int64, length n_chunks+1; chunk i owns tokens token_offsets[i]:token_offsets[i+1]
  (L-k+1 tokens for a chunk of L nucleotides, no special tokens).
- `epoch-{e:03d}.npy`: uint8, the masks of epoch e over all tokens, packed little-endian (np.packbits
  bitorder="little"): token j is bit j % 8 of byte j // 8.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from genemask.atomic import atomic_dir
from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore, load_array
from genemask.masking.strategies import Masker
from genemask.masking.tokenizer import chunk_token_ids

META = "meta.json"
TOKEN_OFFSETS = "token_offsets.npy"
FORMAT_VERSION = 1


def epoch_file(epoch: int) -> str:
    return f"epoch-{epoch:03d}.npy"


@dataclass(frozen=True)
class MaskStore:
    directory: Path
    meta: dict
    token_offsets: np.ndarray
    bits: tuple[np.ndarray, ...]  # one packed array per epoch, memory-mapped

    @classmethod
    def open(cls, directory: str | Path) -> MaskStore:
        directory = Path(directory)
        meta_path = directory / META
        if not meta_path.exists():
            raise UserError(f"{meta_path}: missing; is {directory} a mask store written by `genemask masks`?")
        remedy = f"rerun `genemask masks` to rewrite {directory}"
        try:
            meta = json.loads(meta_path.read_text())
        except (ValueError, OSError) as error:
            raise UserError(f"{meta_path}: unreadable ({error}); {remedy}") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise UserError(f"{meta_path}: format_version {version}, expected {FORMAT_VERSION}")
        try:
            epochs, n_tokens = int(meta["epochs"]), int(meta["n_tokens"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{meta_path}: expected integer 'epochs' and 'n_tokens'; {remedy}") from None
        arrays = []
        for name in (TOKEN_OFFSETS, *(epoch_file(e) for e in range(epochs))):
            if not (directory / name).exists():
                raise UserError(f"{directory / name}: missing; {remedy}")
            arrays.append(load_array(directory / name, remedy))
        token_offsets, *bits = arrays
        if token_offsets.ndim != 1 or not len(token_offsets) or int(token_offsets[-1]) != n_tokens:
            raise UserError(f"{directory / TOKEN_OFFSETS}: does not end at n_tokens {n_tokens}; {remedy}")
        for epoch, packed in enumerate(bits):
            if packed.shape != ((n_tokens + 7) // 8,):
                raise UserError(
                    f"{directory / epoch_file(epoch)}: {packed.size} bytes, expected {(n_tokens + 7) // 8} "
                    f"for {n_tokens} tokens; {remedy}"
                )
        return cls(directory, meta, token_offsets, tuple(bits))

    @property
    def epochs(self) -> int:
        return int(self.meta["epochs"])

    @property
    def strategy(self) -> str:
        return str(self.meta["strategy"])

    @property
    def k(self) -> int:
        return int(self.meta["k"])

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    def __len__(self) -> int:
        return len(self.token_offsets) - 1

    def mask(self, epoch: int, chunk_index: int) -> np.ndarray:
        """The mask of one chunk's k-mer tokens in one epoch."""
        if not 0 <= epoch < self.epochs:
            raise IndexError(f"{self.directory}: epoch {epoch} not precomputed (epochs 0..{self.epochs - 1})")
        return self.masks(epoch, chunk_index, chunk_index + 1)

    def masks(self, epoch: int, first: int, stop: int) -> np.ndarray:
        """The flat masks of chunks first..stop-1 (their tokens are token_offsets[first]:token_offsets[stop])."""
        begin, end = int(self.token_offsets[first]), int(self.token_offsets[stop])
        packed = self.bits[epoch][begin // 8 : (end + 7) // 8]
        return np.unpackbits(packed, bitorder="little").view(np.bool_)[begin % 8 : begin % 8 + end - begin]


def _in_order(pool: ThreadPoolExecutor, function, items, ahead: int):
    """Yield (item, function(item)) in order, computing at most `ahead` items ahead on the pool's threads (the
    kernels release the GIL), so memory stays bounded."""
    pending = deque()
    for item in items:
        pending.append((item, pool.submit(function, item)))
        if len(pending) >= ahead:
            first, future = pending.popleft()
            yield first, future.result()
    while pending:
        first, future = pending.popleft()
        yield first, future.result()


def write_mask_store(
    chunks: ChunkStore,
    masker: Masker,
    out: str | Path,
    *,
    epochs: int = 1,
    threads: int = 1,
    batch_chunks: int = 512,
    extra_meta: dict | None = None,
) -> Path:
    """Precompute `masker`'s masks of every chunk for epochs 0..epochs-1, written atomically to `out`."""
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    k = masker.k
    lengths = np.asarray(chunks.offsets[1:] - chunks.offsets[:-1], dtype=np.int64)
    token_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.maximum(lengths - k + 1, 0), out=token_offsets[1:])
    n_tokens = int(token_offsets[-1])
    starts = list(range(0, len(lengths), batch_chunks))

    def mask_batch(epoch: int, first: int) -> np.ndarray:
        stop = min(first + batch_chunks, len(lengths))
        seq = chunks.seq[chunks.offsets[first] : chunks.offsets[stop]]
        ids, offsets = chunk_token_ids(seq, chunks.offsets[first : stop + 1] - chunks.offsets[first], k)
        return masker(ids, offsets, np.arange(first, stop), epoch)

    with (
        atomic_dir(out) as tmp,
        ThreadPoolExecutor(threads) as pool,
        tqdm(
            total=epochs * len(lengths), unit="chunk", desc=f"masks {masker.strategy}", disable=None
        ) as progress,
    ):
        np.save(tmp / TOKEN_OFFSETS, token_offsets)
        for epoch in range(epochs):
            packed = np.lib.format.open_memmap(
                tmp / epoch_file(epoch), mode="w+", dtype=np.uint8, shape=((n_tokens + 7) // 8,)
            )
            carry = np.zeros(0, dtype=np.bool_)  # bits not yet filling a whole byte
            written = 0
            for first, mask in _in_order(
                pool, lambda f, e=epoch: mask_batch(e, f), starts, ahead=2 * threads
            ):
                bits = np.concatenate([carry, mask])
                whole = len(bits) // 8 * 8
                packed[written : written + whole // 8] = np.packbits(bits[:whole], bitorder="little")
                written += whole // 8
                carry = bits[whole:]
                progress.update(min(first + batch_chunks, len(lengths)) - first)
            if len(carry):
                packed[written] = np.packbits(carry, bitorder="little")[0]
            packed.flush()
            del packed
        meta = {
            "format_version": FORMAT_VERSION,
            **masker.params,
            "epochs": epochs,
            "split": chunks.split,
            "chunks": str(chunks.directory),
            "n_chunks": len(lengths),
            "n_tokens": n_tokens,
            **(extra_meta or {}),
        }
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    return Path(out)
