"""JASPAR motif enrichment: scoring against brute-force oracles, the statistics against scipy and hand
computations, input validation, and end-to-end runs where a known motif is put on top."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kmer_oracles import all_kmers, kmer_codes
from scipy import stats

from genemask.cli import main
from genemask.motifs import enrichment, jaspar
from genemask.ngrams.ranks import KmerRanking, read_kmer_ranks

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reverse_complement(kmer: str) -> str:
    return kmer.translate(COMPLEMENT)[::-1]


def oracle_alignments(kmer: str, pwm: np.ndarray) -> dict[tuple[int, int], float]:
    """Relative score of every alignment (strand, offset) of `kmer` against `pwm`, one base at a time."""
    k, length = len(kmer), len(pwm)
    column_min, column_max = pwm.min(axis=1), pwm.max(axis=1)
    scores = {}
    for strand, oriented in ((1, kmer), (-1, reverse_complement(kmer))):
        base = ["ACGT".index(c) for c in oriented]
        if length >= k:
            for offset in range(length - k + 1):
                score = sum(pwm[offset + j, base[j]] for j in range(k))
                low = sum(column_min[offset + j] for j in range(k))
                high = sum(column_max[offset + j] for j in range(k))
                scores[strand, offset] = (score - low) / (high - low)
        else:
            for start in range(k - length + 1):
                score = sum(pwm[j, base[start + j]] for j in range(length))
                scores[strand, -start] = (score - column_min.sum()) / (column_max.sum() - column_min.sum())
    return scores


HAND_COUNTS = {
    "short3": [[8, 0, 1, 1], [0, 0, 10, 0], [2, 5, 0, 3]],
    "same4": [[9, 1, 0, 0], [0, 7, 3, 0], [1, 1, 1, 7], [0, 2, 8, 0]],
    "long7": [
        [3, 3, 2, 2],
        [0, 10, 0, 0],
        [6, 0, 4, 0],
        [0, 0, 0, 10],
        [1, 8, 1, 0],
        [5, 5, 0, 0],
        [0, 1, 0, 9],
    ],
}


def hand_motifs() -> list[jaspar.Motif]:
    return [
        jaspar.Motif(f"HAND{i}", name, np.array(c, float)) for i, (name, c) in enumerate(HAND_COUNTS.items())
    ]


def test_log_odds_matches_hand_computation():
    counts = np.array([[8.0, 0.0, 1.0, 1.0]])
    background = np.array([0.3, 0.2, 0.2, 0.3])
    # p(A) = (8 + 0.8 * 0.3) / (10 + 0.8); p(C) = (0 + 0.8 * 0.2) / 10.8
    expected = np.log(np.array([8.24, 0.16, 1.16, 1.24]) / 10.8 / background)
    np.testing.assert_allclose(jaspar.log_odds(counts, background, 0.8)[0], expected)


@pytest.mark.parametrize("background", ["uniform", "human"])
def test_scores_match_brute_force_oracle_for_every_4mer(background):
    bg = jaspar.parse_background(background)
    hand = hand_motifs()
    kmers = all_kmers(4)
    scores = jaspar.score_kmers(kmer_codes(kmers), hand, bg, pseudocount=0.8)
    for j, motif in enumerate(hand):
        pwm = jaspar.log_odds(motif.counts, bg, 0.8)
        for i, kmer in enumerate(kmers):
            alignments = oracle_alignments(kmer, pwm)
            best = max(alignments.values())
            assert scores.relative[i, j] == pytest.approx(best, abs=1e-5), (motif.name, kmer)
            chosen = (int(scores.strand[i, j]), int(scores.offset[i, j]))
            assert alignments[chosen] == pytest.approx(best, abs=1e-5), (motif.name, kmer, chosen)


def test_known_alignments_strand_and_offset():
    hand = hand_motifs()
    uniform = jaspar.parse_background("uniform")
    kmers = ["CATC", "GATG", "AGTC", "AAAGTCAA"]  # long7 consensus CATC at 1; its reverse complement; short3
    four = jaspar.score_kmers(kmer_codes(kmers[:3]), hand, uniform, 0.8)
    assert (four.relative[0, 2], four.strand[0, 2], four.offset[0, 2]) == (pytest.approx(1.0), 1, 1)
    assert (four.relative[1, 2], four.strand[1, 2], four.offset[1, 2]) == (pytest.approx(1.0), -1, 1)
    eight = jaspar.score_kmers(kmer_codes(kmers[3:]), hand, uniform, 0.8)
    # short3 (consensus AGC) sits at k-mer position 2 of AAAGTCAA as AGT: G is exact, T scores below C.
    assert eight.strand[0, 0] == 1 and eight.offset[0, 0] == -2


def test_blocked_scoring_equals_one_block(monkeypatch):
    selected = jaspar.load_jaspar(motif_ids=["MA0139.2", "MA0035.5", "MA0018.5", "MA0004.1"])
    codes = kmer_codes(all_kmers(5))
    uniform = jaspar.parse_background("uniform")
    whole = jaspar.score_kmers(codes, selected, uniform, 0.8)
    monkeypatch.setattr(jaspar, "_BLOCK_ELEMENTS", 1)  # one motif per block
    blocked = jaspar.score_kmers(codes, selected, uniform, 0.8)
    # float32 matrix products of different block shapes may round differently (BLAS kernels differ by
    # machine), so the scores agree to a tolerance; strand and offset may then differ only on near-ties.
    np.testing.assert_allclose(whole.relative, blocked.relative, rtol=1e-6, atol=1e-6)
    same_choice = (whole.strand == blocked.strand) & (whole.offset == blocked.offset)
    assert same_choice.mean() > 0.99


def test_benjamini_hochberg_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.5])
    # sorted 0.01 0.03 0.04 0.2 0.5 -> p*5/i = 0.05 0.075 0.0667 0.25 0.5 -> running min from the right
    expected = [0.05, 0.2 / 3, 0.2 / 3, 0.25, 0.5]
    np.testing.assert_allclose(enrichment.benjamini_hochberg(p), expected)
    rng = np.random.default_rng(3)
    random_p = rng.uniform(size=200) ** 3
    np.testing.assert_allclose(
        enrichment.benjamini_hochberg(random_p), stats.false_discovery_control(random_p)
    )


def test_hypergeometric_p_and_odds_ratio_against_scipy():
    rng = np.random.default_rng(5)
    hits = rng.uniform(size=(300, 6)) < np.array([0.02, 0.1, 0.3, 0.5, 0.0, 1.0])
    top = np.zeros(300, dtype=bool)
    top[:40] = True
    hits[:40, 1] = rng.uniform(size=40) < 0.6  # column 1 enriched in the top
    hits_top, hits_all, odds_ratio, p = enrichment.hypergeometric_enrichment(hits, top)
    for j in range(6):
        x, big_k = int(hits[top, j].sum()), int(hits[:, j].sum())
        assert (hits_top[j], hits_all[j]) == (x, big_k)
        assert p[j] == pytest.approx(stats.hypergeom.sf(x - 1, 300, big_k, 40), rel=1e-9)
        table = [[x, 40 - x], [big_k - x, 260 - big_k + x]]
        assert p[j] == pytest.approx(stats.fisher_exact(table, alternative="greater").pvalue, rel=1e-6)
        if min(min(row) for row in table) > 0:
            assert odds_ratio[j] == pytest.approx(
                stats.contingency.odds_ratio(table, kind="sample").statistic
            )
    assert p[1] < 1e-6 and p[4] == 1.0 and p[5] == 1.0


def test_rank_test_against_scipy_mannwhitneyu():
    rng = np.random.default_rng(11)
    rank = np.concatenate([np.arange(1, 201), np.full(56, 201)])  # tied worst rank, as below the threshold
    hits = rng.uniform(size=(256, 4)) < 0.2
    hits[:30, 0] = True  # hits of motif 0 crowd the top
    hits[:, 3] = False
    p = enrichment.rank_enrichment(hits, rank)
    for j in range(3):
        expected = stats.mannwhitneyu(
            rank[hits[:, j]], rank[~hits[:, j]], alternative="less", method="asymptotic"
        ).pvalue
        assert p[j] == pytest.approx(expected, rel=1e-9)
    assert p[0] < 1e-6 and p[3] == 1.0


def write_ranks(path: Path, kmers: list[str], order: np.ndarray, n_ranked: int | None = None) -> None:
    """kmer_ranks.tsv ranking `order` (indices into kmers) best first; past n_ranked: tied worst, no NPMI."""
    n = len(kmers)
    n_ranked = n if n_ranked is None else n_ranked
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.minimum(np.arange(1, n + 1), n_ranked + 1)
    npmi = np.where(rank <= n_ranked, 1 - rank / n, np.nan)
    frame = pd.DataFrame({"kmer": kmers, "count": 1000, "npmi": npmi, "rank": rank})
    frame.to_csv(path, sep="\t", index=False, na_rep="")


@pytest.fixture(scope="module")
def vertebrates() -> list[jaspar.Motif]:
    return jaspar.load_jaspar("JASPAR2024", "CORE", "vertebrates")


def test_jaspar_vertebrates_release(vertebrates):
    assert len(vertebrates) == 879  # JASPAR2024 CORE vertebrates, latest versions
    ctcf = next(m for m in vertebrates if m.motif_id == "MA0139.2")
    assert ctcf.name == "CTCF" and ctcf.length == 15


def planted_ranking(motif: jaspar.Motif, n_top: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All 6-mers, best first: n_top random hits of `motif` on top, then the others by similarity plus noise,
    as a real NPMI ranking would keep k-mers resembling an over-represented motif high."""
    kmers = all_kmers(6)
    relative = jaspar.score_kmers(kmer_codes(kmers), [motif], jaspar.parse_background("uniform"), 0.8)
    similarity = relative.relative[:, 0]
    rng = np.random.default_rng(seed)
    top = rng.choice(np.flatnonzero(similarity >= 0.85), size=n_top, replace=False)
    rest = np.setdiff1d(np.arange(len(kmers)), top)
    rest = rest[np.argsort(-(similarity[rest] + rng.normal(0, 0.3, rest.size)), kind="stable")]
    return kmers, np.concatenate([top, rest]), top


