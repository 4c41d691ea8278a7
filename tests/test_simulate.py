"""`genemask simulate-genome`: determinism, human-like composition, soft-masking, N runs, planted sites."""

from __future__ import annotations

import csv
import gzip
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from genemask.cli import main
from genemask.commands import simulate_genome as command
from genemask.errors import UserError
from genemask.genome import simulate
from genemask.genome.fasta import read_fasta

LENGTH = 200_000
COMPLEMENT = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> simulate.SimulationSummary:
    return simulate.simulate_genome(tmp_path_factory.mktemp("sim") / "genome.fa.gz", length=LENGTH, seed=3)


@pytest.fixture(scope="module")
def contigs(genome: simulate.SimulationSummary) -> dict[str, str]:
    return {contig.name: contig.seq.tobytes().decode() for contig in read_fasta(genome.fasta)}


@pytest.fixture(scope="module")
def raw_text(genome: simulate.SimulationSummary) -> str:
    return gzip.decompress(genome.fasta.read_bytes()).decode()


@pytest.fixture(scope="module")
def truth(genome: simulate.SimulationSummary) -> list[dict[str, str]]:
    with genome.truth.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_same_seed_gives_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    outputs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        summary = simulate.simulate_genome(tmp_path / name / "g.fa.gz", length=LENGTH, seed=seed)
        outputs[name] = (summary.fasta.read_bytes(), summary.truth.read_bytes())
    assert outputs["a"] == outputs["b"]
    assert outputs["a"][0] != outputs["c"][0]
    assert outputs["a"][1] != outputs["c"][1]


