"""kmer_ranks.tsv: the one reader and writer, round trip from a real ranking, and every kind of bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
from kmer_oracles import all_kmers, count_sequences

from genemask.errors import UserError
from genemask.ngrams.npmi import rank_kmers, score
from genemask.ngrams.ranks import KmerRanking, read_kmer_ranks, write_kmer_ranks


def good_ranks_text(k: int = 3) -> list[str]:
    return ["kmer\tcount\tnpmi\trank"] + [f"{m}\t200\t0.5\t{i + 1}" for i, m in enumerate(all_kmers(k))]


def with_field(lines: list[str], line: int, column: int, value: str) -> list[str]:
    """`lines` with field `column` of 1-based line `line` replaced by `value`."""
    fields = lines[line - 1].split("\t")
    fields[column] = value
    return lines[: line - 1] + ["\t".join(fields)] + lines[line:]


def test_round_trip_of_a_real_ranking(tmp_path):
    rng = np.random.default_rng(8)
    sequences = ["".join(rng.choice(list("ACGT"), p=[0.4, 0.1, 0.15, 0.35], size=4000)) for _ in range(3)]
    ranking = rank_kmers(score(count_sequences(sequences, 6), 15), 5)
    assert 0 < ranking.n_ranked < 4**5  # both ranked k-mers and k-mers below the threshold
    path = tmp_path / "kmer_ranks.tsv"
    write_kmer_ranks(ranking, path)
    ranks_column = [int(line.rsplit("\t", 1)[1]) for line in path.read_text().splitlines()[1:]]
    assert ranks_column == sorted(ranks_column)  # best first
    back = read_kmer_ranks(path)
    assert back.k == 5 and back.worst_rank == ranking.worst_rank
    np.testing.assert_array_equal(back.count, ranking.count)
    np.testing.assert_array_equal(back.rank, ranking.rank)
    np.testing.assert_array_equal(back.npmi, ranking.npmi)  # repr() round-trips floats exactly; NA -> NaN
    np.testing.assert_array_equal(back.top(10), np.argsort(ranking.rank, kind="stable")[:10])


def test_rows_in_any_order_and_columns_in_any_order(tmp_path):
    lines = good_ranks_text()
    rows = [line.split("\t") for line in lines[1:]]
    reordered = ["rank\tkmer\tnpmi\tcount"] + [f"{r}\t{m}\t{v}\t{c}" for m, c, v, r in reversed(rows)]
    path = tmp_path / "kmer_ranks.tsv"
    path.write_text("\n".join(reordered) + "\n")
    ranking = read_kmer_ranks(path)
    np.testing.assert_array_equal(ranking.rank, np.arange(1, 65))
    assert ranking.kmers.tolist() == all_kmers(3)


def test_empty_npmi_reads_as_nan(tmp_path):
    lines = good_ranks_text()
    lines[-1] = "TTT\t3\t\t64"
    lines[-2] = "TTG\t3\tNA\t64"
    path = tmp_path / "kmer_ranks.tsv"
    path.write_text("\n".join(lines) + "\n")
    ranking = read_kmer_ranks(path)
    assert ranking.k == 3 and np.isnan(ranking.npmi[-2:]).all() and ranking.rank[-1] == 64
    assert ranking.n_ranked == 62 and ranking.worst_rank == 63
    assert "".join("ACGT"[c] for c in ranking.codes[27]) == ranking.kmers[27]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lines: ["kmer\tcount\tnpmi"] + [line.rsplit("\t", 1)[0] for line in lines[1:]],
            "line 1: missing column(s) rank",
        ),
        (lambda lines: with_field(lines, 6, 0, "AANT"), "line 6: k-mer 'AANT'"),
        (lambda lines: with_field(lines, 6, 0, "AXT"), "line 6: k-mer 'AXT'"),
        (lambda lines: with_field(lines, 10, 0, "AAG"), "line 10: duplicate k-mer AAG"),
        (lambda lines: lines[:-1], "63 k-mers, expected all 4^3 = 64, e.g. TTT"),
        (lambda lines: with_field(lines, 8, 3, "first"), "line 8: rank 'first'"),
        (lambda lines: with_field(lines, 8, 3, "0"), "line 8: rank '0'"),
        (lambda lines: with_field(lines, 8, 1, "-3"), "line 8: count '-3'"),
        (lambda lines: with_field(lines, 8, 2, "high"), "line 8: npmi 'high'"),
        (lambda lines: with_field(lines, 8, 2, "inf"), "line 8: npmi 'inf'"),
        (lambda lines: lines[:8] + ["ACT\t200\t0.5\t9\textra"] + lines[9:], "line 9: 5 fields"),
        (lambda lines: lines[:8] + [""] + lines[8:], "line 9: 1 fields"),
        (lambda lines: [lines[0]] + [with_field([x], 1, 2, "NA")[0] for x in lines[1:]], "no ranked k-mer"),
        (lambda lines: lines[:1], "no k-mer rows"),
        (lambda lines: [], "empty file"),
    ],
)
def test_bad_ranks_file_is_one_line_user_error(tmp_path, edit, message):
    path = tmp_path / "kmer_ranks.tsv"
    path.write_text("\n".join(edit(good_ranks_text())) + "\n")
    with pytest.raises(UserError, match=re.escape(message)) as error:
        read_kmer_ranks(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_kmer_ranks(tmp_path / "absent.tsv")


def test_ranking_arrays_must_cover_every_kmer():
    with pytest.raises(ValueError, match="shape"):
        KmerRanking(3, np.zeros(63, np.int64), np.zeros(64), np.ones(64, np.int64))