def test_planted_ctcf_on_top_end_to_end(tmp_path, vertebrates):
    ctcf = next(m for m in vertebrates if m.motif_id == "MA0139.2")
    kmers, order, top = planted_ranking(ctcf, n_top=60, seed=23)
    ranks = tmp_path / "kmer_ranks.tsv"
    write_ranks(ranks, kmers, order, n_ranked=3000)
    out = tmp_path / "motifs"
    # the planted k-mers score >= 0.85, below the default threshold (0.95)
    argv = [
        "motifs",
        "--ranks",
        str(ranks),
        "--out",
        str(out),
        "--top-n",
        "100",
        "--logos",
        "3",
        "--threshold",
        "0.85",
    ]
    assert main(argv) == 0

    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert list(table.columns) == list(enrichment.ENRICHMENT_COLUMNS)
    assert len(table) == 879
    assert table["motif_id"].iloc[0] == "MA0139.2"
    assert table["q_hypergeom"].iloc[0] < 0.01 and table["q_rank"].iloc[0] < 0.01
    assert table["hits_top"].iloc[0] >= top.size
    assert (np.diff(table["p_hypergeom"]) >= 0).all()

    per_kmer = pd.read_csv(out / "kmer_best_motifs.tsv", sep="\t")
    assert len(per_kmer) == 100 and list(per_kmer["rank"]) == list(range(1, 101))
    assert set(per_kmer["kmer"]) >= {kmers[i] for i in top}
    assert (per_kmer["motif1_score"] >= per_kmer["motif2_score"]).all()
    assert (per_kmer["motif2_score"] >= per_kmer["motif3_score"]).all()
    assert set(per_kmer["motif1_strand"]) <= {"+", "-"}
    for name in ("enrichment.png", "logos.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.html").read_text()
    assert "MA0139.2" in report and "data:image/png;base64," in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["top_motifs"][0] == "MA0139.2" and summary["motifs"] == 879
    assert not list(out.glob(".*.tmp"))


