"""n-gram counting: brute-force oracles on random FASTA, exact sharding, Jellyfish on real sequence, errors."""

from __future__ import annotations

import collections
import gzip
import re
import shutil
import subprocess

import numpy as np
import pytest
from kmer_oracles import count_sequences, ngram_code

from genemask.errors import UserError
from genemask.genome.fasta import read_fasta
from genemask.ngrams import counting as ngrams
from genemask.ngrams.counting import MAX_N, count_fasta, ngram_strings


def brute_counts(sequences: list[str], max_n: int) -> list[np.ndarray]:
    """Every substring of every ACGT run, counted one by one."""
    found = [collections.Counter() for _ in range(max_n)]
    for seq in sequences:
        for run in re.split(r"[^ACGT]+", seq.upper()):
            for n in range(1, max_n + 1):
                found[n - 1].update(run[i : i + n] for i in range(len(run) - n + 1))
    arrays = []
    for n, counter in enumerate(found, start=1):
        array = np.zeros(4**n, dtype=np.uint64)
        for ngram, count in counter.items():
            array[ngram_code(ngram)] = count
        arrays.append(array)
    return arrays


def random_sequence(rng: np.random.Generator, length: int) -> str:
    letters = list("ACGTacgtNnRy-")
    weights = np.array([20, 20, 20, 20, 5, 5, 5, 5, 1.5, 1.5, 0.5, 0.5, 0.5])
    return "".join(rng.choice(letters, p=weights / weights.sum(), size=length))


def write_fasta(
    path, records: list[tuple[str, str]], rng: np.random.Generator, compress: bool = False
) -> None:
    """FASTA with random line widths, blank lines and CRLF, to stress the byte-level parser."""
    parts = []
    for name, seq in records:
        width = int(rng.integers(1, 30))
        newline = "\r\n" if rng.random() < 0.2 else "\n"
        lines = [seq[i : i + width] for i in range(0, len(seq), width)]
        parts.append(f">{name} some description{newline}" + newline.join(lines) + newline)
        if rng.random() < 0.2:
            parts.append(newline)
    data = "".join(parts).encode()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Cut every block into pieces of a few bytes, so piece borders fall everywhere."""
    monkeypatch.setattr(ngrams, "_MIN_PIECE_BYTES", 1)


def test_counts_of_random_fasta_files_equal_brute_force(tmp_path, tiny_pieces):
    """Tiny blocks put block borders (carried run state), long lines and headers everywhere."""
    rng = np.random.default_rng(11)
    path = tmp_path / "random.fa"
    for trial in range(120):
        records = [
            (f"c{i}", random_sequence(rng, int(rng.integers(1, 90)))) for i in range(int(rng.integers(1, 5)))
        ]
        write_fasta(path, records, rng, compress=trial % 4 == 0)
        chosen = None
        if trial % 3 == 0:
            chosen = sorted({name for name, _ in records if rng.random() < 0.5} or {"c0"})
        max_n = int(rng.integers(1, 9))
        counts = count_fasta(
            path, max_n, chosen, threads=int(rng.integers(1, 4)), block_bytes=int(rng.integers(4, 80))
        )
        used = [seq for name, seq in records if chosen is None or name in chosen]
        for n, expected in enumerate(brute_counts(used, max_n), start=1):
            np.testing.assert_array_equal(counts.of(n), expected, err_msg=f"trial {trial} n={n}")
        assert sorted(counts.contigs) == sorted(chosen or [name for name, _ in records])
        assert counts.total(1) == sum(len(re.sub("[^ACGT]", "", seq.upper())) for seq in used)


def test_max_n_12_counts_exactly():
    rng = np.random.default_rng(3)
    sequences = [random_sequence(rng, 400) for _ in range(3)] + ["ACGT" * 20]
    counts = count_sequences(sequences, MAX_N, threads=2)
    for n, expected in enumerate(brute_counts(sequences, MAX_N), start=1):
        np.testing.assert_array_equal(counts.of(n), expected)


def test_real_genome_counts_do_not_depend_on_threads_blocks_or_pieces(hg38_slice, monkeypatch):
    reference = count_fasta(hg38_slice, 8, threads=1)
    monkeypatch.setattr(ngrams, "_MIN_PIECE_BYTES", 1000)
    sharded = count_fasta(hg38_slice, 8, threads=3, block_bytes=300_007)
    for n in range(1, 9):
        np.testing.assert_array_equal(sharded.of(n), reference.of(n))
    assert reference.contigs == {"chr2": 2_323_275}  # the slice's ACGT bases (10,000 N excluded)
    assert reference.total(6) == 2_323_270


def test_counts_over_disjoint_contigs_add_up_exactly(tmp_path):
    """No n-gram crosses a contig end, so counts over disjoint contig sets add up to the whole genome's."""
    rng = np.random.default_rng(5)
    records = [(f"chr{i}", random_sequence(rng, 3000)) for i in range(1, 5)]
    path = tmp_path / "genome.fa"
    write_fasta(path, records, rng)
    whole = count_fasta(path, 6)
    parts = count_fasta(path, 6, ["chr1", "chr3"]), count_fasta(path, 6, ["chr2", "chr4"])
    for n in range(1, 7):
        np.testing.assert_array_equal(parts[0].of(n) + parts[1].of(n), whole.of(n))
    assert parts[0].contigs | parts[1].contigs == whole.contigs


