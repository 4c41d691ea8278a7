"""Chunking invariants against a brute-force reading of the genome, and the real hg38 slice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genemask.genome.chunking import ChunkingOptions, chunk_genome
from genemask.genome.chunkstore import ChunkStore
from genemask.genome.fasta import encode, read_fasta


def random_genome(path, seed: int = 1, n_contigs: int = 3) -> dict[str, np.ndarray]:
    """Contigs with N runs, IUPAC letters, lower case and a tiny ACGT island between gaps."""
    rng = np.random.default_rng(seed)
    contigs = {}
    with path.open("w") as handle:
        for i in range(n_contigs):
            length = int(rng.integers(3_000, 20_000))
            seq = rng.choice(list("ACGTacgt"), size=length)
            for _ in range(4):
                start = int(rng.integers(0, length - 300))
                seq[start : start + int(rng.integers(1, 300))] = "N"
            seq[int(rng.integers(0, length))] = "R"
            if i == 0:
                seq[100:110] = list("NNNNACGNNN")  # a 3-nt island: too short for a chunk
            text = "".join(seq)
            contigs[f"c{i}"] = encode(np.frombuffer(text.upper().encode(), np.uint8))
            handle.write(f">c{i}\n" + "\n".join(text[j : j + 60] for j in range(0, length, 60)) + "\n")
    return contigs


def all_chunks(directory):
    rows = []
    for split in ("train", "valid"):
        store = ChunkStore.open(directory, split)
        for i in range(len(store)):
            rows.append((int(store.contig[i]), int(store.start[i]), store[i], split))
    return rows


def test_chunk_invariants_against_the_genome(tmp_path):
    genome = random_genome(tmp_path / "g.fa")
    summary = chunk_genome(tmp_path / "g.fa", tmp_path / "out", ChunkingOptions(seed=5))
    names = list(genome)
    coverage = {name: np.zeros(len(codes), np.int64) for name, codes in genome.items()}
    for contig_id, start, codes, _ in all_chunks(tmp_path / "out"):
        name = names[contig_id]
        assert 6 <= len(codes) <= 511
        np.testing.assert_array_equal(codes, genome[name][start : start + len(codes)])  # no non-ACGT inside
        coverage[name][start : start + len(codes)] += 1
    acgt = sum(int((codes < 4).sum()) for codes in genome.values())
    kept = sum(int(c.sum()) for c in coverage.values())
    assert max(int(c.max()) for c in coverage.values()) == 1  # no overlap: every kept base exactly once
    assert summary["bases_acgt"] == acgt
    assert summary["bases_kept"] == kept
    assert (
        summary["bases_acgt"] == summary["bases_kept"] + summary["bases_skipped"] + summary["bases_duplicate"]
    )
    assert summary["bases_skipped"] > 0  # start offsets and the 3-nt island
    assert coverage["c0"][104:107].sum() == 0
    total = summary["chunks_train"] + summary["chunks_valid"]
    assert 0.03 < summary["chunks_valid"] / total < 0.25


def test_same_seed_same_bytes_other_seed_other_chunks(tmp_path):
    random_genome(tmp_path / "g.fa")
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        chunk_genome(tmp_path / "g.fa", tmp_path / name, ChunkingOptions(seed=seed))
    for file in ("train.seq.npy", "train.offsets.npy", "valid.seq.npy", "summary.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "train.offsets.npy").read_bytes() != (
        tmp_path / "c" / "train.offsets.npy"
    ).read_bytes()


def test_split_depends_on_content_only(tmp_path):
    random_genome(tmp_path / "g.fa")
    chunk_genome(tmp_path / "g.fa", tmp_path / "all", ChunkingOptions(seed=3))
    chunk_genome(tmp_path / "g.fa", tmp_path / "one", ChunkingOptions(seed=3), chromosomes=["c1"])
    in_all = {
        (start, codes.tobytes(), split)
        for cid, start, codes, split in all_chunks(tmp_path / "all")
        if cid == 1
    }
    in_one = {(start, codes.tobytes(), split) for _, start, codes, split in all_chunks(tmp_path / "one")}
    assert in_one == in_all


def test_duplicates_are_removed_and_counted(tmp_path):
    unit = "ACGTTGCAAC"
    (tmp_path / "rep.fa").write_text(">r\n" + unit * 500 + "\n")
    options = ChunkingOptions(seed=1, min_length=10, max_length=10)
    summary = chunk_genome(tmp_path / "rep.fa", tmp_path / "out", options)
    chunks = {codes.tobytes() for *_, codes, _ in all_chunks(tmp_path / "out")}
    assert summary["chunks_train"] + summary["chunks_valid"] == len(chunks) == 1
    assert summary["bases_duplicate"] >= 4_900 - 1_000
    assert (
        summary["bases_acgt"] == summary["bases_kept"] + summary["bases_skipped"] + summary["bases_duplicate"]
    )


def test_delete_mode_glues_across_gaps_like_the_published_code(tmp_path):
    genome = random_genome(tmp_path / "g.fa")
    summary = chunk_genome(tmp_path / "g.fa", tmp_path / "out", ChunkingOptions(seed=2, non_acgt="delete"))
    glued = {name: codes[codes < 4] for name, codes in genome.items()}
    assert (
        summary["bases_acgt"] == summary["bases_kept"] + summary["bases_skipped"] + summary["bases_duplicate"]
    )
    names = list(genome)
    crossing = 0
    for contig_id, start, codes, _ in all_chunks(tmp_path / "out"):
        source = genome[names[contig_id]]
        assert source[start] == codes[0]  # starts are recorded in contig coordinates
        crossing += bool((source[start : start + len(codes)] >= 4).any())
        assert codes.tobytes() in glued[names[contig_id]].tobytes()
    assert crossing > 0


def test_random_sampling_pass_adds_about_the_asked_coverage(tmp_path):
    random_genome(tmp_path / "g.fa")
    plain = chunk_genome(tmp_path / "g.fa", tmp_path / "plain", ChunkingOptions(seed=2))
    sampled = chunk_genome(
        tmp_path / "g.fa", tmp_path / "s", ChunkingOptions(seed=2, random_sampling_coverage=2.0)
    )
    assert sampled["bases_kept"] == plain["bases_kept"]  # the non-overlapping cut is unchanged
    assert 1.5 < sampled["bases_sampled"] / sampled["bases_acgt"] < 2.2
    for *_, codes, _ in all_chunks(tmp_path / "s"):
        assert 6 <= len(codes) <= 511 and codes.max() < 4


def test_hg38_slice_keeps_nearly_every_base(tmp_path, hg38_slice):
    summary = chunk_genome(hg38_slice, tmp_path / "out", ChunkingOptions(seed=0))
    assert summary["bases_acgt"] == 2_323_275
    assert (
        summary["bases_acgt"] == summary["bases_kept"] + summary["bases_skipped"] + summary["bases_duplicate"]
    )
    assert summary["bases_kept"] / summary["bases_acgt"] >= 0.99
    (contig,) = read_fasta(hg38_slice)
    store = ChunkStore.open(tmp_path / "out", "train")
    codes = encode(contig.seq)
    for i in range(0, len(store), 97):
        start = int(store.start[i])
        np.testing.assert_array_equal(store[i], codes[start : start + len(store[i])])
    print(
        f"\nhg38 slice: bases_acgt={summary['bases_acgt']:,} kept={summary['bases_kept']:,} "
        f"chunks train={summary['chunks_train']:,} valid={summary['chunks_valid']:,}"
    )
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary


@pytest.mark.parametrize("bad", [{"non_acgt": "keep"}, {"valid_fraction": 1.5}, {"min_length": 0}])
def test_bad_options_are_user_errors(bad):
    from genemask.errors import UserError

    with pytest.raises(UserError):
        ChunkingOptions(**bad)


def test_cli_defaults_are_the_library_defaults():
    import dataclasses

    from genemask.cli import build_parser

    args = build_parser("chunk").parse_args(["chunk", "--fasta", "g.fa", "--out", "o"])
    for field in dataclasses.fields(ChunkingOptions):
        assert getattr(args, field.name) == field.default, field.name


def test_contigs_tsv_names_every_contig_and_the_store_has_a_format(tmp_path):
    genome = random_genome(tmp_path / "g.fa")
    chunk_genome(tmp_path / "g.fa", tmp_path / "out", ChunkingOptions(seed=5))
    rows = [line.split("\t") for line in (tmp_path / "out" / "contigs.tsv").read_text().splitlines()]
    assert rows[0] == ["name", "original_name", "length", "bases_acgt"]
    assert [row[0] for row in rows[1:]] == list(genome) == [row[1] for row in rows[1:]]
    assert [int(row[2]) for row in rows[1:]] == [len(codes) for codes in genome.values()]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["format_version"] == 1
