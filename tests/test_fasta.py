"""FASTA reading: formats, names, and one-line errors for every kind of bad input."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from genemask.errors import UserError
from genemask.genome.fasta import canonical_name, encode, read_fasta


def write(path, text: str, compress: bool = False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def contigs(path, **kwargs):
    return [(c.name, bytes(c.seq).decode()) for c in read_fasta(path, **kwargs)]


@pytest.mark.parametrize("compress", [False, True])
def test_reads_records_upper_cased_across_lines(tmp_path, compress):
    path = write(tmp_path / "g.fa", ">a desc\nacgT\nNNac\n>b\nGGGG\n", compress)
    assert contigs(path) == [("a", "ACGTNNAC"), ("b", "GGGG")]


def test_crlf_line_ends_are_handled(tmp_path):
    path = write(tmp_path / "g.fa", ">a\r\nACGT\r\nAC\r\n>b\r\nTT\r\n")
    assert contigs(path) == [("a", "ACGTAC"), ("b", "TT")]


def test_iupac_letters_are_kept_as_non_acgt(tmp_path):
    path = write(tmp_path / "g.fa", ">a\nACRYKMGT\n")
    (contig,) = read_fasta(path)
    assert encode(contig.seq).tolist() == [0, 1, 4, 4, 4, 4, 2, 3]


def test_bgzip_is_read(tmp_path, hg38_slice):
    (contig,) = read_fasta(hg38_slice)
    assert contig.name == "chr2" and len(contig.seq) == 2_333_275
    assert int((encode(contig.seq) < 4).sum()) == 2_323_275


def test_block_boundaries_do_not_matter(tmp_path, monkeypatch):
    import genemask.genome.fasta as fasta

    text = "".join(f">r{i}\n" + "ACGT" * (i + 3) + "\n" for i in range(50))
    path = write(tmp_path / "g.fa", text)
    expected = contigs(path)
    monkeypatch.setattr(fasta, "_BLOCK", 7)
    assert contigs(path) == expected


def test_ncbi_and_ensembl_names_map_to_ucsc():
    assert canonical_name("NC_000001.11") == "chr1"
    assert canonical_name("NC_000023.11") == "chrX"
    assert canonical_name("NC_012920.1") == "chrM"
    assert canonical_name("MT") == "chrM"
    assert canonical_name("chr5") == "chr5"
    assert canonical_name("NW_025791756.1") == "NW_025791756.1"


def test_chromosome_selection_by_canonical_name(tmp_path):
    path = write(tmp_path / "g.fa", ">NC_000001.11 Homo sapiens\nAC\n>NC_000002.12\nGT\n>NT_1\nAA\n")
    assert contigs(path, chromosomes=["chr2"]) == [("chr2", "GT")]
    with pytest.raises(UserError, match="chr7"):
        contigs(path, chromosomes=["chr1", "chr7"])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("ACGT\n>a\nAC\n", "line 1: expected a '>' header"),
        (">a\nAC\n>b\nGG\n>a\nTT\n", "line 5: duplicate record name 'a' \\(first on line 1\\)"),
        (">a\nAC1T\n", "record 'a'.*unexpected character '1'"),
        (">a\n>b\nAC\n", "record 'a' has no sequence"),
    ],
)
def test_bad_fasta_gives_one_line_error_naming_file(tmp_path, text, pattern):
    path = write(tmp_path / "bad.fa", text)
    with pytest.raises(UserError, match=pattern) as error:
        contigs(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        contigs(tmp_path / "absent.fa")


def test_truncated_gzip(tmp_path):
    data = gzip.compress((">a\n" + "ACGT" * 50_000 + "\n").encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt gzip"):
        contigs(path)


def test_cli_prints_one_line_and_leaves_no_output(tmp_path):
    bad = write(tmp_path / "bad.fa", ">a\nAC\n>a\nGG\n")
    out = tmp_path / "chunks"
    result = subprocess.run(
        [sys.executable, "-m", "genemask", "chunk", "--fasta", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "duplicate record name 'a'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_encode_table():
    assert encode(np.frombuffer(b"ACGTNacgt", np.uint8)).tolist() == [0, 1, 2, 3, 4, 4, 4, 4, 4]
