"""NPMI scores and the k-mer ranking: brute-force oracles, output files, CLI, and real-genome properties."""

from __future__ import annotations

import collections
import csv
import functools
import gzip
import itertools
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from kmer_oracles import count_sequences, ngram_code
from scipy.stats import spearmanr

from genemask.cli import main
from genemask.errors import UserError
from genemask.genome import simulate
from genemask.ngrams.counting import count_fasta, ngram_strings
from genemask.ngrams.npmi import discount, npmi_stage, rank_kmers, score

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def random_genome(seed: int, length: int) -> list[str]:
    """Low-entropy random sequences (a biased alphabet and repeats), so many n-grams pass small thresholds."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(4):
        body = "".join(rng.choice(list("ACGTN"), p=[0.4, 0.1, 0.15, 0.33, 0.02], size=length))
        pieces.append(body + "TATAAT" * int(rng.integers(1, 20)))
    return pieces


def brute_pmi(ngram: str, log_p) -> float:
    """min over every segmentation into 2+ contiguous parts of log p(w) - sum log p(part)."""
    n = len(ngram)
    best = math.inf
    for cut_mask in range(1, 2 ** (n - 1)):
        cuts = [i + 1 for i in range(n - 1) if cut_mask >> i & 1]
        parts = [ngram[a:b] for a, b in itertools.pairwise([0, *cuts, n])]
        best = min(best, log_p(ngram) - sum(log_p(part) for part in parts))
    return best


def test_pmi_equals_brute_force_minimum_over_segmentations():
    sequences = random_genome(1, 3000)
    max_n = 7
    counts = count_sequences(sequences, max_n)
    scores = score(counts, min_count=1)
    totals = [counts.total(n) for n in range(1, max_n + 1)]

    @functools.cache
    def log_p(ngram: str) -> float:
        return math.log(counts.of(len(ngram))[ngram_code(ngram)] / totals[len(ngram) - 1])

    rng = np.random.default_rng(0)
    checked = 0
    for n in range(2, max_n + 1):
        codes = scores.kept(n)
        if codes.size > 300:  # every n-gram up to n = 4, a sample beyond (the oracle is slow)
            codes = np.sort(rng.choice(codes, 300, replace=False))
        for code, ngram in zip(codes, ngram_strings(codes, n), strict=True):
            assert scores.pmi[n - 1][code] == pytest.approx(brute_pmi(ngram, log_p), rel=1e-12, abs=1e-12)
            letters = sum(log_p(letter) for letter in ngram)
            assert scores.naive_pmi[n - 1][code] == pytest.approx(
                log_p(ngram) - letters, rel=1e-12, abs=1e-12
            )
            checked += 1
    assert checked > 1000


def test_npmi_is_pmi_times_discount_and_drops_rare_ngrams():
    counts = count_sequences(random_genome(2, 5000), 6)
    c = 50
    scores = score(counts, min_count=c)
    for n in range(2, 7):
        f = counts.of(n)
        kept = f >= c
        assert kept.any() and (n < 4 or not kept.all())
        assert np.isnan(scores.npmi[n - 1][~kept]).all()
        d = np.log(f[kept].astype(float)) / (np.log(f[kept].astype(float)) + math.log(c))
        np.testing.assert_allclose(scores.npmi[n - 1][kept], scores.pmi[n - 1][kept] * d, rtol=1e-14)
        np.testing.assert_array_equal(scores.kept(n), np.flatnonzero(kept))
    assert np.isnan(scores.pmi[0]).all() and np.isnan(scores.npmi[0]).all()  # no segmentation of a letter


def test_discount_values():
    np.testing.assert_allclose(discount(np.array([101, 101**3]), 101), [0.5, 0.75])
    assert discount(np.array([1]), 1)[0] == 1.0  # f = c = 1: no discount


def test_ranking_orders_by_npmi_and_ties_the_rare_kmers_at_the_worst_rank():
    counts = count_sequences(random_genome(3, 4000), 6)
    scores = score(counts, min_count=20)
    ranking = rank_kmers(scores, 4)
    npmi = scores.npmi[3]
    kept = np.isfinite(npmi)
    ranked = np.argsort(ranking.rank[kept])
    assert (np.diff(npmi[kept][ranked]) <= 0).all()
    assert sorted(ranking.rank[kept]) == list(range(1, kept.sum() + 1))
    assert (ranking.rank[~kept] == kept.sum() + 1).all() and (~kept).any()
    assert ranking.worst_rank == kept.sum() + 1
    with pytest.raises(UserError, match="--k"):
        rank_kmers(scores, 7)


def read_ranks(path) -> dict[str, tuple[int, float, int]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "kmer\tcount\tnpmi\trank"
    rows = [line.split("\t") for line in lines[1:]]
    return {
        kmer: (int(count), float("nan") if npmi == "NA" else float(npmi), int(rank))
        for kmer, count, npmi, rank in rows
    }


def test_stage_writes_ranks_table_and_summary(tmp_path):
    sequences = random_genome(4, 20_000)
    fasta = tmp_path / "genome.fa.gz"
    fasta.write_bytes(
        gzip.compress("".join(f">chr{i}\n{seq}\n" for i, seq in enumerate(sequences, 1)).encode())
    )
    summary = npmi_stage(fasta, tmp_path / "out", max_n=8, min_count=30, k=6, threads=2)
    counts = count_sequences(sequences, 8)
    scores = score(counts, 30)

    ranks = read_ranks(tmp_path / "out" / "kmer_ranks.tsv")
    assert len(ranks) == 4096
    assert [rank for _, _, rank in ranks.values()] == sorted(
        rank for _, _, rank in ranks.values()
    )  # best first
    for kmer, (count, npmi, _) in ranks.items():
        code = ngram_code(kmer)
        assert count == counts.of(6)[code]
        assert (math.isnan(npmi) and count < 30) or npmi == scores.npmi[5][code]

    table = pq.read_table(tmp_path / "out" / "ngrams.parquet").to_pandas()
    assert list(table.columns) == ["ngram", "n", "count", "naive_pmi", "pmi", "npmi"]
    assert (table["count"] >= 30).all() and (table["ngram"].str.len() == table["n"]).all()
    for n in range(1, 9):
        rows = table[table["n"] == n]
        assert len(rows) == summary["per_n"][n - 1]["kept"] == len(scores.kept(n))
        codes = [ngram_code(g) for g in rows["ngram"]]
        np.testing.assert_array_equal(rows["count"], counts.of(n)[codes])
        np.testing.assert_array_equal(rows["npmi"], scores.npmi[n - 1][codes])
        np.testing.assert_array_equal(rows["pmi"], scores.pmi[n - 1][codes])

    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["per_n"] == summary["per_n"]
    assert [row["total"] for row in on_disk["per_n"]] == [counts.total(n) for n in range(1, 9)]
    assert on_disk["kept"] == len(table)
    assert on_disk["contigs"] == {f"chr{i}": len(seq.replace("N", "")) for i, seq in enumerate(sequences, 1)}


def test_cli_runs_and_reports_bad_input_in_one_line(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGTTGCA" * 500 + "\n>chr2\n" + "AATT" * 300 + "\n")
    out = tmp_path / "out"
    assert main(["npmi", "--fasta", str(fasta), "--out", str(out), "--max-n", "6", "--min-count", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["bases_acgt"] == 4000 + 1200
    assert sorted(p.name for p in out.iterdir()) == [
        ".genemask-output",
        "kmer_ranks.tsv",
        "ngrams.parquet",
        "summary.json",
    ]

    bad_runs = [
        (["--fasta", str(tmp_path / "absent.fa")], "no such file"),
        (["--fasta", str(fasta), "--max-n", "13"], "--max-n"),
        (["--fasta", str(fasta), "--k", "7", "--max-n", "6"], "--k"),
        (["--fasta", str(fasta), "--chromosomes", "chrZ"], "chrZ not found"),
        (["--fasta", str(fasta), "--min-count", "100000"], "--min-count 100000: no 6-mer"),
    ]
    for arguments, message in bad_runs:
        assert main(["npmi", "--out", str(tmp_path / "bad"), *arguments]) == 2
        error = capsys.readouterr().err
        assert error.startswith("genemask npmi: error: ") and message in error and error.count("\n") == 1
        assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def revcomp(kmer: str) -> str:
    return kmer.translate(COMPLEMENT)[::-1]


def test_real_genome_ranking_is_strand_symmetric_and_sinks_cpg(hg38_slice):
    """hg38 chr2:1-2.3M: reports the Spearman correlation of rank(w) with rank(revcomp(w)) over the 6-mers."""
    ranking = rank_kmers(score(count_fasta(hg38_slice, 10, threads=2), 101), 6)
    kmers = ngram_strings(np.arange(4096), 6)
    rank_of = dict(zip(kmers, ranking.rank.tolist(), strict=True))
    rho = spearmanr([rank_of[k] for k in kmers], [rank_of[revcomp(k)] for k in kmers]).statistic
    print(f"\nhg38 slice: Spearman rank(w) vs rank(revcomp(w)) over 6-mers = {rho:.3f}")
    assert rho > 0.8
    cpg = np.array(["CG" in kmer for kmer in kmers])
    print(
        f"median rank: CpG 6-mers {np.median(ranking.rank[cpg]):.0f}, others {np.median(ranking.rank[~cpg]):.0f}"
    )
    assert np.median(ranking.rank[cpg]) > np.median(ranking.rank[~cpg])


def test_planted_motifs_rise_in_the_ranking_of_the_simulated_genome(tmp_path):
    """Reports where the planted motifs' 6-mers land, against the same simulation without motifs."""
    planted = simulate.simulate_genome(tmp_path / "planted.fa.gz", length=2_000_000, seed=7)
    control = simulate.simulate_genome(tmp_path / "control.fa.gz", length=2_000_000, seed=7, motifs=[])
    rankings = {
        name: rank_kmers(score(count_fasta(summary.fasta, 10, threads=2), 101), 6)
        for name, summary in (("planted", planted), ("control", control))
    }
    ranks = {name: ranking.rank for name, ranking in rankings.items()}
    sites: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with planted.truth.open() as table:
        for row in csv.DictReader(table, delimiter="\t"):
            site = row["sequence"]
            sites[row["motif_name"]].update(site[i : i + 6] for i in range(len(site) - 5))
    print(f"\nsimulated genome, 2 Mbp: worst rank {rankings['planted'].worst_rank} of 4096 6-mers")
    improved = 0
    for motif, kmers in sorted(sites.items()):
        codes = [ngram_code(kmer) for kmer, _ in kmers.most_common(10)]  # the motif's commonest site 6-mers
        with_motif, without = np.median(ranks["planted"][codes]), np.median(ranks["control"][codes])
        print(
            f"{motif:6} median rank of its 10 commonest site 6-mers: {with_motif:6.0f} (no motifs planted: {without:.0f})"
        )
        improved += with_motif < without
    assert improved == len(sites) == 6


