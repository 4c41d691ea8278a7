"""Deterministic synthetic genome with planted JASPAR motif instances, for the demo and for tests.

The genome imitates the features of hg38 that later stages must cope with:

- background: a first-order Markov chain fitted to approximate human dinucleotide frequencies (GC ~41%,
  CpG observed/expected ~0.24), so composition and CpG depletion are realistic;
- interspersed repeats: mutated copies (both strands) of a few repeat-family consensus sequences (Alu-like
  with a poly-A tail, L1-, MIR- and LTR-like fragments), soft-masked (lower case);
- micro-satellites ((A)n, (CA)n, (AT)n, (GGAA)n on either strand), soft-masked;
- degraded repeat-like stretches: background sequence that is only soft-masked;
- runs of N: a leading telomere-like run on every contig and a few internal gaps;
- motif sites: instances sampled from JASPAR position frequency matrices, on both strands, in upper case, at
  non-overlapping positions outside every other feature.

Everything derives from the seed, and the gzip stream carries no time stamp or file name, so the same
arguments give byte-identical files.

The truth table (`X.motifs.tsv` beside `X.fa.gz`) has one row per planted site: `contig start end strand
motif_id motif_name sequence`, 0-based half-open, in FASTA contig order then by start. `sequence` is the
FASTA's forward-strand sequence at [start, end), upper-cased; for strand '-' its reverse complement is the
site as sampled from the matrix (the motif's own orientation).
"""

from __future__ import annotations

import gzip
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

from genemask.atomic import atomic_file
from genemask.errors import UserError

# CTCF, SP1, GATA4, ETS1, TP53, NFKB1: well-known human factors with distinct matrices of 8-18 nt, each the
# latest version in JASPAR2024 CORE.
DEFAULT_MOTIFS: tuple[str, ...] = ("MA0139.2", "MA0079.5", "MA0482.3", "MA0098.4", "MA0106.3", "MA0105.4")
DEFAULT_JASPAR_RELEASE = "JASPAR2024"
DEFAULT_LENGTH = 3_000_000
DEFAULT_CONTIGS = 4
DEFAULT_INSTANCES_PER_MB = 200.0
MIN_CONTIG_LENGTH = 10_000
LINE_WIDTH = 60

_N = 4  # code for N; A=0 C=1 G=2 T=3 as in genemask.genome.fasta
_LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)
_LOWER_BIT = np.uint8(0x20)
_CODE_OF = np.full(256, 4, dtype=np.uint8)  # ASCII (either case) -> 2-bit code, N and others -> 4
for _code, _letter in enumerate(b"ACGT"):
    _CODE_OF[_letter] = _CODE_OF[_letter | 0x20] = _code

# Approximate hg38 dinucleotide frequencies (%, rows = first base, columns = second, order ACGT). The C->G
# entry carries the CpG depletion; row sums give GC ~41%.
_DINUCLEOTIDE_PERCENT = np.array(
    [
        [9.8, 5.0, 7.0, 7.6],
        [7.3, 5.2, 0.85, 7.0],
        [5.9, 4.3, 5.2, 5.0],
        [6.5, 5.9, 7.3, 9.8],
    ]
)


@dataclass(frozen=True)
class RepeatFamily:
    name: str
    consensus_length: int
    poly_a_tail: int  # nt of poly-A appended to the consensus (Alu, L1)
    copies_per_mb: float
    min_copy_fraction: float  # shortest copy, as a fraction of the consensus (1.0: always full length)
    divergence: tuple[float, float]  # per-copy substitution rate range


