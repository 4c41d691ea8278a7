"""Precomputed masks (`genemask masks`), the mask store, and the statistics table (`genemask mask-stats`):
against on-the-fly masks, a brute-force oracle of the statistics, and the paper's first check on hg38."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from genemask.cli import build_parser, main
from genemask.genome.chunking import ChunkingOptions, chunk_genome
from genemask.genome.chunkstore import ChunkStore
from genemask.masking import registry
from genemask.masking.collator import MLMCollator
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.settings import MaskingSettings
from genemask.masking.statistics import mask_statistics
from genemask.masking.store import MaskStore, write_mask_store
from genemask.masking.strategies import Masker
from genemask.masking.tokenizer import N_SPECIAL, codes_to_token_ids
from genemask.masking.vocabulary import load_ngram_vocabulary
from genemask.options import options_from

STRATEGIES = registry.names(time_variant=False)  # every strategy with masks of its own, global included


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A chunk store of a random genome with a repeat planted, a 6-mer ranking and an n-gram table."""
    root = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(0)
    with (root / "genome.fa").open("w") as handle:
        for contig in range(2):
            seq = rng.choice(list("ACGT"), size=60_000)
            for start in rng.integers(0, 59_000, size=40):
                seq[start : start + 40] = list("CACACACACAGGCTTCAGCC" * 2)
            handle.write(f">c{contig}\n" + "".join(seq) + "\n")
    chunk_genome(root / "genome.fa", root / "chunks", ChunkingOptions(seed=1))
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    order = rng.permutation(len(kmers))
    ranks = pd.DataFrame({"kmer": kmers, "count": 200, "npmi": 0.0, "rank": np.minimum(order + 1, 4000)})
    ranks.to_csv(root / "kmer_ranks.tsv", sep="\t", index=False)
    ngrams = sorted({"".join(rng.choice(list("ACGT"), size=n)) for n in rng.integers(2, 11, size=3000)})
    pd.DataFrame(
        {
            "ngram": ngrams,
            "n": [len(g) for g in ngrams],
            "count": 150,
            "naive_pmi": 1.0,
            "pmi": 1.0,
            "npmi": rng.random(len(ngrams)),
        }
    ).to_parquet(root / "ngrams.parquet", index=False)
    return root


def run_masks(inputs, strategy, out, *extra):
    argv = [
        "masks",
        "--chunks",
        str(inputs / "chunks"),
        "--ranks",
        str(inputs / "kmer_ranks.tsv"),
        "--ngrams",
        str(inputs / "ngrams.parquet"),
        "--strategy",
        strategy,
        "--out",
        str(out),
        "--epochs",
        "2",
        "--seed",
        "5",
        *extra,
    ]
    assert main(argv) == 0
    return MaskStore.open(out)