def test_planted_gata1_is_the_top_motif(tmp_path, vertebrates):
    gata1 = next(m for m in vertebrates if m.motif_id == "MA0035.5")
    kmers, order, top = planted_ranking(gata1, n_top=30, seed=31)
    ranks = tmp_path / "kmer_ranks.tsv"
    write_ranks(ranks, kmers, order)
    # planted at scores >= 0.85, below the default threshold
    result = enrichment.motif_enrichment(read_kmer_ranks(ranks), vertebrates, top_n=100, threshold=0.85)
    best = result.table.iloc[0]
    assert best["motif_id"] == "MA0035.5" and best["q_hypergeom"] < 0.01 and best["q_rank"] < 0.01


def test_random_ranking_enriches_nothing(tmp_path):
    kmers = all_kmers(6)
    ranks = tmp_path / "kmer_ranks.tsv"
    write_ranks(ranks, kmers, np.random.default_rng(29).permutation(len(kmers)))
    out = tmp_path / "motifs"
    ids = ["MA0139.2", "MA0035.5", "MA0076.3", "MA0018.5", "MA0106.3"]
    assert (
        main(["motifs", "--ranks", str(ranks), "--out", str(out), "--motif-ids", *ids, "--logos", "2"]) == 0
    )
    table = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert sorted(table["motif_id"]) == sorted(ids)
    assert (table["q_hypergeom"] > 0.05).all() and (table["q_rank"] > 0.05).all()


