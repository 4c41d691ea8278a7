"""Exact counts of every nucleotide n-gram, n = 1..max_n, streamed from a FASTA over parallel shards.

An n-gram is stored by its 2-bit code (A=0 C=1 G=2 T=3, first letter most significant), so the counts of
length n form one array of 4**n entries. No n-gram crosses a non-ACGT letter or a contig boundary; soft-masked
(lower-case) letters count as upper case.

How it is fast and exact:

- The FASTA is read in blocks of raw bytes (plain or gzip), cut at line ends. The compiled loop
  (`genemask.ngrams._ngramcount`) reads the sequence bytes directly, newlines included, so no decoded copy of a
  contig is ever made. Peak memory is three blocks (8 MiB each) plus the count arrays, whatever the
  genome's length. (genemask.genome.fasta.read_fasta, which decodes whole contigs, alone takes 3x KMC's time for
  the benchmark's 93 Mbp.)
- Each block's selected sequence bytes are cut into pieces, one group per thread, and queued: the worker
  threads count one block while this thread reads (or decompresses) the next. A piece counts the n-grams
  whose last base lies in it, rebuilding the state before it from the max_n - 1 bases before it, so pieces
  need no overlap and sum exactly. Each thread counts into its own uint32 arrays; they are summed into
  uint64 totals before any could overflow.
- Only max_n-grams are counted per base. Shorter ones are derived exactly: the (n-1)-grams followed by a base
  are the n-gram counts summed over the last letter, and the rest are the suffixes of each run of ACGT,
  which the loop records at every run end.
"""

from __future__ import annotations

import collections
import functools
import gzip
import itertools
import math
import sys
import threading
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genemask.errors import UserError
from genemask.genome import fasta

try:
    from genemask.ngrams import _ngramcount
except ImportError as error:  # pragma: no cover - only when the package was installed without building it
    raise ImportError(
        "genemask.ngrams._ngramcount (the compiled n-gram counter) is not built: run `make setup` "
        "(pip install -e . builds it; it needs a C compiler)"
    ) from error

MAX_N = 12
BLOCK_BYTES = 1 << 23
_BUFFERS = 3  # blocks in memory: one being read, up to two being counted
_PIECE_FIELDS = 6  # seg_lo, lo, hi, ends_contig, init_code, init_run
_MIN_PIECE_BYTES = 1 << 16
_LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)
_TABLE_LETTERS = 6


@dataclass(frozen=True)
class NgramCounts:
    """Counts of every n-gram, n = 1..max_n: `of(n)[code]` is the count of the n-gram with that 2-bit code."""

    max_n: int
    counts: tuple[np.ndarray, ...]  # counts[n - 1]: uint64, length 4**n
    contigs: dict[str, int] = field(default_factory=dict)  # contig counted -> its ACGT bases
    other_letters: int = 0  # non-ACGT IUPAC letters seen in the counted contigs (each ends a run)

    def of(self, n: int) -> np.ndarray:
        if not 1 <= n <= self.max_n:
            raise ValueError(f"n must be in 1..{self.max_n}, got {n}")
        return self.counts[n - 1]

    def total(self, n: int) -> int:
        """Occurrences of n-grams of length n (the denominator of p(w))."""
        return int(self.of(n).sum())


@functools.cache
def _letter_table(n: int) -> np.ndarray:
    """Row `code` holds the n letters of that code: (4**n, n) uint8."""
    shifts = 2 * np.arange(n - 1, -1, -1)
    return _LETTERS[(np.arange(4**n)[:, None] >> shifts) & 3]


def ngram_letters(codes: np.ndarray, n: int) -> np.ndarray:
    """ASCII letters of n-grams: a (len(codes), n) uint8 array, by table look-up of at most 6 letters at once."""
    codes = np.asarray(codes, dtype=np.int64)
    if n <= _TABLE_LETTERS:
        return _letter_table(n)[codes]
    low = _letter_table(_TABLE_LETTERS)[codes & (4**_TABLE_LETTERS - 1)]
    return np.concatenate([ngram_letters(codes >> 2 * _TABLE_LETTERS, n - _TABLE_LETTERS), low], axis=1)


def ngram_strings(codes: np.ndarray, n: int) -> list[str]:
    """The n-grams of the given codes as strings (for small tables such as the 4**6 k-mers)."""
    return ngram_letters(codes, n).view(f"S{n}").ravel().astype(str).tolist()


