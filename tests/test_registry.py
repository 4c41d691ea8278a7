"""The strategy registry: the schema, the command lines and the workflow agree with it, and a strategy added
through the registry alone runs through `genemask masks`, the masking statistics and the collator."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from genemask.cli import build_parser, main
from genemask.config import SCHEMA, load_schema
from genemask.errors import UserError
from genemask.genome.chunking import ChunkingOptions, chunk_genome
from genemask.genome.chunkstore import ChunkStore
from genemask.masking import registry
from genemask.masking.collator import MLMCollator
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.registry import Parameter, Strategy
from genemask.masking.statistics import statistics_table
from genemask.masking.store import MaskStore
from genemask.masking.strategies import Masker
from genemask.masking.tokenizer import codes_to_token_ids

STUDY = ("random", "genemask", "genemask-as-released", "pmi-vocab", "global", "cm-step", "cm-gems")


def test_the_registry_lists_the_studys_strategies():
    assert registry.names() == STUDY
    assert registry.names(time_variant=True) == ("cm-step", "cm-gems")
    assert registry.get("cm-gems").components == ("genemask", "global")
    assert registry.get("cm-step").components == ("random", "global")
    assert registry.mask_strategies(["pmi-vocab", "cm-gems", "cm-step", "genemask"]) == [
        "pmi-vocab",
        "genemask",
        "global",
        "random",
    ]
    assert registry.reads("cm-gems") == ("ranks",) and registry.reads("random") == ()
    with pytest.raises(UserError, match="unknown masking strategy 'spanbert'"):
        registry.get("spanbert")


def at(tree: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        tree = tree["properties"][key]
    return tree


def test_schema_and_registry_agree():
    schema = load_schema(SCHEMA)
    defs = schema["$defs"]
    assert tuple(defs["strategy"]["enum"]) == registry.names()
    masking = schema["properties"]["masking"]
    for strategy in registry.REGISTRY.values():
        for parameter in strategy.parameters:
            entry = at(masking, parameter.config)
            assert entry["default"] == parameter.default, (strategy.name, parameter.name)


def test_command_line_choices_come_from_the_registry():
    masks = build_parser("masks")._subparsers._group_actions[0].choices["masks"]
    strategy = next(a for a in masks._actions if a.dest == "strategy")
    assert tuple(strategy.choices) == registry.names(time_variant=False)
    pretrain = build_parser("pretrain")._subparsers._group_actions[0].choices["pretrain"]
    strategy = next(a for a in pretrain._actions if a.dest == "strategy")
    assert tuple(strategy.choices) == registry.names()


def test_time_variant_strategies_have_no_masks_of_their_own(tmp_path):
    with pytest.raises(UserError, match="time-variant"):
        Masker("cm-gems")


def test_register_refuses_bad_entries():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("random"))
    with pytest.raises(ValueError, match="unknown inputs"):
        registry.register(Strategy("x", "", reads=("genome",), kernel=lambda *a: None))
    with pytest.raises(ValueError, match="either a kernel or components"):
        registry.register(Strategy("x", ""))
    with pytest.raises(ValueError, match="not a registered kernel strategy"):
        registry.register(Strategy("x", "", components=("random", "cm-step")))
    assert "x" not in registry.names()


# ---------------------------------------------------------------------------------------------- a new strategy


def best_ranked_kernel(masker, ids, offsets, keys, out) -> None:
    """Toy: mask every token whose k-mer is in the best `mask_fraction` of the ranking (no randomness)."""
    out[:] = masker.rank_of_id[ids] <= masker.mask_fraction * 4**masker.k


@pytest.fixture
def toy_strategy():
    registry.register(
        Strategy(
            "best-ranked",
            "toy: every token of a top-ranked k-mer",
            reads=("ranks",),
            parameters=(Parameter("mask_fraction", 0.25, "best_ranked.mask_fraction"),),
            kernel=best_ranked_kernel,
        )
    )
    yield registry.get("best-ranked")
    registry.unregister("best-ranked")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(3)
    (root / "genome.fa").write_text(">c\n" + "".join(rng.choice(list("ACGT"), size=30_000)) + "\n")
    chunk_genome(root / "genome.fa", root / "chunks", ChunkingOptions(seed=1))
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    ranks = rng.permutation(len(kmers)) + 1
    pd.DataFrame({"kmer": kmers, "count": 200, "npmi": 0.0, "rank": ranks}).to_csv(
        root / "kmer_ranks.tsv", sep="\t", index=False
    )
    return root


def test_a_strategy_added_through_the_registry_alone(toy_strategy, inputs, tmp_path):
    chunks, ranks = inputs / "chunks", inputs / "kmer_ranks.tsv"
    argv = ["masks", "--chunks", str(chunks), "--ranks", str(ranks), "--out", str(tmp_path / "toy")]
    assert main([*argv, "--strategy", "best-ranked"]) == 0
    store = MaskStore.open(tmp_path / "toy")
    assert store.strategy == "best-ranked" and store.meta["mask_fraction"] == 0.25
    train = ChunkStore.open(chunks, "train")
    rank_of_id = load_kmer_ranks(ranks)
    ids = codes_to_token_ids(train[2], 6)
    assert (store.mask(0, 2) == (rank_of_id[ids] <= 1024)).all()

    table = statistics_table(chunks, [tmp_path / "toy"], rank_of_id)
    assert table.loc[0, "strategy"] == "best-ranked"
    assert table.loc[0, "masked_fraction"] == pytest.approx(0.25, abs=0.02)

    masker = Masker("best-ranked", rank_of_id=rank_of_id, mask_fraction=0.5)
    batch = MLMCollator(masker)([{"input_ids": ids, "chunk_index": 2, "epoch": 0}])
    labelled = (batch["labels"][0, 1 : len(ids) + 1] != -100).numpy()
    assert (labelled == (rank_of_id[ids] <= 2048)).all()
    with pytest.raises(UserError, match="needs"):
        Masker("best-ranked")