def test_top_n_beyond_ranked_kmers_is_a_user_error(tmp_path, capsys):
    kmers = all_kmers(3)
    ranks = tmp_path / "kmer_ranks.tsv"
    write_ranks(ranks, kmers, np.arange(64), n_ranked=20)
    code = main(["motifs", "--ranks", str(ranks), "--out", str(tmp_path / "o"), "--motif-ids", "MA0139.2"])
    assert code == 2
    assert "top-n 100: expected 1..20" in capsys.readouterr().err
    assert not (tmp_path / "o" / "enrichment.tsv").exists()


def good_ranks_text(k: int = 3) -> list[str]:
    return ["kmer\tcount\tnpmi\trank"] + [f"{m}\t200\t0.5\t{i + 1}" for i, m in enumerate(all_kmers(k))]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--motif-ids", "MA9999.1"], "MA9999.1 not found"),
        (["--release", "JASPAR1999"], "JASPAR1999"),
        (["--background", "0.5,0.5,0.5,0.5"], "background"),
        (["--threshold", "1.5"], "--threshold: expected a finite number in (0, 1], got 1.5"),
        (["--ranks", "/nonexistent/kmer_ranks.tsv"], "no such file"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv, message):
    ranks = tmp_path / "kmer_ranks.tsv"
    ranks.write_text("\n".join(good_ranks_text()) + "\n")
    code = main(["motifs", "--ranks", str(ranks), "--out", str(tmp_path / "o"), "--top-n", "10", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith("genemask motifs: error:")
    assert err.count("\n") == 1


@pytest.mark.slow
def test_planted_motifs_come_out_on_top_of_simulated_genome(tmp_path):
    """simulate-genome -> npmi -> motifs. At the default density (200 sites per motif per Mb) repeats own the
    top of the NPMI ranking, so the sites are planted densely enough for their 6-mers to reach the top 100;
    a strict threshold keeps each motif's hit set small enough to tell families apart."""
    fasta, npmi, out = tmp_path / "genome.fa.gz", tmp_path / "npmi", tmp_path / "motifs"
    simulate = ["--length", "600000", "--seed", "3", "--motif-density", "3000"]
    assert main(["simulate-genome", "--out", str(fasta), *simulate]) == 0
    planted = sorted(set(pd.read_csv(tmp_path / "genome.motifs.tsv", sep="\t")["motif_id"]))
    assert len(planted) >= 5
    assert main(["npmi", "--fasta", str(fasta), "--out", str(npmi), "--max-n", "6"]) == 0
    settings = ["--top-n", "100", "--threshold", "0.95", "--logos", "0"]
    assert main(["motifs", "--ranks", str(npmi / "kmer_ranks.tsv"), "--out", str(out), *settings]) == 0

    table = pd.read_csv(out / "enrichment.tsv", sep="\t").set_index("motif_id")
    rank = pd.Series(np.arange(1, len(table) + 1), index=table.index)
    assert (table.loc[planted, "q_hypergeom"] < 1e-3).all(), table.loc[planted]
    # Family members share the planted cores (GATA1-6, the ETS factors), so a planted motif need not be first
    # of its family; it must still stand out among the 879 vertebrate motifs.
    assert (rank[planted] <= 60).all(), rank[planted]
    assert np.median(rank[planted]) <= 10, rank[planted]
    assert rank[planted].min() <= 3


def test_ranking_codes_follow_kmer_order_and_reverse_complement():
    ranking = KmerRanking(2, np.zeros(16, np.int64), np.ones(16), np.arange(1, 17))
    assert ranking.kmers.tolist() == all_kmers(2)
    assert [tuple(c) for c in ranking.codes] == list(itertools.product(range(4), repeat=2))
    np.testing.assert_array_equal(jaspar.reverse_complement_codes(kmer_codes(["AACG"])), kmer_codes(["CGTT"]))


def test_cli_defaults_are_the_library_defaults():
    import inspect

    from genemask.cli import build_parser
    from genemask.motifs import plots

    args = build_parser("motifs").parse_args(["motifs", "--ranks", "r.tsv", "--out", "o"])
    library = {
        **inspect.signature(jaspar.load_jaspar).parameters,
        **inspect.signature(enrichment.motif_enrichment).parameters,
        **inspect.signature(plots.write_outputs).parameters,
    }
    for option, name in [
        ("release", "release"),
        ("collection", "collection"),
        ("tax_group", "tax_group"),
        ("top_n", "top_n"),
        ("threshold", "threshold"),
        ("pseudocount", "pseudocount"),
        ("fdr", "fdr"),
        ("logos", "n_logos"),
    ]:
        assert getattr(args, option) == library[name].default, option
    default_background = jaspar.parse_background(args.background)
    np.testing.assert_array_equal(default_background, jaspar.parse_background(jaspar.DEFAULT_BACKGROUND))
