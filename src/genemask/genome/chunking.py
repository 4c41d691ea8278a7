"""Cut a genome into variable-length pretraining chunks (docs/method.md section 2), streaming contig by contig.

Per contig: start at a random offset in [0, min(1000, len)), then walk without overlap; with probability 0.5 the
next piece is 511 nt, otherwise uniform in 6..510 nt. By default pieces are split at runs of non-ACGT letters
(the published code deleted them, gluing sequence across assembly gaps; `non_acgt="delete"` reproduces it).
Fragments shorter than the minimum length are skipped. Duplicates are removed genome-wide (first occurrence
kept) and the train/valid split is decided by a hash of the chunk's sequence, so it never depends on order.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np
from tqdm import tqdm

from genemask.atomic import atomic_dir
from genemask.errors import UserError
from genemask.genome.chunkstore import CHUNK_STORE_FORMAT
from genemask.genome.fasta import NON_ACGT, encode, read_fasta

MIN_LENGTH = 6
MAX_LENGTH = 511
MAX_START_OFFSET = 1000
HISTOGRAM_EDGES = tuple(range(0, 513, 32))
NON_ACGT_MODES = ("split", "delete")


@dataclass(frozen=True)
class ChunkingOptions:
    seed: int = 0
    non_acgt: str = "split"  # one of NON_ACGT_MODES
    valid_fraction: float = 0.1
    random_sampling_coverage: float = 0.0  # DNABERT's extra random-start pass; 0 disables it
    min_length: int = MIN_LENGTH
    max_length: int = MAX_LENGTH

    def __post_init__(self) -> None:
        if self.non_acgt not in NON_ACGT_MODES:
            raise UserError(f"non_acgt must be 'split' or 'delete', got '{self.non_acgt}'")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise UserError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if not 0 <= self.random_sampling_coverage < math.inf:
            raise UserError(
                f"--random-sampling-coverage {self.random_sampling_coverage}: expected a finite number >= 0"
            )
        if not 1 <= self.min_length <= self.max_length:
            raise UserError(f"need 1 <= min_length <= max_length, got {self.min_length}, {self.max_length}")


def contig_rng(seed: int, contig_name: str, stream: int = 0) -> np.random.Generator:
    """A generator per (seed, contig name), so selecting other contigs never changes this contig's chunks."""
    return np.random.default_rng([seed, zlib.crc32(contig_name.encode()), stream])


def draw_piece_lengths(rng: np.random.Generator, count: int, options: ChunkingOptions) -> np.ndarray:
    """Published length law: max_length with probability 0.5, else uniform in min_length..max_length-1."""
    full = rng.random(count) < 0.5
    if options.min_length == options.max_length:
        return np.full(count, options.max_length, np.int64)
    short = rng.integers(options.min_length, options.max_length, size=count)
    return np.where(full, options.max_length, short).astype(np.int64)


def acgt_runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (half-open) of every maximal run of ACGT codes."""
    is_acgt = np.concatenate(([False], codes < NON_ACGT, [False]))
    changes = np.flatnonzero(is_acgt[1:] != is_acgt[:-1])
    return changes[0::2].astype(np.int64), changes[1::2].astype(np.int64)


def cut_contig(
    codes: np.ndarray, rng: np.random.Generator, options: ChunkingOptions
) -> tuple[np.ndarray, np.ndarray, int]:
    """Non-overlapping walk over one contig. Returns chunk starts, ends, and the walk's start offset.

    Walk pieces are cut at every boundary of an ACGT run; the ACGT parts of at least min_length are chunks.
    """
    length = len(codes)
    offset = int(rng.integers(0, min(MAX_START_OFFSET, length))) if length else 0
    mean_length = 0.5 * options.max_length + 0.25 * (options.min_length + options.max_length - 1)
    count = int((length - offset) / mean_length * 1.1) + 16
    lengths = draw_piece_lengths(rng, count, options)
    while offset + lengths.sum() < length:  # rare: draw more pieces, same stream
        lengths = np.concatenate((lengths, draw_piece_lengths(rng, count, options)))
    piece_bounds = offset + np.concatenate(([0], np.cumsum(lengths)))
    piece_bounds = piece_bounds[piece_bounds < length]
    run_starts, run_ends = acgt_runs(codes)
    bounds = np.unique(np.concatenate((piece_bounds, run_starts, run_ends, [length])))
    bounds = bounds[bounds >= offset]
    starts, ends = bounds[:-1], bounds[1:]
    inside = codes[starts] < NON_ACGT  # each interval is entirely ACGT or entirely not
    keep = inside & (ends - starts >= options.min_length)
    return starts[keep], ends[keep], offset


def sample_contig(
    codes: np.ndarray, rng: np.random.Generator, options: ChunkingOptions, n_acgt: int
) -> tuple[np.ndarray, np.ndarray]:
    """DNABERT's random-sampling pass: random starts at about `coverage` x the ACGT length, clipped to runs."""
    run_starts, run_ends = acgt_runs(codes)
    if not len(run_starts):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    mean_length = 0.5 * options.max_length + 0.25 * (options.min_length + options.max_length - 1)
    count = int(round(options.random_sampling_coverage * n_acgt / mean_length))
    run_lengths = run_ends - run_starts
    # A uniform ACGT position: pick a rank among ACGT bases, then map it to its run.
    rank = rng.integers(0, n_acgt, size=count)
    run = np.searchsorted(np.cumsum(run_lengths), rank, side="right")
    starts = run_starts[run] + (rank - (np.cumsum(run_lengths) - run_lengths)[run])
    ends = np.minimum(starts + draw_piece_lengths(rng, count, options), run_ends[run])
    keep = ends - starts >= options.min_length
    return starts[keep], ends[keep]


