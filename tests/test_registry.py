"""The strategy registry: the schema, the command lines and the workflow agree with it, and a strategy added
through the registry alone runs through `genemask masks`, the masking statistics and the collator."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass

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
from genemask.training.pretrain import pretrain
from genemask.training.settings import PretrainConfig

STUDY = (
    "random",
    "genemask",
    "genemask-as-released",
    "pmi-vocab",
    "global",
    "global-as-released",
    "cm-step",
    "cm-gems",
    "cm-gems-genemask-as-released",
    "cm-gems-as-released",
)


def test_the_registry_lists_the_studys_strategies():
    assert registry.names() == STUDY
    assert registry.names(time_variant=True) == ("cm-step", "cm-gems", "cm-gems-as-released")
    assert registry.get("cm-gems").components == ("genemask", "global")
    assert registry.get("cm-gems-as-released").components == (
        "cm-gems-genemask-as-released",
        "global-as-released",
    )
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
    with pytest.raises(ValueError, match="has a schedule"):
        registry.register(Strategy("x", "", components=("random", "global")))
    with pytest.raises(ValueError, match="has a schedule"):
        registry.register(Strategy("x", "", kernel=lambda *a: None, schedule=lambda *a, **k: None))
    assert "x" not in registry.names()


@pytest.mark.parametrize(
    ("strategy", "values", "message"),
    [
        ("random", {"centre_probability": 1.0}, "centre_probability must be in"),
        ("global", {"centre_probability": float("nan")}, "centre_probability must be in"),
        ("global", {"top_up": "yes"}, "top_up must be true or false"),
        ("genemask", {"all_high_below": -1}, "all_high_below must be an integer >= 0"),
        ("cm-gems", {"tau": 0.0}, "tau must be a finite number > 0"),
        ("cm-gems", {"tau": float("inf")}, "tau must be a finite number > 0"),
    ],
)
def test_parameters_are_checked_in_one_place_for_maskers_and_schedules(strategy, values, message):
    with pytest.raises(UserError, match=message):
        registry.check_parameters(strategy, values)
    entry = registry.get(strategy)
    with pytest.raises(UserError, match=message):
        if entry.time_variant:
            entry.make_schedule(values, seed=0, total_steps=10)
        else:
            Masker(strategy, rank_of_id=np.ones(5 + 4**6, dtype=np.int64), **values)


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


# ------------------------------------------------------------------------------------- a new time-variant strategy


@dataclass
class Alternate:
    """Toy schedule: the components in turn, one optimiser step each."""

    components: tuple[str, ...]
    evaluates: bool = False
    switch_step: None = None

    def choose(self, step: int) -> str:
        return self.components[step % len(self.components)]

    def observe(self, step: int, valid_loss: float) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_a_time_variant_strategy_added_through_the_registry_alone(inputs, tmp_path):
    """A registry entry and its schedule are all it takes: the training loop collates both components and
    trains each step with the one the schedule names."""
    registry.register(
        Strategy(
            "alternate",
            "toy: random and genemask in turn",
            components=("random", "genemask"),
            schedule=lambda components, parameters, *, seed, total_steps: Alternate(tuple(components)),
        )
    )
    try:
        config = PretrainConfig(
            chunks=inputs / "chunks", out=tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints",
            strategy="alternate", ranks=inputs / "kmer_ranks.tsv", preset="tiny", steps=2, batch_size=2,
            global_batch=2, warmup_steps=0, eval_every=2, eval_chunks=4, log_every=1, workers=0, threads=1,
            device="cpu",
        )  # fmt: skip
        assert pretrain(config) == 0
    finally:
        registry.unregister("alternate")
    rows = list(csv.DictReader((tmp_path / "model" / "metrics.csv").open()))
    assert [row["masking"] for row in rows] == ["random", "genemask"]
    assert all(0.0 < float(row["masked_fraction"]) < 0.5 for row in rows)


def test_the_as_released_ablations_run(inputs, tmp_path):
    """`genemask masks` makes cm-gems-as-released's component masks, `genemask mask-stats` reports their
    realised fractions (and global's with top-up), and a tiny run pretrains with them across the switch."""
    chunks, ranks = inputs / "chunks", inputs / "kmer_ranks.tsv"
    base = ["masks", "--chunks", str(chunks), "--ranks", str(ranks)]
    stores = {}
    for strategy, extra in [
        ("global-as-released", []),
        ("cm-gems-genemask-as-released", []),
        ("global", ["--top-up", "true"]),
    ]:
        stores[strategy] = tmp_path / strategy
        assert main([*base, "--strategy", strategy, "--out", str(stores[strategy]), *extra]) == 0
    assert MaskStore.open(stores["global"]).meta["top_up"] is True
    stats = tmp_path / "statistics.tsv"
    argv = ["mask-stats", "--chunks", str(chunks), "--ranks", str(ranks), "--out", str(stats)]
    assert main([*argv, *(arg for store in stores.values() for arg in ("--masks", str(store)))]) == 0
    fractions = dict(pd.read_csv(stats, sep="\t")[["strategy", "masked_fraction"]].itertuples(index=False))
    assert fractions["global"] >= 0.15 and 0.05 < fractions["global-as-released"] < 0.16
    config = PretrainConfig(
        chunks=chunks, out=tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints",
        strategy="cm-gems-as-released", ranks=ranks,
        masks=(stores["cm-gems-genemask-as-released"], stores["global-as-released"]), tau=1e9, preset="tiny",
        steps=6, batch_size=2, global_batch=2, warmup_steps=0, eval_every=2, eval_chunks=4, log_every=1,
        workers=0, threads=1, device="cpu",
    )  # fmt: skip
    assert pretrain(config) == 0
    rows = list(csv.DictReader((tmp_path / "model" / "metrics.csv").open()))
    # tau this large: the second evaluation (step 4) switches
    assert [row["masking"] for row in rows] == ["cm-gems-genemask-as-released"] * 4 + [
        "global-as-released"
    ] * 2