@pytest.fixture(scope="module")
def stores(inputs):
    return {s: run_masks(inputs, s, inputs / "store" / s, "--threads", "2") for s in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_precomputed_masks_equal_on_the_fly(inputs, stores, strategy):
    store = stores[strategy]
    chunks = ChunkStore.open(inputs / "chunks", "train")
    assert (store.strategy, store.epochs, store.k, store.seed, len(store)) == (strategy, 2, 6, 5, len(chunks))
    masker = Masker(
        strategy,
        seed=5,
        rank_of_id=load_kmer_ranks(inputs / "kmer_ranks.tsv"),
        ngrams=load_ngram_vocabulary(inputs / "ngrams.parquet"),
    )
    for epoch in range(2):
        for index in range(0, len(chunks), 37):
            ids = codes_to_token_ids(chunks[index], 6)
            expected = masker(ids, np.array([0, len(ids)]), [index], epoch)
            assert (store.mask(epoch, index) == expected).all()
    assert not np.array_equal(store.masks(0, 0, len(store)), store.masks(1, 0, len(store)))
    assert isinstance(store.bits[0], np.memmap)
    assert store.bits[0].shape == ((int(store.token_offsets[-1]) + 7) // 8,)


def test_batches_and_threads_do_not_change_the_bits(inputs, stores, tmp_path):
    chunks = ChunkStore.open(inputs / "chunks", "train")
    masker = Masker("genemask", seed=5, rank_of_id=load_kmer_ranks(inputs / "kmer_ranks.tsv"))
    store = MaskStore.open(
        write_mask_store(chunks, masker, tmp_path / "odd", epochs=2, threads=1, batch_chunks=7)
    )
    for epoch in range(2):
        assert np.array_equal(np.asarray(store.bits[epoch]), np.asarray(stores["genemask"].bits[epoch]))


def test_collator_reads_the_store(inputs, stores):
    chunks = ChunkStore.open(inputs / "chunks", "train")
    examples = [
        {"input_ids": codes_to_token_ids(chunks[i], 6), "chunk_index": i, "epoch": 1} for i in (0, 3, 8, 21)
    ]
    ranks = inputs / "kmer_ranks.tsv"
    for strategy in ("random", "genemask"):
        from_store = MLMCollator(inputs / "store" / strategy)(examples)
        settings = MaskingSettings(strategy=strategy, seed=5, ranks=str(ranks))
        on_the_fly = MLMCollator(Masker.from_settings(settings))(examples)
        for key in from_store:
            assert (from_store[key] == on_the_fly[key]).all()
    with pytest.warns(UserWarning, match="reuse epoch"):
        MLMCollator(stores["random"])([dict(examples[0], epoch=2)])


def test_masks_cli_errors(inputs, tmp_path, capsys):
    chunks = str(inputs / "chunks")
    assert main(["masks", "--chunks", chunks, "--strategy", "genemask", "--out", str(tmp_path / "x")]) == 2
    assert "needs --ranks" in capsys.readouterr().err
    assert main(["masks", "--chunks", chunks, "--strategy", "pmi-vocab", "--out", str(tmp_path / "x")]) == 2
    assert "needs --ngrams" in capsys.readouterr().err
    assert (
        main(["masks", "--chunks", str(tmp_path), "--strategy", "random", "--out", str(tmp_path / "x")]) == 2
    )
    assert "missing" in capsys.readouterr().err
    assert (
        main(
            [
                "masks",
                "--chunks",
                chunks,
                "--strategy",
                "random",
                "--out",
                str(tmp_path / "x"),
                "--epochs",
                "0",
            ]
        )
        == 2
    )
    assert not (tmp_path / "x").exists()


def brute_force_statistics(chunks, store, rank_of_id):
    """Per-nucleotide reading of the definitions, one chunk at a time."""
    k = store.k
    tokens = masked = spans = masked_nt = hidden_nt = 0
    hidden_ranks = []
    for epoch in range(store.epochs):
        for index in range(len(chunks)):
            codes = chunks[index]
            mask = store.mask(epoch, index).tolist()
            n = len(mask)
            tokens += n
            masked += sum(mask)
            spans += sum(1 for t in range(n) if mask[t] and (t == 0 or not mask[t - 1]))
            hidden = []
            for i in range(len(codes)):
                covering = [mask[t] for t in range(max(0, i - k + 1), min(i, n - 1) + 1)]
                masked_nt += any(covering)
                hidden.append(all(covering))
            hidden_nt += sum(hidden)
            kmer_ids = codes_to_token_ids(codes, 6)
            hidden_ranks += [
                int(rank_of_id[kmer_ids[j]]) for j in range(len(kmer_ids)) if all(hidden[j : j + 6])
            ]
    return {
        "tokens": tokens,
        "masked_fraction": masked / tokens,
        "spans_per_sequence": spans / (len(chunks) * store.epochs),
        "hidden_nucleotide_fraction": hidden_nt / masked_nt,
        "hidden_6mers": len(hidden_ranks),
        "hidden_6mer_mean_rank": float(np.mean(hidden_ranks)),
        "hidden_6mer_median_rank": float(np.median(hidden_ranks)),
    }


@pytest.mark.parametrize("strategy", ["random", "genemask"])
def test_statistics_match_brute_force(inputs, stores, strategy):
    chunks = ChunkStore.open(inputs / "chunks", "valid")  # the small split keeps the oracle fast
    masker = Masker(strategy, seed=5, rank_of_id=load_kmer_ranks(inputs / "kmer_ranks.tsv"))
    store = MaskStore.open(write_mask_store(chunks, masker, inputs / f"valid-{strategy}", epochs=2))
    ranks = load_kmer_ranks(inputs / "kmer_ranks.tsv")
    row = mask_statistics(chunks, store, ranks)
    expected = brute_force_statistics(chunks, store, ranks)
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=0.5 if key.endswith("median_rank") else 1e-9), key
    assert sum(row[f"rank_decile_{d}"] for d in range(1, 11)) == pytest.approx(1.0)


def test_mask_stats_cli(inputs, stores, tmp_path):
    argv = [
        "mask-stats",
        "--chunks",
        str(inputs / "chunks"),
        "--ranks",
        str(inputs / "kmer_ranks.tsv"),
        "--out",
        str(tmp_path / "stats.tsv"),
    ]
    for strategy in STRATEGIES:
        argv += ["--masks", str(inputs / "store" / strategy)]
    assert main(argv) == 0
    table = pd.read_csv(tmp_path / "stats.tsv", sep="\t")
    assert table["strategy"].tolist() == list(STRATEGIES)
    assert table["masked_fraction"].between(0.12, 0.18).all()
    by_strategy = table.set_index("strategy")
    assert (
        by_strategy.loc["genemask", "hidden_6mer_mean_rank"]
        < 0.8 * by_strategy.loc["random", "hidden_6mer_mean_rank"]
    )
    assert (
        by_strategy.loc["genemask", "hidden_nucleotide_fraction"]
        > by_strategy.loc["random", "hidden_nucleotide_fraction"]
    )
    # global takes the best-ranked tokens of each sequence outright: better still than genemask's choice among
    # random candidates, and each centre hides all of its k-mer
    assert (
        by_strategy.loc["global", "hidden_6mer_mean_rank"]
        < 0.8 * by_strategy.loc["genemask", "hidden_6mer_mean_rank"]
    )


def test_hg38_slice_genemask_and_global_hide_better_ranked_6mers(hg38_slice, tmp_path):
    """The paper's first check on real sequence, with a ranking of the slice's own 6-mers by count (a stand-in
        for NPMI that needs no n-gram statistics): GeneMask's fully hidden 6-mers rank markedly better, global's
    better still."""
    chunk_genome(hg38_slice, tmp_path / "chunks", ChunkingOptions(seed=11))
    chunks = ChunkStore.open(tmp_path / "chunks", "valid")
    counts = np.bincount(codes_to_token_ids(chunks.seq, 6), minlength=N_SPECIAL + 4**6)[N_SPECIAL:]
    ranks = np.full(N_SPECIAL + 4**6, 4**6, dtype=np.int64)
    ranks[N_SPECIAL + np.argsort(-counts, kind="stable")] = np.arange(1, 4**6 + 1)
    rows = {}
    for strategy in ("random", "genemask", "global"):
        store = write_mask_store(
            chunks, Masker(strategy, seed=13, rank_of_id=ranks), tmp_path / strategy, epochs=2
        )
        rows[strategy] = mask_statistics(chunks, MaskStore.open(store), ranks)
    assert rows["genemask"]["hidden_6mer_mean_rank"] < 0.8 * rows["random"]["hidden_6mer_mean_rank"]
    assert rows["global"]["hidden_6mer_mean_rank"] < rows["genemask"]["hidden_6mer_mean_rank"]
    # m ~ Binomial(n, 0.0136) spans of 11 tokens would cover 15%, but the top-ranked tokens cluster (repeats), so
    # their spans overlap: about 10% of tokens are masked on this slice
    assert 0.08 < rows["global"]["masked_fraction"] < 0.16
    assert 0.13 < rows["random"]["masked_fraction"] < 0.16
    assert 0.14 < rows["genemask"]["masked_fraction"] < 0.18


def test_masks_cli_defaults_are_the_library_settings():
    args = build_parser("masks").parse_args(
        ["masks", "--chunks", "c", "--out", "o", "--strategy", "pmi-vocab"]
    )
    assert MaskingSettings(**options_from(args, MaskingSettings)) == MaskingSettings(strategy="pmi-vocab")
    args = build_parser("masks").parse_args(
        ["masks", "--chunks", "c", "--out", "o", "--strategy", "genemask", "--centre-probability", "0.05"]
    )
    assert MaskingSettings(**options_from(args, MaskingSettings)) == MaskingSettings(
        strategy="genemask", centre_probability=0.05
    )
