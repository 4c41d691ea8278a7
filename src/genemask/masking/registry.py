"""The masking strategies, one entry each: the single list that everything else derives from.

An entry says what a strategy is called, which inputs it reads (`ranks`: the k-mer NPMI ranking, kmer_ranks.tsv;
`ngrams`: the n-gram vocabulary, ngrams.parquet), its parameters with their defaults and where the workflow config
keeps them (under `masking:`), and its kernel; a time-variant strategy names its components instead (the
strategies it chooses between per optimiser step) and has no kernel of its own.

Derived from it: `Masker` (validation, dispatch, the parameters recorded with precomputed masks), the options of
`genemask masks` and `genemask pretrain`, the schema's strategy enums (a test checks that they agree), the
workflow's mask stores, inputs and options per strategy (workflow/rules/common.smk), and which mask stores the
masking statistics cover.

A kernel is called as kernel(masker, ids, offsets, keys, out): the flat batch, one key per sequence
(`random_streams.sequence_keys`), and a flat boolean `out` to set; `masker` carries the parameters (one attribute
per parameter name) and the inputs it read (`rank_of_id`, `position_ranks`, `ngrams`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from genemask.errors import UserError
from genemask.masking.genemask_kernel import NO_CENTRES, NO_RECORD, run_genemask_kernel
from genemask.masking.global_masking import DEFAULT_GLOBAL_CENTRE_PROBABILITY, global_kernel
from genemask.masking.pmi_vocab_kernel import pmi_vocab_spans_kernel
from genemask.masking.random_kernel import random_spans_kernel, window
from genemask.masking.random_streams import probability_threshold

INPUTS = {
    "ranks": "kmer_ranks.tsv, the k-mer NPMI ranking (`genemask npmi`)",
    "ngrams": "ngrams.parquet, the n-gram NPMI table (`genemask npmi`)",
}


@dataclass(frozen=True)
class Parameter:
    """A strategy parameter: a Masker attribute and MaskingSettings field of this name (the command-line option
    --name-with-dashes), its default for this strategy, and its key under the workflow config's `masking:`."""

    name: str
    default: object
    config: str


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    reads: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    kernel: Callable | None = None
    components: tuple[str, ...] = ()  # time-variant: chosen per optimiser step in training
    ablation: bool = False  # offered for comparison, not part of the study
    # What a mask store records of the parameters, when not simply masker.<name> (pmi-vocab: the vocabulary read).
    record: Callable | None = None

    @property
    def time_variant(self) -> bool:
        return bool(self.components)

    @property
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.parameters}

    def recorded_parameters(self, masker) -> dict:
        if self.record is not None:
            return self.record(masker)
        return {p.name: getattr(masker, p.name) for p in self.parameters}


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add a strategy (its components must be registered, time-invariant strategies)."""
    if strategy.name in REGISTRY:
        raise ValueError(f"masking strategy '{strategy.name}' is already registered")
    unknown = set(strategy.reads) - set(INPUTS)
    if unknown:
        raise ValueError(
            f"{strategy.name}: unknown inputs {sorted(unknown)}, expected some of {list(INPUTS)}"
        )
    if strategy.time_variant == (strategy.kernel is not None):
        raise ValueError(f"{strategy.name}: a strategy has either a kernel or components")
    for component in strategy.components:
        if component not in REGISTRY or REGISTRY[component].time_variant:
            raise ValueError(f"{strategy.name}: component '{component}' is not a registered kernel strategy")
    REGISTRY[strategy.name] = strategy
    return strategy


def unregister(name: str) -> None:
    """Remove a strategy (tests that register their own)."""
    REGISTRY.pop(name, None)


def get(name: str) -> Strategy:
    if name not in REGISTRY:
        raise UserError(f"unknown masking strategy '{name}', expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def names(*, time_variant: bool | None = None) -> tuple[str, ...]:
    """Registered strategy names, in registration order; only (not) time-variant ones when asked."""
    return tuple(
        name for name, s in REGISTRY.items() if time_variant is None or s.time_variant == time_variant
    )


def mask_strategies(strategies: Iterable[str]) -> list[str]:
    """The time-invariant strategies whose masks `strategies` need (components in place of time-variant ones),
    in order, without repeats."""
    needed: list[str] = []
    for name in strategies:
        for part in get(name).components or (name,):
            if part not in needed:
                needed.append(part)
    return needed


def reads(strategy: str) -> tuple[str, ...]:
    """The inputs a strategy reads, its components' included."""
    s = get(strategy)
    parts = [get(c) for c in s.components] or [s]
    return tuple(i for i in INPUTS if any(i in part.reads for part in parts))