REPEAT_FAMILIES: tuple[RepeatFamily, ...] = (
    RepeatFamily("AluLike", 282, 20, 120.0, 0.8, (0.04, 0.18)),
    RepeatFamily("L1Like", 2000, 25, 25.0, 0.1, (0.08, 0.25)),
    RepeatFamily("MIRLike", 260, 0, 40.0, 0.3, (0.20, 0.32)),
    RepeatFamily("LTRLike", 450, 0, 15.0, 0.5, (0.10, 0.25)),
)
# (repeat unit, relative frequency); either strand, so (TG)n, (T)n and (TTCC)n occur too.
MICROSATELLITES: tuple[tuple[str, float], ...] = (("A", 0.4), ("CA", 0.3), ("AT", 0.2), ("GGAA", 0.1))
MICROSATELLITES_PER_MB = 250.0
MICROSATELLITE_LENGTH = (20, 80)
MICROSATELLITE_MUTATION_RATE = 0.03
# Degraded repeats: background sequence that is only soft-masked; ~30% of the genome.
SOFT_MASKED_STRETCHES_PER_MB = 375.0
SOFT_MASKED_STRETCH_LENGTH = (100, 1500)
TELOMERE_N = 10_000  # leading N run, capped at 1% of the contig
INTERNAL_GAPS = (1, 3)
INTERNAL_GAP_LENGTH = 100


@dataclass(frozen=True, eq=False)
class Motif:
    motif_id: str
    name: str
    probabilities: np.ndarray  # (length, 4) in ACGT order, rows sum to 1

    @property
    def consensus(self) -> str:
        return bytes(_LETTERS[self.probabilities.argmax(axis=1)]).decode()


@dataclass(frozen=True)
class PlantedSite:
    contig: str
    start: int
    end: int
    strand: str
    motif_id: str
    motif_name: str
    sequence: str  # FASTA forward strand at [start, end), upper case


@dataclass(frozen=True)
class SimulationSummary:
    fasta: Path
    truth: Path
    seed: int
    contig_lengths: dict[str, int]
    gc_fraction: float  # over A/C/G/T
    cpg_observed_expected: float
    soft_masked_fraction: float
    n_fraction: float
    motifs: tuple[Motif, ...]
    planted: dict[str, int]  # motif id -> number of sites


@dataclass(frozen=True, eq=False)
class _Feature:
    length: int
    codes: np.ndarray | None  # None: keep the background underneath
    soft_masked: bool
    motif: Motif | None = None
    strand: str = "+"


def truth_table_path(out: str | Path) -> Path:
    """`X.fa.gz` -> `X.motifs.tsv` (also for .fasta.gz, .fna.gz, .gz)."""
    out = Path(out)
    stem = out.name.removesuffix(".gz")
    for suffix in (".fa", ".fasta", ".fna"):
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            break
    return out.with_name(f"{stem}.motifs.tsv")


def load_motifs(motif_ids: Sequence[str], release: str = DEFAULT_JASPAR_RELEASE) -> tuple[Motif, ...]:
    """Fetch position frequency matrices from the offline JASPAR database shipped with pyjaspar."""
    import pyjaspar

    if release not in pyjaspar.jaspar_releases:
        known = ", ".join(sorted(pyjaspar.jaspar_releases))
        raise UserError(f"unknown JASPAR release '{release}', expected one of {known}")
    database = pyjaspar.jaspardb(release=release)
    motifs: dict[str, Motif] = {}
    for motif_id in motif_ids:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyjaspar warns, then returns None, for unknown ids
            record = database.fetch_motif_by_id(motif_id)
        if record is None:
            raise UserError(
                f"unknown JASPAR motif id '{motif_id}' in {release}, expected a matrix id like MA0139.2"
            )
        if record.matrix_id in motifs:
            raise UserError(f"motif '{motif_id}' is listed twice (as {record.matrix_id})")
        counts = np.array([record.counts[base] for base in "ACGT"], dtype=np.float64).T
        motifs[record.matrix_id] = Motif(
            record.matrix_id, record.name, counts / counts.sum(axis=1, keepdims=True)
        )
    return tuple(motifs.values())


def contig_lengths(length: int, n_contigs: int) -> list[int]:
    """Unequal contigs, weights 2C, 2C-1, ..., C+1 (8:7:6:5 for four), summing to `length`."""
    if n_contigs < 1:
        raise UserError(f"--contigs {n_contigs}: expected at least 1 contig")
    weights = np.arange(2 * n_contigs, n_contigs, -1, dtype=np.int64)
    smallest_total = math.ceil(MIN_CONTIG_LENGTH * weights.sum() / weights[-1])
    if length < smallest_total:
        raise UserError(
            f"--length {length}: too short for {n_contigs} contigs, expected at least {smallest_total} nt "
            f"(every contig >= {MIN_CONTIG_LENGTH} nt)"
        )
    bounds = length * np.cumsum(weights) // weights.sum()
    return np.diff(bounds, prepend=0).tolist()


