"""The chunk store: pretraining sequences as flat memory-mappable arrays (codes plus offsets)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.errors import UserError

SPLITS = ("train", "valid")
# The chunk store's layout, in summary.json's `format_version` (stores written before it carry none: version 1).
CHUNK_STORE_FORMAT = 1
_CODES_BLOCK = 1 << 26


# The summary.json keys that readers (the chunk report) use.
SUMMARY_KEYS = (
    "contigs", "bases_total", "bases_acgt", "bases_kept", "bases_skipped", "bases_duplicate", "chunks_train",
    "chunks_valid", "chunks_duplicate", "chunks_sampled", "fraction_kept", "length_histogram",
)  # fmt: skip


def check_summary(summary: object, path: Path) -> dict:
    """Refuse a chunk store summary.json that lacks what `genemask chunk` writes (cut short, or another file)."""
    if not isinstance(summary, dict):
        raise UserError(f"{path}: expected a JSON object, the summary.json of `genemask chunk`")
    missing = [key for key in SUMMARY_KEYS if key not in summary]
    histogram = summary.get("length_histogram")
    if not missing and not (isinstance(histogram, dict) and {"edges", "counts"} <= histogram.keys()):
        missing = ["length_histogram.edges/counts"]
    if missing:
        raise UserError(
            f"{path}: incomplete chunk store summary, lacks {', '.join(missing)}; rerun `genemask chunk`"
        )
    return summary


def check_codes(seq: np.ndarray, path: Path) -> None:
    """Refuse a sequence array holding anything but the 2-bit codes 0..3 (e.g. letters), block by block."""
    if seq.dtype != np.uint8 or seq.ndim != 1:
        raise UserError(f"{path}: dtype {seq.dtype}, {seq.ndim}-d; expected a 1-d uint8 array of codes 0..3")
    for begin in range(0, len(seq), _CODES_BLOCK):
        block = np.asarray(seq[begin : begin + _CODES_BLOCK])
        if block.size and int(block.max()) > 3:
            at = begin + int(np.argmax(block > 3))
            raise UserError(
                f"{path}: value {int(seq[at])} at position {at}; expected the codes 0..3 (A C G T) that "
                f"`genemask chunk` writes, not letters or other data"
            )


def check_format(directory: Path) -> None:
    """Refuse a chunk store of a newer layout than this genemask reads."""
    try:
        summary = json.loads((directory / "summary.json").read_text())
    except (OSError, ValueError):
        return  # the arrays are checked on their own; summary.json is only needed by reports
    version = summary.get("format_version", 1) if isinstance(summary, dict) else 1
    if version != CHUNK_STORE_FORMAT:
        raise UserError(
            f"{directory}: chunk store format {version!r}, this genemask reads format {CHUNK_STORE_FORMAT}; "
            f"rerun `genemask chunk`"
        )


def load_array(path: Path, remedy: str) -> np.ndarray:
    """A memory-mapped `.npy` array; a truncated or damaged file is a one-line UserError saying `remedy`."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{path}: truncated or damaged .npy file ({error}); {remedy}") from None


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
        check_format(directory)
        arrays = {}
        for name in ("seq", "offsets", "contig", "start"):
            path = directory / f"{split}.{name}.npy"
            if not path.exists():
                raise UserError(f"{path}: missing; is {directory} a chunk store written by `genemask chunk`?")
            arrays[name] = load_array(path, f"rerun `genemask chunk` to rewrite {directory}")
        offsets = arrays["offsets"]
        consistent = (
            offsets.ndim == 1
            and len(offsets) >= 1
            and len(arrays["contig"]) == len(arrays["start"]) == len(offsets) - 1
            and int(offsets[0]) == 0
            and int(offsets[-1]) == len(arrays["seq"])
        )
        if not consistent:
            raise UserError(
                f"{directory}: the {split} arrays disagree (offsets, seq, contig, start); "
                f"rerun `genemask chunk` to rewrite it"
            )
        check_codes(arrays["seq"], directory / f"{split}.seq.npy")
        return cls(directory, split, **arrays)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return np.asarray(self.seq[self.offsets[index] : self.offsets[index + 1]])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def require_tokens(self, k: int, option: str = "--chunks") -> None:
        """Refuse a split whose chunks are all shorter than one k-mer: training on it would learn nothing."""
        longest = int(self.lengths.max()) if len(self) else 0
        if longest < k:
            raise UserError(
                f"{option} {self.directory}: the {self.split} split's longest chunk is {longest} nt, shorter "
                f"than one {k}-mer token; expected chunks of at least {k} nt"
            )

    def summary(self) -> dict:
        return json.loads((self.directory / "summary.json").read_text())
