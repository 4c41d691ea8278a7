"""Streaming FASTA reader: plain, gzip or bgzip; one contig in memory at a time.

Sequences come back upper-cased as `uint8` ASCII arrays. Every malformed input raises `UserError` with a
one-line message naming the file and the line or record.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from genemask.errors import UserError

_BLOCK = 1 << 24
# IUPAC DNA letters (upper case after folding); anything else in a sequence line is an error. RNA's U is
# refused with a hint: counted as a gap it would silently cut every chunk and n-gram.
_IUPAC = b"ACGTNRYSWKMBDHV"
_UPPER = bytes.maketrans(bytes(range(97, 123)), bytes(range(65, 91)))
_VALID = np.zeros(256, dtype=bool)
_VALID[np.frombuffer(_IUPAC + b"-", dtype=np.uint8)] = True
# 2-bit codes: A=0 C=1 G=2 T=3, anything else = 4.
NON_ACGT = 4
_CODE = np.full(256, NON_ACGT, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _CODE[_c] = _i
_HEADER = re.compile(rb"(?:^|\n)>")
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, as some Windows editors write

_NCBI_GRCH38 = {f"NC_{n:06d}": f"chr{n}" for n in range(1, 23)}
_NCBI_GRCH38.update({"NC_000023": "chrX", "NC_000024": "chrY", "NC_012920": "chrM"})
_PLAIN = {str(n): f"chr{n}" for n in range(1, 23)} | {"X": "chrX", "Y": "chrY", "MT": "chrM", "M": "chrM"}


def canonical_name(name: str) -> str:
    """Map RefSeq GRCh38 accessions (NC_000001.11) and Ensembl names (1, MT) to UCSC names (chr1, chrM)."""
    accession = name.split(".", 1)[0]
    if accession in _NCBI_GRCH38:
        return _NCBI_GRCH38[accession]
    return _PLAIN.get(name, name)


def encode(seq: np.ndarray) -> np.ndarray:
    """ASCII sequence -> 2-bit codes (A=0, C=1, G=2, T=3, non-ACGT=4), vectorised."""
    return _CODE[seq]


@dataclass(frozen=True)
class Contig:
    name: str  # canonical name (see canonical_name)
    original_name: str  # as written in the FASTA header
    seq: np.ndarray  # uint8 ASCII, upper case


def open_fasta(path: Path) -> BinaryIO:
    """Open a plain, gzip or bgzip file for binary reading, past a UTF-8 byte-order mark if there is one;
    a missing or unreadable path is a one-line UserError."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a FASTA file")
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        # gzip.open handles bgzip too (concatenated gzip members)
        handle: BinaryIO = gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")
        try:
            if handle.peek(len(_BOM))[: len(_BOM)] == _BOM:  # type: ignore[attr-defined]
                handle.read(len(_BOM))
        except (EOFError, zlib.error, OSError):
            handle.close()
            raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise UserError(f"{path}: truncated or corrupt gzip stream ({error})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the FASTA ({error.strerror or error})") from None
    return handle


def _read_blocks(handle: BinaryIO, path: Path) -> Iterator[bytes]:
    try:
        while block := handle.read(_BLOCK):
            yield block
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise UserError(f"{path}: truncated or corrupt gzip stream ({error})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read the FASTA ({error.strerror or error})") from None


def _finish_record(path: Path, name: str, line: int, parts: list[bytes]) -> np.ndarray:
    raw = b"".join(parts)  # parts are already upper-cased without line ends
    if not raw:
        raise UserError(f"{path}: line {line}: record '{name}' has no sequence")
    seq = np.frombuffer(raw, dtype=np.uint8)
    bad = np.flatnonzero(~_VALID[seq])
    if bad.size:
        char = chr(seq[bad[0]])
        if char == "U":
            raise UserError(
                f"{path}: record '{name}' (header on line {line}), base {bad[0] + 1}: 'U' is RNA, expected "
                f"DNA; convert U to T first, e.g. sed '/^>/!y/Uu/Tt/'"
            )
        raise UserError(
            f"{path}: record '{name}' (header on line {line}), base {bad[0] + 1}: "
            f"unexpected character {char!r}, expected IUPAC nucleotide letters"
        )
    return seq