def test_report_section_reads_the_ranking_through_the_package_reader(tmp_path, capsys):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\n" + "ACGTTGCAAT" * 400 + "\n")
    out = tmp_path / "npmi"
    assert main(["npmi", "--fasta", str(fasta), "--out", str(out), "--max-n", "6", "--min-count", "5"]) == 0
    figure, table = tmp_path / "npmi.png", tmp_path / "npmi.html"
    arguments = ["--ngrams", str(out / "ngrams.parquet"), "--figure", str(figure), "--table", str(table)]
    assert main(["report", "npmi", "--ranks", str(out / "kmer_ranks.tsv"), *arguments]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = next(line for line in (out / "kmer_ranks.tsv").read_text().splitlines()[1:])
    assert f"<td style='font-family:monospace'>{best.split()[0]}</td>" in table.read_text()
    capsys.readouterr()
    (tmp_path / "bad.tsv").write_text("kmer\tcount\tnpmi\trank\n")
    assert main(["report", "npmi", "--ranks", str(tmp_path / "bad.tsv"), *arguments]) == 2
    assert "no k-mer rows" in capsys.readouterr().err


def test_cli_defaults_are_the_library_defaults():
    import inspect

    from genemask.cli import build_parser

    args = build_parser("npmi").parse_args(["npmi", "--fasta", "g.fa", "--out", "o"])
    stage = inspect.signature(npmi_stage).parameters
    for option in ("max_n", "min_count", "k", "threads", "chromosomes"):
        assert getattr(args, option) == stage[option].default, option