@numba.njit(cache=True, nogil=True)
def _hash_chunks(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Two independent 64-bit hashes per chunk: FNV-1a for identity, a splitmix-finalised polynomial for the split.
    n = len(starts)
    identity = np.empty(n, np.uint64)
    split = np.empty(n, np.uint64)
    for i in range(n):
        h = np.uint64(14695981039346656037)
        g = np.uint64(ends[i] - starts[i])
        for p in range(starts[i], ends[i]):
            h = (h ^ np.uint64(codes[p] + 1)) * np.uint64(1099511628211)
            g = g * np.uint64(0x9E3779B97F4A7C15) + np.uint64(codes[p] + 1)
        g ^= g >> np.uint64(30)
        g *= np.uint64(0xBF58476D1CE4E5B9)
        g ^= g >> np.uint64(27)
        g *= np.uint64(0x94D049BB133111EB)
        g ^= g >> np.uint64(31)
        identity[i] = h ^ (np.uint64(ends[i] - starts[i]) << np.uint64(48))
        split[i] = g
    return identity, split


@numba.njit(cache=True, nogil=True)
def gather(codes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenate codes[starts[i]:ends[i]] for all i, with no index arrays (memory stays 1 byte per base)."""
    total = 0
    for i in range(len(starts)):
        total += ends[i] - starts[i]
    out = np.empty(total, np.uint8)
    position = 0
    for i in range(len(starts)):
        n = ends[i] - starts[i]
        out[position : position + n] = codes[starts[i] : ends[i]]
        position += n
    return out


@dataclass
class _SplitWriter:
    """Appends one split's chunks to raw files; `finish` turns them into .npy arrays."""

    directory: Path
    name: str
    seq_handle: BinaryIO = field(init=False)
    total: int = 0
    lengths: list[np.ndarray] = field(default_factory=list)
    contigs: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seq_handle = (self.directory / f"{self.name}.seq.raw").open("wb")

    def append(
        self,
        codes: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        contig_id: int,
        genome_starts: np.ndarray,
    ) -> None:
        """Add codes[starts[i]:ends[i]]; `genome_starts` are the same starts in contig coordinates."""
        self.seq_handle.write(gather(codes, starts, ends).tobytes())
        self.total += int((ends - starts).sum())
        self.lengths.append(ends - starts)
        self.contigs.append(np.full(len(starts), contig_id, np.int32))
        self.starts.append(genome_starts.astype(np.int64))

    def finish(self) -> int:
        self.seq_handle.close()
        raw = self.directory / f"{self.name}.seq.raw"
        seq = np.lib.format.open_memmap(
            self.directory / f"{self.name}.seq.npy", mode="w+", dtype=np.uint8, shape=(self.total,)
        )
        with raw.open("rb") as handle:
            position = 0
            while block := handle.read(1 << 26):
                seq[position : position + len(block)] = np.frombuffer(block, np.uint8)
                position += len(block)
        seq.flush()
        del seq
        raw.unlink()
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        np.save(self.directory / f"{self.name}.offsets.npy", np.concatenate(([0], np.cumsum(lengths))))
        np.save(self.directory / f"{self.name}.contig.npy", _concat(self.contigs, np.int32))
        np.save(self.directory / f"{self.name}.start.npy", _concat(self.starts, np.int64))
        return len(lengths)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def chunk_genome(
    fasta: str | Path,
    out: str | Path,
    options: ChunkingOptions = ChunkingOptions(),
    chromosomes: Iterable[str] | None = None,
) -> dict:
    """Write the chunk store for `fasta` into directory `out`; return its summary (also in summary.json)."""
    fasta = Path(fasta)
    counts = dict.fromkeys(
        ("bases_total", "bases_acgt", "bases_kept", "bases_skipped", "bases_duplicate", "chunks_duplicate"), 0
    )
    counts |= {"chunks_sampled": 0, "bases_sampled": 0, "chunks_sampled_duplicate": 0}
    histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, np.int64)
    seen = np.zeros(0, np.uint64)
    contig_rows = []
    with atomic_dir(out) as tmp:
        writers = {name: _SplitWriter(tmp, name) for name in ("train", "valid")}
        with tqdm(desc=f"chunking {fasta.name}", unit="bp", unit_scale=True, disable=None) as progress:
            for contig_id, contig in enumerate(read_fasta(fasta, chromosomes)):
                name, original_name = contig.name, contig.original_name
                codes = encode(contig.seq)
                del contig  # only the codes are needed from here
                contig_length = len(codes)
                is_acgt = codes < NON_ACGT
                n_acgt = int(is_acgt.sum())
                position_map = None
                if options.non_acgt == "delete":
                    position_map = np.flatnonzero(is_acgt)
                    codes = codes[is_acgt]
                del is_acgt
                starts, ends, _ = cut_contig(codes, contig_rng(options.seed, name), options)
                n_cut = len(starts)
                if options.random_sampling_coverage > 0:
                    rng = contig_rng(options.seed, name, stream=1)
                    sampled_starts, sampled_ends = sample_contig(codes, rng, options, n_acgt)
                    starts = np.concatenate((starts, sampled_starts))
                    ends = np.concatenate((ends, sampled_ends))
                identity, split_hash = _hash_chunks(codes, starts, ends)
                _, first = np.unique(identity, return_index=True)
                unique = np.zeros(len(starts), bool)
                unique[first] = True
                unique &= ~np.isin(identity, seen, assume_unique=False)
                seen = np.union1d(seen, identity)
                lengths = ends - starts
                cut = np.arange(len(starts)) < n_cut
                counts["bases_acgt"] += n_acgt
                counts["bases_kept"] += int(lengths[cut & unique].sum())
                counts["bases_duplicate"] += int(lengths[cut & ~unique].sum())
                counts["chunks_duplicate"] += int((cut & ~unique).sum())
                counts["chunks_sampled"] += int((~cut & unique).sum())
                counts["bases_sampled"] += int(lengths[~cut & unique].sum())
                counts["chunks_sampled_duplicate"] += int((~cut & ~unique).sum())
                histogram += np.histogram(lengths[unique], bins=HISTOGRAM_EDGES)[0]
                is_valid = (split_hash % np.uint64(1_000_000)).astype(
                    np.float64
                ) < options.valid_fraction * 1e6
                for split, selected in (("train", unique & ~is_valid), ("valid", unique & is_valid)):
                    chunk_starts = starts[selected]
                    genome_starts = chunk_starts if position_map is None else position_map[chunk_starts]
                    writers[split].append(codes, chunk_starts, ends[selected], contig_id, genome_starts)
                contig_rows.append((name, original_name, contig_length, n_acgt))
                progress.update(contig_length)
        if not contig_rows:
            raise UserError(f"{fasta}: no contigs selected")
        if counts["bases_acgt"] == 0:
            raise UserError(
                f"{fasta}: no A, C, G or T in the selected contigs (all N or gaps), expected a genome"
            )
        if counts["bases_kept"] + counts["bases_sampled"] == 0:
            raise UserError(
                f"{fasta}: no ACGT run of at least {options.min_length} nt, so no chunk; expected a genome"
            )
        counts["bases_total"] = sum(row[2] for row in contig_rows)
        counts["bases_skipped"] = counts["bases_acgt"] - counts["bases_kept"] - counts["bases_duplicate"]
        summary = {
            "format_version": CHUNK_STORE_FORMAT,
            "fasta": str(fasta),
            "options": options.__dict__,
            "contigs": len(contig_rows),
            **counts,
            "chunks_train": writers["train"].finish(),
            "chunks_valid": writers["valid"].finish(),
            "length_histogram": {"edges": list(HISTOGRAM_EDGES), "counts": histogram.tolist()},
        }
        summary["fraction_kept"] = summary["bases_kept"] / max(summary["bases_acgt"], 1)
        with (tmp / "contigs.tsv").open("w") as handle:
            handle.write("name\toriginal_name\tlength\tbases_acgt\n")
            for row in contig_rows:
                handle.write("\t".join(map(str, row)) + "\n")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