def read_fasta(path: str | Path, chromosomes: Iterable[str] | None = None) -> Iterator[Contig]:
    """Yield the contigs of `path` in file order, upper-cased, with canonical names.

    `chromosomes` selects contigs by canonical or original name; every name asked for must be present.
    """
    path = Path(path)
    wanted = None if chromosomes is None else set(chromosomes)
    found: set[str] = set()
    seen: dict[str, int] = {}
    canonical_seen: dict[str, tuple[str, int]] = {}  # selected records by canonical name
    state = {"name": None, "line": 0, "lines_before": 0}
    parts: list[bytes] = []

    def complete_lines() -> Iterator[bytes]:
        """Blocks cut at the last newline, so each one starts at the start of a line."""
        pending = b""
        with open_fasta(path) as handle:
            for block in _read_blocks(handle, path):
                buffer = pending + block
                cut = buffer.rfind(b"\n") + 1
                buffer, pending = buffer[:cut], buffer[cut:]
                if buffer:
                    yield buffer
        if pending:
            yield pending + b"\n"

    def selected() -> bool:
        name = state["name"]
        return wanted is None or canonical_name(name) in wanted or name in wanted

    def finish() -> Contig:
        name = state["name"]
        seq = _finish_record(path, name, state["line"], parts)
        parts.clear()
        found.update((canonical_name(name), name))
        return Contig(canonical_name(name), name, seq)

    def add(text: bytes) -> None:
        # Fold case and drop line ends block by block, so a contig costs ~2 bytes per base at its peak.
        parts.append(text.translate(_UPPER, b"\r\n\t ") if selected() else b"")

    saw_data = False
    for buffer in complete_lines():
        saw_data = saw_data or bool(buffer.strip())
        pos = 0
        for match in _HEADER.finditer(buffer):
            start = match.end() - 1  # index of '>'
            if state["name"] is None:
                if buffer[pos:start].strip():
                    raise UserError(f"{path}: line 1: expected a '>' header line, found sequence before it")
            else:
                add(buffer[pos:start])
                if selected():
                    yield finish()  # yielded directly: this frame keeps no reference to the contig
                else:
                    parts.clear()
            end = buffer.index(b"\n", start)
            line = state["lines_before"] + buffer.count(b"\n", 0, start) + 1
            fields = buffer[start + 1 : end].decode("utf-8", "replace").split()
            if not fields:
                raise UserError(f"{path}: line {line}: empty record name in header")
            name = fields[0]
            if name in seen:
                raise UserError(
                    f"{path}: line {line}: duplicate record name '{name}' (first on line {seen[name]})"
                )
            seen[name] = line
            state.update(name=name, line=line)
            if selected():
                canonical = canonical_name(name)
                if canonical in canonical_seen:
                    first, first_line = canonical_seen[canonical]
                    raise UserError(
                        f"{path}: line {line}: records '{first}' (line {first_line}) and '{name}' both name "
                        f"{canonical}; expected one record per chromosome (rename or drop one)"
                    )
                canonical_seen[canonical] = (name, line)
            pos = end + 1
        rest = buffer[pos:]
        if state["name"] is None and rest.strip():
            raise UserError(f"{path}: line 1: expected a '>' header line, found sequence before it")
        add(rest)
        state["lines_before"] += buffer.count(b"\n")
    if not saw_data:
        raise UserError(f"{path}: empty file, expected FASTA records starting with '>'")
    if selected():
        yield finish()
    if wanted is not None:
        missing = sorted(wanted - found)
        if missing:
            raise UserError(f"{path}: chromosome(s) {', '.join(missing)} not found in the FASTA")