def test_gzip_header_has_no_time_stamp_or_file_name(genome: simulate.SimulationSummary) -> None:
    header = genome.fasta.read_bytes()[:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[3] & 0x08 == 0  # FNAME flag
    assert header[4:8] == b"\0\0\0\0"  # MTIME


def test_contigs_are_unequal_and_lines_are_60_nt(
    genome: simulate.SimulationSummary, contigs: dict[str, str], raw_text: str
) -> None:
    assert list(contigs) == ["chr1", "chr2", "chr3", "chr4"]
    lengths = [len(seq) for seq in contigs.values()]
    assert sum(lengths) == LENGTH and len(set(lengths)) == 4
    assert genome.contig_lengths == dict(zip(contigs, lengths, strict=True))
    for record in raw_text.split(">")[1:]:
        lines = record.rstrip("\n").split("\n")[1:]
        assert {len(line) for line in lines[:-1]} == {60}
        assert 1 <= len(lines[-1]) <= 60


def test_composition_is_human_like(genome: simulate.SimulationSummary, contigs: dict[str, str]) -> None:
    text = "".join(contigs.values())
    counts = {base: text.count(base) for base in "ACGT"}
    acgt = sum(counts.values())
    gc = (counts["C"] + counts["G"]) / acgt
    # Brute-force oracle: adjacent pairs of A/C/G/T within each contig.
    pairs = [a + b for seq in contigs.values() for a, b in pairwise(seq) if a in "ACGT" and b in "ACGT"]
    cpg = pairs.count("CG") / len(pairs)
    cpg_observed_expected = cpg / (counts["C"] / acgt * counts["G"] / acgt)
    assert 0.39 <= gc <= 0.43
    assert 0.1 < cpg_observed_expected < 0.4
    assert genome.gc_fraction == pytest.approx(gc, abs=1e-9)
    assert genome.cpg_observed_expected == pytest.approx(cpg_observed_expected, rel=0.02)


def test_soft_masking_and_n_runs(
    genome: simulate.SimulationSummary, contigs: dict[str, str], raw_text: str
) -> None:
    sequence_text = "".join(line for line in raw_text.split("\n") if not line.startswith(">"))
    lower = sum(sequence_text.count(base) for base in "acgt")
    assert 0.15 < lower / LENGTH < 0.7
    assert "n" not in sequence_text
    for seq in contigs.values():
        assert seq.startswith("N" * 100), "every contig starts with a telomere-like N run"
    internal_runs = sum(seq.lstrip("N").count("AN") + seq.lstrip("N").count("CN") for seq in contigs.values())
    internal_runs += sum(
        seq.lstrip("N").count("GN") + seq.lstrip("N").count("TN") for seq in contigs.values()
    )
    assert internal_runs >= len(contigs), "at least one internal gap per contig"
    assert 0 < genome.n_fraction < 0.1


def test_simple_and_interspersed_repeats_are_present(contigs: dict[str, str]) -> None:
    text = "|".join(contigs.values())
    # Runs this long are essentially impossible in the Markov background (P < 1e-9 per position).
    assert text.count("CA" * 10) + text.count("TG" * 10) > 0
    assert text.count("A" * 20) + text.count("T" * 20) > 0
    # Interspersed copies share exact 16-mers of mixed composition; chance repeats of a 16-mer are rare
    # (~5 pairs expected in 200 kb) and almost never reach 3 copies.
    code_of = np.full(256, 4, dtype=np.int64)
    code_of[np.frombuffer(b"ACGT", dtype=np.uint8)] = np.arange(4)
    windows = np.lib.stride_tricks.sliding_window_view(
        code_of[np.frombuffer(text.encode(), dtype=np.uint8)], 16
    )
    windows = windows[(windows < 4).all(axis=1)]
    distinct_bases = sum((windows == base).any(axis=1).astype(int) for base in range(4))
    keys = windows[distinct_bases >= 3] @ (4 ** np.arange(16, dtype=np.int64))
    _, counts = np.unique(keys, return_counts=True)
    assert (counts >= 3).sum() > 100


def test_truth_table_matches_the_fasta(
    genome: simulate.SimulationSummary, contigs: dict[str, str], truth: list[dict[str, str]]
) -> None:
    assert genome.truth == genome.fasta.with_name("genome.motifs.tsv")
    header = genome.truth.read_text().split("\n", 1)[0]
    assert header == "contig\tstart\tend\tstrand\tmotif_id\tmotif_name\tsequence"
    motifs = {motif.motif_id: motif for motif in genome.motifs}
    assert list(motifs) == list(simulate.DEFAULT_MOTIFS)
    expected_count = round(simulate.DEFAULT_INSTANCES_PER_MB * LENGTH / 1e6)
    assert genome.planted == dict.fromkeys(motifs, expected_count)
    assert len(truth) == expected_count * len(motifs)
    order = list(contigs)
    keys = [(order.index(row["contig"]), int(row["start"])) for row in truth]
    assert keys == sorted(keys)
    previous_end = {name: 0 for name in contigs}
    for row in truth:
        start, end = int(row["start"]), int(row["end"])
        seq = contigs[row["contig"]]
        assert row["sequence"] == seq[start:end]
        assert end - start == motifs[row["motif_id"]].probabilities.shape[0]
        assert row["motif_name"] == motifs[row["motif_id"]].name
        assert "N" not in row["sequence"]
        assert start >= previous_end[row["contig"]], "sites do not overlap"
        previous_end[row["contig"]] = end
    assert {row["strand"] for row in truth} == {"+", "-"}


def test_planted_sites_follow_the_matrix_in_their_orientation(
    genome: simulate.SimulationSummary, truth: list[dict[str, str]]
) -> None:
    """Reverse-complementing '-' rows gives the motif-oriented site: it outscores its own complement."""
    motifs = {motif.motif_id: motif for motif in genome.motifs}
    asymmetric = {"MA0139.2", "MA0079.5", "MA0482.3", "MA0098.4"}  # CTCF, SP1, GATA4, ETS1
    wins = total = 0
    for row in truth:
        if row["motif_id"] not in asymmetric:
            continue
        log_odds = np.log2((motifs[row["motif_id"]].probabilities + 0.01) / 0.25)
        forward = row["sequence"]
        reverse = forward.translate(COMPLEMENT)[::-1]
        oriented, flipped = (forward, reverse) if row["strand"] == "+" else (reverse, forward)

        def score(site: str, log_odds: np.ndarray = log_odds) -> float:
            return float(log_odds[np.arange(len(site)), ["ACGT".index(base) for base in site]].sum())

        wins += score(oriented) > score(flipped)
        total += 1
    assert wins / total > 0.9


def test_unknown_motif_id_via_cli_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "g.fa.gz"
    code = main(
        ["simulate-genome", "--out", str(out), "--length", str(LENGTH), "--motifs", "MA0139.2,MA9999.9"]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and "MA9999.9" in error
    assert error.startswith("genemask simulate-genome: error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"length": 1000}, "--length 1000"),
        ({"length": -5}, "--length -5"),
        ({"n_contigs": 0}, "--contigs 0"),
        ({"jaspar_release": "JASPAR1999"}, "JASPAR1999"),
        ({"instances_per_mb": -1.0}, "--motif-density"),
        ({"motifs": ["MA0139.2", "MA0139"]}, "listed twice"),
    ],
)
def test_bad_arguments_raise_user_error(tmp_path: Path, arguments: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        simulate.simulate_genome(tmp_path / "g.fa.gz", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_both_files_with_custom_motifs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small.fa.gz"
    arguments = ["--length", "100000", "--contigs", "2", "--motifs", "MA0105.4", "--motif-density", "300"]
    assert main(["simulate-genome", "--out", str(out), *arguments]) == 0
    assert "MA0105.4 NFKB1" in capsys.readouterr().out
    assert [contig.name for contig in read_fasta(out)] == ["chr1", "chr2"]
    rows = (tmp_path / "small.motifs.tsv").read_text().splitlines()[1:]
    assert len(rows) == 30 and {row.split("\t")[4] for row in rows} == {"MA0105.4"}
    assert main(["simulate-genome", "--out", str(tmp_path / "bad.fa.gz"), "--contigs", "0"]) == 2


def test_cli_defaults_match_the_library() -> None:
    assert command.DEFAULT_MOTIFS.split(",") == list(simulate.DEFAULT_MOTIFS)
    from genemask.options import schema_setting

    assert schema_setting("genome.simulate.length")["default"] == simulate.DEFAULT_LENGTH
    assert schema_setting("genome.simulate.contigs")["default"] == simulate.DEFAULT_CONTIGS
    assert schema_setting("genome.simulate.jaspar_release")["default"] == simulate.DEFAULT_JASPAR_RELEASE
    assert schema_setting("genome.simulate.motif_density")["default"] == simulate.DEFAULT_INSTANCES_PER_MB


@pytest.mark.parametrize(
    ("out", "table"),
    [("x/genome.fa.gz", "x/genome.motifs.tsv"), ("g.fasta.gz", "g.motifs.tsv"), ("g.gz", "g.motifs.tsv")],
)
def test_truth_table_path(out: str, table: str) -> None:
    assert simulate.truth_table_path(out) == Path(table)