# ----------------------------------------------------------------------------------------------------------
# The strategies


def _random(masker, ids, offsets, keys, out) -> None:
    lo, hi = window(masker.k)
    random_spans_kernel(offsets, keys, probability_threshold(masker.centre_probability), lo, hi, out)


def _genemask(masker, ids, offsets, keys, out, *, as_released: bool = False) -> None:
    run_genemask_kernel(
        ids,
        offsets,
        keys,
        probability_threshold(masker.centre_probability),
        NO_CENTRES,
        masker.rank_of_id,
        masker.k,
        masker.all_high_below,
        as_released,
        out,
        NO_RECORD,
        NO_CENTRES,
        masker.position_ranks,
    )


def _genemask_as_released(masker, ids, offsets, keys, out) -> None:
    _genemask(masker, ids, offsets, keys, out, as_released=True)


def _pmi_vocab(masker, ids, offsets, keys, out) -> None:
    v = masker.ngrams
    pmi_vocab_spans_kernel(
        ids, offsets, keys, masker.k, v.member, v.prefix, v.start, v.min_n, v.max_n, masker.mask_fraction, out
    )


def _pmi_vocab_record(masker) -> dict:
    v = masker.ngrams
    return {
        "mask_fraction": masker.mask_fraction,
        "min_n": v.min_n,
        "max_n": v.max_n,
        "ngram_vocab_size": v.size,
    }


def _global(masker, ids, offsets, keys, out) -> None:
    global_kernel(ids, offsets, keys, masker.rank_of_id, masker.k, masker.centre_probability, out)


_GENEMASK_PARAMETERS = (
    Parameter("centre_probability", 0.0176, "genemask.centre_probability"),
    Parameter("all_high_below", 8, "genemask.all_high_below"),
)

register(
    Strategy(
        "random",
        "DNABERT: centres with probability p, each masks its 6-token window",
        parameters=(Parameter("centre_probability", 0.025, "random.centre_probability"),),
        kernel=_random,
    )
)
register(
    Strategy(
        "genemask",
        "the paper: centres as random; the best-ranked half also hide all of their best-ranked candidate",
        reads=("ranks",),
        parameters=_GENEMASK_PARAMETERS,
        kernel=_genemask,
    )
)
register(
    Strategy(
        "genemask-as-released",
        "ablation: genemask with the published code's rank lookup by position",
        reads=("ranks",),
        parameters=_GENEMASK_PARAMETERS,
        kernel=_genemask_as_released,
        ablation=True,
    )
)
register(
    Strategy(
        "pmi-vocab",
        "Gene-PMI-VOC: units from the top-V NPMI n-grams, drawn until 15% of tokens are masked",
        reads=("ngrams",),
        parameters=(
            Parameter("mask_fraction", 0.15, "mask_fraction"),
            Parameter("ngram_vocab_size", 100_000, "pmi_vocab.vocab_size"),
            Parameter("min_n", 2, "pmi_vocab.min_n"),
            Parameter("max_n", 10, "pmi_vocab.max_n"),
        ),
        kernel=_pmi_vocab,
        record=_pmi_vocab_record,
    )
)
register(
    Strategy(
        "global",
        "CM-GEMS: m ~ Binomial(n, p) centres at the best-ranked tokens, each masks 11 tokens",
        reads=("ranks",),
        parameters=(
            Parameter("centre_probability", DEFAULT_GLOBAL_CENTRE_PROBABILITY, "global.centre_probability"),
        ),
        kernel=_global,
    )
)
register(
    Strategy(
        "cm-step",
        "CM-GEMS baseline: per optimiser step, global with probability q(t) = floor(t / floor(T/100)) / 100, else random",
        components=("random", "global"),
    )
)
register(
    Strategy(
        "cm-gems",
        "CM-GEMS: genemask until validation perplexity falls by less than tau, then global",
        parameters=(Parameter("tau", 1.0, "cm_gems.tau"),),
        components=("genemask", "global"),
    )
)