class _Counting:
    """One submitted batch of segments, counted on the worker threads."""

    def __init__(
        self, futures: list[Future], groups: list[tuple[int, int]], segment_of: np.ndarray, segments: int
    ):
        self._futures = futures
        self._groups = groups
        self._segment_of = segment_of
        self._segments = segments

    def result(self) -> tuple[np.ndarray, int]:
        """ACGT and other-letter counts per segment, and the offset of the first invalid byte or -1."""
        letters = np.zeros((len(self._segment_of), 2), dtype=np.int64)
        bad = []
        for (lo, hi), future in zip(self._groups, self._futures, strict=True):
            letters[lo:hi], offset = future.result()
            bad.append(offset)
        per_segment = np.zeros((self._segments, 2), dtype=np.int64)
        np.add.at(per_segment, self._segment_of, letters)
        return per_segment, min((offset for offset in bad if offset >= 0), default=-1)


class _Counter:
    """Worker threads, each counting into its own uint32 arrays of max_n-grams and run-end suffixes, which
    are summed into uint64 totals before any could overflow. Batches are queued without waiting, so the
    caller can read the next block while the workers count, and no thread waits for another at block ends."""

    def __init__(self, max_n: int, threads: int) -> None:
        if not 1 <= max_n <= MAX_N:
            raise UserError(f"--max-n: expected an integer in 1..{MAX_N}, got {max_n}")
        if threads < 1:
            raise UserError(f"--threads: expected a positive integer, got {threads}")
        self.max_n = max_n
        self.threads = threads
        self.counts = np.zeros(4**max_n, dtype=np.uint64)
        self.tails = np.zeros((4**max_n - 4) // 3, dtype=np.uint64)
        self._counts32 = np.zeros((threads, self.counts.size), dtype=np.uint32)
        self._tails32 = np.zeros((threads, self.tails.size), dtype=np.uint32)
        self._queued_bytes = 0  # bytes queued for the uint32 arrays since they were last flushed
        self._in_flight: list[Future] = []
        self._slot = threading.local()
        self._slots = itertools.count()
        self._pool = ThreadPoolExecutor(threads, initializer=self._claim_slot)

    def _claim_slot(self) -> None:
        self._slot.index = next(self._slots)

    def close(self) -> None:
        self._pool.shutdown()

    def submit(self, buf: memoryview, segments: np.ndarray) -> _Counting:
        """Queue `segments` (int64 rows like pieces: seg_lo, lo=seg_lo, hi, ends_contig, init_code, init_run)
        of `buf`, which must stay unchanged until the result is taken."""
        if self._queued_bytes + len(buf) >= 2**32:
            self._flush()
        self._queued_bytes += len(buf)
        self._in_flight = [future for future in self._in_flight if not future.done()]
        pieces, segment_of = self._cut(segments)
        groups = self._groups(pieces)
        futures = [
            self._pool.submit(self._count, buf, np.ascontiguousarray(pieces[lo:hi])) for lo, hi in groups
        ]
        self._in_flight += futures
        return _Counting(futures, groups, segment_of, len(segments))

    def _count(self, buf: memoryview, pieces: np.ndarray) -> tuple[np.ndarray, int]:
        slot = self._slot.index
        letters = np.zeros((len(pieces), 2), dtype=np.int64)
        bad = _ngramcount.count_pieces(
            buf, pieces, self.max_n, self._counts32[slot], self._tails32[slot], letters
        )
        return letters, bad

    def _cut(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split segments into pieces of about len/threads bytes, so that each thread gets an equal share."""
        lengths = segments[:, 2] - segments[:, 0]
        target = max(_MIN_PIECE_BYTES, math.ceil(int(lengths.sum()) / self.threads))
        parts = np.maximum(1, -(-lengths // target))
        segment_of = np.repeat(np.arange(len(segments)), parts)
        index = np.arange(len(segment_of)) - np.repeat(np.cumsum(parts) - parts, parts)
        pieces = segments[segment_of].copy()
        piece_length = -(-lengths[segment_of] // parts[segment_of])
        pieces[:, 1] = pieces[:, 0] + index * piece_length
        pieces[:, 2] = np.minimum(pieces[:, 1] + piece_length, segments[segment_of, 2])
        pieces[:, 3] = np.where(index == parts[segment_of] - 1, segments[segment_of, 3], 0)
        return pieces, segment_of

    def _groups(self, pieces: np.ndarray) -> list[tuple[int, int]]:
        """Contiguous runs of pieces with about equal bytes, one per thread."""
        ends = np.cumsum(pieces[:, 2] - pieces[:, 1])
        total = int(ends[-1]) if len(ends) else 0
        bounds = np.searchsorted(
            ends, [total * w / self.threads for w in range(1, self.threads)], side="left"
        )
        edges = [0, *(int(b) + 1 for b in bounds), len(pieces)]
        edges = [min(e, len(pieces)) for e in edges]
        return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True) if hi > lo]

    def _flush(self) -> None:
        wait(self._in_flight)
        self._in_flight = []
        self.counts += self._counts32.sum(axis=0, dtype=np.uint64)
        self.tails += self._tails32.sum(axis=0, dtype=np.uint64)
        self._counts32[:] = 0
        self._tails32[:] = 0
        self._queued_bytes = 0

    def result(self) -> tuple[np.ndarray, ...]:
        """Counts of every n, derived from the max_n-gram counts and the run-end suffixes."""
        self._flush()
        counts = [self.counts]
        for n in range(self.max_n - 1, 0, -1):
            base = (4**n - 4) // 3
            counts.append(counts[-1].reshape(-1, 4).sum(axis=1) + self.tails[base : base + 4**n])
        return tuple(reversed(counts))


def _blocks(path: Path, block_bytes: int, buffers: int) -> Iterator[tuple[bytearray, int, bool]]:
    """(buffer, cut, last): buffer[:cut] is the next block of the (decompressed) file, ending at a line end
    or at EOF. Blocks rotate through `buffers` buffers, so a block stays valid until `buffers` - 1 more have
    been requested; the caller must be done with it by then."""
    pool = [bytearray(block_bytes) for _ in range(buffers)]
    filled = 0
    with fasta.open_fasta(path) as handle:
        eof = False
        for index in itertools.count():
            buffer = pool[index % buffers]
            while True:
                with memoryview(buffer) as view:
                    while filled < len(buffer):
                        try:
                            got = handle.readinto(view[filled:])
                        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                            raise UserError(f"{path}: truncated or corrupt gzip stream ({error})") from None
                        if not got:
                            eof = True
                            break
                        filled += got
                cut = filled if eof else buffer.rfind(b"\n", 0, filled) + 1
                if cut or eof:
                    break
                buffer.extend(bytes(len(buffer)))  # a line longer than the buffer: grow it
            yield buffer, cut, eof
            if eof:
                return
            following = pool[(index + 1) % buffers]
            if len(following) < filled - cut:
                following.extend(bytes(filled - cut - len(following)))
            following[: filled - cut] = buffer[cut:filled]
            filled -= cut


def _header_starts(buffer: bytearray, end: int) -> list[int]:
    """Offsets of the '>' of every header line in buffer[:end] (which starts at a line start)."""
    # '>' is rare, so a single-byte search (memchr) beats searching for "\n>"; a '>' inside a sequence line
    # is left to the counting loop, which rejects it as an invalid letter.
    starts = []
    position = buffer.find(b">", 0, end)
    while position >= 0:
        if position == 0 or buffer[position - 1] == 10:
            starts.append(position)
        position = buffer.find(b">", position + 1, end)
    return starts


def _reader_error(path: Path, chromosomes: Iterable[str] | None) -> UserError:
    """The reference reader's one-line message for a malformed FASTA (it re-reads the file to the error)."""
    try:
        for _ in fasta.read_fasta(path, chromosomes):
            pass
    except UserError as error:
        return error
    return UserError(f"{path}: malformed FASTA")


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(description: str) -> object:
    """tqdm over bytes read, quiet when stderr is not a terminal (as disable=None); tqdm is imported only
    when shown, because its import is 10% of this stage's time on the benchmark input."""
    if not sys.stderr.isatty():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(unit="B", unit_scale=True, desc=description, disable=None)


@dataclass
class _Contig:
    name: str  # canonical
    selected: bool
    letters: int = 0  # letters (ACGT or other) seen so far
    code: int = 0  # run state at the end of the bytes seen so far
    run: int = 0


def count_fasta(
    path: str | Path,
    max_n: int = 10,
    chromosomes: Iterable[str] | None = None,
    threads: int = 1,
    block_bytes: int = BLOCK_BYTES,
) -> NgramCounts:
    """Count every n-gram, n = 1..max_n, over the contigs of a plain or gzip FASTA (`chromosomes` selects by
    canonical or original name, as `genemask.genome.fasta.read_fasta` does; every name asked for must be present).

    `threads` workers count while this thread reads (and decompresses) the next blocks. Malformed input
    raises the same `UserError` as `genemask.genome.fasta.read_fasta`, for the records counted.
    """
    path = Path(path)
    wanted = None if chromosomes is None else set(chromosomes)
    counter = _Counter(max_n, threads)
    contigs: dict[str, int] = {}
    found: set[str] = set()
    seen: set[str] = set()
    other_letters = 0
    open_contig: _Contig | None = None  # the record that runs on into the next block
    # Blocks being counted: (view, counting, [(contig, ends_contig)] per counted segment).
    in_flight: collections.deque[tuple[memoryview, _Counting | None, list[tuple[_Contig, bool]]]] = (
        collections.deque()
    )
    bar = _progress_bar(f"counting {path.name}")

    def finish_oldest() -> None:
        nonlocal other_letters
        view, counting, counted = in_flight.popleft()
        if counting is not None:
            letters, bad = counting.result()
            if bad >= 0:
                raise _reader_error(path, chromosomes)
            for (contig, ends_contig), (acgt, other) in zip(counted, letters.tolist(), strict=True):
                contig.letters += acgt + other
                contigs[contig.name] = contigs.get(contig.name, 0) + acgt
                other_letters += other
                if ends_contig and contig.letters == 0:
                    raise _reader_error(path, chromosomes)  # a record without sequence
        bar.update(len(view))
        view.release()

    try:
        for buffer, cut, eof in _blocks(path, block_bytes, _BUFFERS):
            starts = _header_starts(buffer, cut)
            first = starts[0] if starts else cut
            if open_contig is None and bytes(buffer[:first]).strip():
                raise _reader_error(path, chromosomes)  # sequence before the first header
            # (contig, lo, hi): each record's sequence bytes in this block
            records: list[tuple[_Contig, int, int]] = []
            if open_contig is not None:
                records.append((open_contig, 0, first))
            for i, start in enumerate(starts):
                line_end = buffer.find(b"\n", start, cut)
                line_end = cut if line_end < 0 else line_end
                fields = bytes(buffer[start + 1 : line_end]).split()
                original = fields[0].decode("utf-8", "replace") if fields else ""
                if not original or original in seen:
                    raise _reader_error(path, chromosomes)  # empty or duplicate record name
                seen.add(original)
                canonical = fasta.canonical_name(original)
                selected = wanted is None or canonical in wanted or original in wanted
                if selected:
                    found.update((canonical, original))
                hi = starts[i + 1] if i + 1 < len(starts) else cut
                records.append((_Contig(canonical, selected), min(line_end + 1, hi), hi))
            last = None if eof or not records else records[-1][0]
            counted = [(contig, lo, hi) for contig, lo, hi in records if contig.selected]
            view = memoryview(buffer)[:cut]
            counting = None
            if counted:
                segments = np.zeros((len(counted), _PIECE_FIELDS), dtype=np.int64)
                segments[:, 0] = segments[:, 1] = [lo for _, lo, _ in counted]
                segments[:, 2] = [hi for _, _, hi in counted]
                segments[:, 3] = [contig is not last for contig, _, _ in counted]
                segments[:, 4] = [contig.code for contig, _, _ in counted]
                segments[:, 5] = [contig.run for contig, _, _ in counted]
                counting = counter.submit(view, segments)
                if last is not None and last.selected:
                    lo, hi = counted[-1][1:]
                    last.code, last.run = _ngramcount.run_state(view, lo, hi, max_n, last.code, last.run)
            in_flight.append((view, counting, [(contig, contig is not last) for contig, _, _ in counted]))
            open_contig = last
            while len(in_flight) >= _BUFFERS or (eof and in_flight):
                finish_oldest()
    finally:
        bar.close()
        counter.close()
    if not seen:
        raise _reader_error(path, chromosomes)  # empty file, or no header at all
    if wanted is not None and (missing := sorted(wanted - found)):
        raise UserError(f"{path}: chromosome(s) {', '.join(missing)} not found in the FASTA")
    return NgramCounts(max_n, counter.result(), contigs, other_letters)
