"""The chunk store: pretraining sequences as flat memory-mappable arrays (codes plus offsets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.errors import UserError

SPLITS = ("train", "valid")


@dataclass(frozen=True)
class ChunkStore:
    """One split of a chunk store. `seq` holds 2-bit codes (A0 C1 G2 T3); chunk i is seq[offsets[i]:offsets[i+1]]."""

    directory: Path
    split: str
    seq: np.ndarray
    offsets: np.ndarray
    contig: np.ndarray
    start: np.ndarray

    @classmethod
    def open(cls, directory: str | Path, split: str = "train") -> ChunkStore:
        directory = Path(directory)
        if split not in SPLITS:
            raise UserError(f"{directory}: unknown split '{split}', expected one of {', '.join(SPLITS)}")
        arrays = {}
        for name in ("seq", "offsets", "contig", "start"):
            path = directory / f"{split}.{name}.npy"
            if not path.exists():
                raise UserError(f"{path}: missing; is {directory} a chunk store written by `genemask chunk`?")
            arrays[name] = np.load(path, mmap_mode="r")
        return cls(directory, split, **arrays)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.seq[self.offsets[index] : self.offsets[index + 1]])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def summary(self) -> dict:
        return json.loads((self.directory / "summary.json").read_text())