@numba.njit(cache=True)
def _markov_chain(uniform: np.ndarray, cumulative: np.ndarray, first: int) -> np.ndarray:
    out = np.empty(uniform.size, dtype=np.uint8)
    state = first
    for i in range(uniform.size):
        base = 0
        while base < 3 and uniform[i] >= cumulative[state, base]:
            base += 1
        out[i] = base
        state = base
    return out


def background(length: int, rng: np.random.Generator) -> np.ndarray:
    """2-bit codes from the human-like first-order Markov chain, started from its stationary distribution."""
    transition = _DINUCLEOTIDE_PERCENT / _DINUCLEOTIDE_PERCENT.sum(axis=1, keepdims=True)
    stationary = _DINUCLEOTIDE_PERCENT.sum(axis=1) / _DINUCLEOTIDE_PERCENT.sum()
    first = int(rng.choice(4, p=stationary))
    return _markov_chain(rng.random(length), np.cumsum(transition, axis=1), first)


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    """Reverse complement of 2-bit codes (A<->T is 0<->3, C<->G is 1<->2)."""
    return (3 - codes[::-1]).astype(np.uint8)


def _mutate(codes: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(codes.size) < rate
    out = codes.copy()
    out[hit] = (out[hit] + rng.integers(1, 4, size=int(hit.sum()))) % 4
    return out.astype(np.uint8)


def _family_consensus(families: Sequence[RepeatFamily], rng: np.random.Generator) -> list[np.ndarray]:
    return [
        np.concatenate(
            [background(family.consensus_length, rng), np.zeros(family.poly_a_tail, dtype=np.uint8)]
        )
        for family in families
    ]


def _repeat_copies(
    family: RepeatFamily, consensus: np.ndarray, count: int, rng: np.random.Generator
) -> list[_Feature]:
    copies = []
    for _ in range(count):
        length = int(rng.integers(max(1, int(family.min_copy_fraction * consensus.size)), consensus.size + 1))
        start = int(rng.integers(0, consensus.size - length + 1))
        codes = _mutate(consensus[start : start + length], rng.uniform(*family.divergence), rng)
        copies.append(_Feature(length, reverse_complement(codes) if rng.random() < 0.5 else codes, True))
    return copies


def _microsatellites(count: int, rng: np.random.Generator) -> list[_Feature]:
    units = [np.frombuffer(unit.encode(), dtype=np.uint8) for unit, _ in MICROSATELLITES]
    weights = np.array([weight for _, weight in MICROSATELLITES])
    features = []
    for unit_index in rng.choice(len(units), size=count, p=weights / weights.sum()):
        unit = _CODE_OF[units[unit_index]]
        length = int(rng.integers(MICROSATELLITE_LENGTH[0], MICROSATELLITE_LENGTH[1] + 1))
        phase = int(rng.integers(0, unit.size))
        codes = np.resize(np.roll(unit, -phase), length)
        codes = _mutate(codes, MICROSATELLITE_MUTATION_RATE, rng)
        features.append(_Feature(length, reverse_complement(codes) if rng.random() < 0.5 else codes, True))
    return features


def sample_sites(motif: Motif, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, motif length) 2-bit codes, each position drawn from the matrix column independently."""
    cumulative = np.cumsum(motif.probabilities, axis=1)[:, :3]
    uniform = rng.random((count, motif.probabilities.shape[0]))
    return (uniform[:, :, None] >= cumulative[None, :, :]).sum(axis=2).astype(np.uint8)


def _motif_sites(motif: Motif, count: int, rng: np.random.Generator) -> list[_Feature]:
    sites = sample_sites(motif, count, rng)
    minus = rng.random(count) < 0.5
    return [
        _Feature(
            site.size, reverse_complement(site) if is_minus else site, False, motif, "-" if is_minus else "+"
        )
        for site, is_minus in zip(sites, minus, strict=True)
    ]


def _poisson_count(rate_per_mb: float, length: int, rng: np.random.Generator) -> int:
    return int(rng.poisson(rate_per_mb * length / 1e6))


def _build_contig(
    name: str,
    length: int,
    consensus: list[np.ndarray],
    site_counts: Sequence[tuple[Motif, int]],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[PlantedSite]]:
    """ASCII sequence (soft-masked) and its planted sites, sorted by start."""
    codes = background(length, rng)
    telomere = min(TELOMERE_N, length // 100)
    codes[:telomere] = _N
    max_gap = max(INTERNAL_GAP_LENGTH + 1, min(50_000, length // 40))
    features = [
        _Feature(int(gap), np.full(int(gap), _N, dtype=np.uint8), soft_masked=False)
        for gap in rng.integers(
            INTERNAL_GAP_LENGTH, max_gap, size=int(rng.integers(*INTERNAL_GAPS, endpoint=True))
        )
    ]
    for family, family_consensus in zip(REPEAT_FAMILIES, consensus, strict=True):
        count = _poisson_count(family.copies_per_mb, length, rng)
        features += _repeat_copies(family, family_consensus, count, rng)
    features += _microsatellites(_poisson_count(MICROSATELLITES_PER_MB, length, rng), rng)
    stretch_count = _poisson_count(SOFT_MASKED_STRETCHES_PER_MB, length, rng)
    features += [
        _Feature(int(size), None, soft_masked=True)
        for size in rng.integers(*SOFT_MASKED_STRETCH_LENGTH, size=stretch_count, endpoint=True)
    ]
    for motif, count in site_counts:
        features += _motif_sites(motif, count, rng)

    # Random non-overlapping placement: shuffle the features, then spread the free space between them at
    # sorted uniform offsets.
    sizes = np.array([feature.length for feature in features], dtype=np.int64)
    free = length - telomere - int(sizes.sum())
    if free < 0:
        raise UserError(
            f"{name}: {length} nt cannot hold {int(sizes.sum())} nt of planted features; "
            f"expected a lower --motif-density or a longer --length"
        )
    order = rng.permutation(len(features))
    gaps = np.sort(rng.integers(0, free, size=len(features), endpoint=True))
    starts = telomere + gaps + np.concatenate([[0], np.cumsum(sizes[order])[:-1]]).astype(np.int64)

    soft_masked = np.zeros(length, dtype=bool)
    placed: list[tuple[int, _Feature]] = []
    for start, index in zip(starts.tolist(), order.tolist(), strict=True):
        feature = features[index]
        end = start + feature.length
        if feature.codes is not None:
            codes[start:end] = feature.codes
        if feature.soft_masked:
            soft_masked[start:end] = True
        if feature.motif is not None:
            placed.append((start, feature))
    ascii_seq = _LETTERS[codes]
    ascii_seq[soft_masked] |= _LOWER_BIT
    sites = [
        PlantedSite(
            contig=name,
            start=start,
            end=start + feature.length,
            strand=feature.strand,
            motif_id=feature.motif.motif_id,
            motif_name=feature.motif.name,
            sequence=bytes(_LETTERS[codes[start : start + feature.length]]).decode(),
        )
        for start, feature in sorted(placed, key=lambda item: item[0])
    ]
    return ascii_seq, sites


def _fasta_record(name: str, ascii_seq: np.ndarray) -> bytes:
    """`>name` and the sequence in lines of LINE_WIDTH nt, without a Python loop per line."""
    full = ascii_seq.size // LINE_WIDTH * LINE_WIDTH
    lines = np.empty((full // LINE_WIDTH, LINE_WIDTH + 1), dtype=np.uint8)
    lines[:, :LINE_WIDTH] = ascii_seq[:full].reshape(-1, LINE_WIDTH)
    lines[:, LINE_WIDTH] = ord("\n")
    tail = ascii_seq[full:].tobytes() + b"\n" if full < ascii_seq.size else b""
    return f">{name}\n".encode() + lines.tobytes() + tail


def _composition(sequences: Sequence[np.ndarray]) -> tuple[float, float]:
    """GC fraction over A/C/G/T and CpG observed/expected over adjacent A/C/G/T pairs."""
    base_counts = np.zeros(4, dtype=np.int64)
    cpg = pairs = 0
    for ascii_seq in sequences:
        codes = _CODE_OF[ascii_seq]
        base_counts += np.bincount(codes, minlength=5)[:4]
        both = (codes[:-1] < _N) & (codes[1:] < _N)
        pairs += int(both.sum())
        cpg += int(((codes[:-1] == 1) & (codes[1:] == 2)).sum())
    frequencies = base_counts / base_counts.sum()
    gc = float(frequencies[1] + frequencies[2])
    return gc, float((cpg / pairs) / (frequencies[1] * frequencies[2]))


def simulate_genome(
    out: str | Path,
    *,
    length: int = DEFAULT_LENGTH,
    seed: int = 0,
    n_contigs: int = DEFAULT_CONTIGS,
    motifs: Sequence[str] = DEFAULT_MOTIFS,
    jaspar_release: str = DEFAULT_JASPAR_RELEASE,
    instances_per_mb: float = DEFAULT_INSTANCES_PER_MB,
) -> SimulationSummary:
    """Write a gzipped FASTA of `n_contigs` contigs (chr1..) totalling `length` nt, and its truth table.

    `instances_per_mb` is the number of planted sites per motif per Mbp (of the whole genome). Same arguments,
    same bytes.
    """
    out = Path(out)
    if out.suffix != ".gz":
        raise UserError(f"--out {out}: expected a name ending in .gz (the FASTA is gzip-compressed)")
    if seed < 0:
        raise UserError(f"--seed {seed}: expected a non-negative integer")
    if not (math.isfinite(instances_per_mb) and instances_per_mb >= 0):
        raise UserError(
            f"--motif-density {instances_per_mb}: expected a non-negative number of sites per Mbp"
        )
    lengths = contig_lengths(length, n_contigs)
    loaded = load_motifs(motifs, jaspar_release)
    names = [f"chr{index + 1}" for index in range(n_contigs)]

    consensus = _family_consensus(REPEAT_FAMILIES, np.random.default_rng([seed, 0]))
    allocation_rng = np.random.default_rng([seed, 1])
    per_contig = [
        allocation_rng.multinomial(round(instances_per_mb * length / 1e6), np.array(lengths) / length)
        for _ in loaded
    ]
    sequences: list[np.ndarray] = []
    sites: list[PlantedSite] = []
    for index, (name, contig_length) in enumerate(
        tqdm(list(zip(names, lengths, strict=True)), desc="simulate-genome", unit="contig", disable=None)
    ):
        counts = [(motif, int(split[index])) for motif, split in zip(loaded, per_contig, strict=True)]
        ascii_seq, contig_sites = _build_contig(
            name, contig_length, consensus, counts, np.random.default_rng([seed, 2, index])
        )
        sequences.append(ascii_seq)
        sites += contig_sites

    truth = truth_table_path(out)
    with atomic_file(out) as fasta_tmp, atomic_file(truth) as truth_tmp:
        with (
            fasta_tmp.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz,
        ):
            for name, ascii_seq in zip(names, sequences, strict=True):
                gz.write(_fasta_record(name, ascii_seq))
        with truth_tmp.open("w", encoding="ascii", newline="\n") as table:
            table.write("contig\tstart\tend\tstrand\tmotif_id\tmotif_name\tsequence\n")
            for site in sites:
                table.write(
                    f"{site.contig}\t{site.start}\t{site.end}\t{site.strand}\t{site.motif_id}\t"
                    f"{site.motif_name}\t{site.sequence}\n"
                )

    gc, cpg = _composition(sequences)
    total = sum(lengths)
    return SimulationSummary(
        fasta=out,
        truth=truth,
        seed=seed,
        contig_lengths=dict(zip(names, lengths, strict=True)),
        gc_fraction=gc,
        cpg_observed_expected=cpg,
        soft_masked_fraction=sum(int((seq >= ord("a")).sum()) for seq in sequences) / total,
        n_fraction=sum(int((seq == ord("N")).sum()) for seq in sequences) / total,
        motifs=loaded,
        planted={motif.motif_id: sum(site.motif_id == motif.motif_id for site in sites) for motif in loaded},
    )
