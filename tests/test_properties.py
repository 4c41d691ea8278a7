"""Property-based tests: whatever bytes a reader is given, it parses them or raises the one-line UserError,
never another exception (the FASTA readers, kmer_ranks.tsv, config YAML, task TSVs)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genemask.config import load_config
from genemask.errors import UserError
from genemask.evaluation.tasks import read_labelled_tsv
from genemask.genome.fasta import read_fasta
from genemask.ngrams.counting import count_fasta
from genemask.ngrams.ranks import read_kmer_ranks

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def lines_of(tokens: list[str], *, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[bytes]:
    """Text assembled from meaningful pieces, so examples reach past the first check of a reader."""
    line = st.lists(st.sampled_from(tokens), max_size=6).map("".join)
    ending = st.sampled_from(["\n", "\r\n", ""])
    return st.lists(st.tuples(line, ending).map("".join), min_size=min_size, max_size=max_size).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
    )


def raw_or_structured(structured: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), structured)


def parses_or_user_error(read, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        read(path)
    except UserError as error:
        message = str(error)
        assert message and "\n" not in message, repr(message)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


FASTA_TOKENS = [
    ">",
    ">chr1",
    ">chr1 x",
    ">chrM",
    " ",
    "\t",
    "ACGT",
    "acgtn",
    "NNNN",
    "-",
    "U",
    "@",
    "\ufeff",
    "\x00",
]
FASTA = raw_or_structured(lines_of(FASTA_TOKENS))


@SETTINGS
@given(data=FASTA, compress=st.booleans(), cut=st.integers(0, 40))
def test_the_fasta_reader_parses_or_raises_a_user_error(scratch, data, compress, cut):
    if compress:
        data = gzip.compress(data, mtime=0)
        data = data[: max(len(data) - cut, 0)] if cut % 3 == 0 else data  # sometimes a truncated stream
    parses_or_user_error(lambda path: list(read_fasta(path)), scratch / "genome.fa", data)


@SETTINGS
@given(data=FASTA, max_n=st.integers(1, 4))
def test_the_ngram_counter_reads_fasta_as_the_reader_does(scratch, data, max_n):
    path = scratch / "count.fa"
    path.write_bytes(data)
    try:
        expected = {contig.name: len(contig.seq) for contig in read_fasta(path)}
    except UserError:
        expected = None
    try:
        counts = count_fasta(path, max_n)
    except UserError as error:
        assert "\n" not in str(error)
        assert expected is None, f"the counter refused what the reader accepts: {error}"
        return
    assert expected is not None, "the counter accepted what the reader refuses"
    assert set(counts.contigs) == set(expected)


RANKS_TOKENS = ["kmer", "count", "npmi", "rank", "\t", "A", "C", "G", "T", "AC", "N", "1", "2", "0", "-1", "NA",
                "nan", "inf", "0.5", "-0.25", "1e3", "x", " "]  # fmt: skip
RANK_ROWS = st.permutations(["A", "C", "G", "T"]).flatmap(
    lambda kmers: st.tuples(
        *(
            st.tuples(st.just(kmer), st.sampled_from(["5", "0", "-1", "x"]),
                      st.sampled_from(["0.5", "NA", "nan", "inf", "-0.1", "y"]), st.sampled_from(["1", "2", "0"]))
            for kmer in kmers
        )
    )
).map(lambda rows: ("kmer\tcount\tnpmi\trank\n" + "".join("\t".join(row) + "\n" for row in rows)).encode())  # fmt: skip


@SETTINGS
@given(data=st.one_of(raw_or_structured(lines_of(RANKS_TOKENS)), RANK_ROWS))
def test_the_ranks_reader_parses_or_raises_a_user_error(scratch, data):
    parses_or_user_error(read_kmer_ranks, scratch / "kmer_ranks.tsv", data)


CONFIG_TOKENS = ["genome:", "npmi:", "masking:", "pretrain:", "  ", "k: ", "max_n: ", "6", "4", "-1", "[", "]",
                 "{", "}", "source: fasta", "source: simulate", "strategies: [random]", "&a ", "*a", "!!python/name:os.system",
                 "'", '"', "- ", ": ", "#", "\ufeff", "~", "\t"]  # fmt: skip


@SETTINGS
@given(data=raw_or_structured(lines_of(CONFIG_TOKENS)))
def test_the_config_loader_validates_or_raises_a_user_error(scratch, data):
    parses_or_user_error(load_config, scratch / "config.yaml", data)


TASK_TOKENS = ["sequence\tlabel", "sequence", "label", "\t", "ACGTAC", "ACGTAC CGTACG", "acgtnn", "0", "1", "-1",
               "x", '"', " ", "\u00e9"]  # fmt: skip


@SETTINGS
@given(data=raw_or_structured(lines_of(TASK_TOKENS)))
def test_the_task_reader_parses_or_raises_a_user_error(scratch, data):
    parses_or_user_error(read_labelled_tsv, scratch / "task.tsv", data)