def jellyfish_counts(fasta_plain, n: int, workdir) -> np.ndarray:
    """Jellyfish's exact (non-canonical) counts of every n-gram, as a 4**n array."""
    database = workdir / f"mer{n}.jf"
    subprocess.run(
        ["jellyfish", "count", "-m", str(n), "-s", "10M", "-t", "2", "-o", database, fasta_plain], check=True
    )
    dump = subprocess.run(["jellyfish", "dump", "-c", "-t", database], check=True, capture_output=True).stdout
    table = np.array(dump.split(), dtype=object).reshape(-1, 2)
    letters = np.frombuffer(b"".join(table[:, 0]), dtype=np.uint8).reshape(-1, n)
    codes = (ngrams._CODE[letters].astype(np.int64) << (2 * np.arange(n - 1, -1, -1))).sum(axis=1)
    array = np.zeros(4**n, dtype=np.uint64)
    array[codes] = table[:, 1].astype(np.uint64)
    return array


@pytest.mark.skipif(
    shutil.which("jellyfish") is None, reason="jellyfish not installed (apt-get install jellyfish)"
)
def test_counts_equal_jellyfish_on_real_sequence(hg38_slice, tmp_path):
    plain = tmp_path / "slice.fa"
    plain.write_bytes(gzip.decompress(hg38_slice.read_bytes()))
    counts = count_fasta(hg38_slice, 10, threads=2)
    for n in (1, 4, 7, 10):
        np.testing.assert_array_equal(counts.of(n), jellyfish_counts(plain, n, tmp_path), err_msg=f"n={n}")


def test_code_and_strings_round_trip():
    kmers = ["AAAAAA", "ACGTAC", "TTTTTT", "GATTAC"]
    codes = np.array([ngram_code(kmer) for kmer in kmers])
    assert codes.tolist() == [0, 0b000110110001, 4**6 - 1, 0b100011110001]
    assert ngram_strings(codes, 6) == kmers
    with pytest.raises(ValueError):
        ngram_code("ACGN")


BAD_FASTA = {
    "sequence before header": b"ACGT\n>a\nACGT\n",
    "duplicate name": b">a\nACGT\n>a\nACGT\n",
    "invalid letter": b">a\nACGT\n>b\nAC*GT\n",
    "greater-than inside a line": b">a\nAC>GT\n",
    "record without sequence": b">a\nACGT\n>b\n\n>c\nAC\n",
    "last record without sequence": b">a\nACGT\n>b\n",
    "empty file": b"",
    "whitespace only": b"\n\n",
    "empty name": b">\nACGT\n",
}


@pytest.mark.parametrize("case", sorted(BAD_FASTA))
def test_malformed_fasta_gives_the_reference_readers_error(tmp_path, case):
    path = tmp_path / "bad.fa"
    path.write_bytes(BAD_FASTA[case])
    with pytest.raises(UserError) as expected:
        list(read_fasta(path))
    with pytest.raises(UserError) as got:
        count_fasta(path, 4, block_bytes=8)
    assert str(got.value) == str(expected.value)
    assert "\n" not in str(got.value)


def test_missing_chromosome_and_missing_file(tmp_path):
    path = tmp_path / "g.fa"
    path.write_bytes(b">chr1\nACGT\n")
    with pytest.raises(UserError, match=r"g\.fa: chromosome\(s\) chr9 not found"):
        count_fasta(path, 4, ["chr1", "chr9"])
    with pytest.raises(UserError, match="no such file"):
        count_fasta(tmp_path / "absent.fa", 4)


@pytest.mark.parametrize(("max_n", "threads"), [(0, 1), (MAX_N + 1, 1), (4, 0)])
def test_bad_parameters(max_n, threads):
    with pytest.raises(UserError):
        count_sequences(["ACGT"], max_n, threads)
