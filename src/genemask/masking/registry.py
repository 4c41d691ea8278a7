"""The masking strategies, one entry each: the single list that everything else derives from.

An entry says what a strategy is called, which inputs it reads (`ranks`: the k-mer NPMI ranking, kmer_ranks.tsv;
`ngrams`: the n-gram vocabulary, ngrams.parquet), its parameters with their defaults, their valid values and where
the workflow config keeps them (under `masking:`), and its kernel; a time-variant strategy names its components
instead (the strategies it chooses between per optimiser step) and its schedule (`masking/schedules.py`: which
component each step uses), and has no kernel of its own.

Derived from it: `Masker` (validation, dispatch, the parameters recorded with precomputed masks), the schedule of a
time-variant strategy in training (`Strategy.make_schedule`), the options of `genemask masks` and `genemask
pretrain`, the schema's strategy enums (a test checks that they agree), the workflow's mask stores, inputs and
options per strategy (workflow/rules/common.smk), and which mask stores the masking statistics cover. Parameter
values are checked here, and only here (`Parameter.check`, `check_parameters`).

A kernel is called as kernel(masker, ids, offsets, keys, out): the flat batch, one key per sequence
(`random_streams.sequence_keys`), and a flat boolean `out` to set; `masker` carries the parameters (one attribute
per parameter name) and the inputs it read (`rank_of_id`, `position_ranks`, `ngrams`).

A schedule factory is called as schedule(components, parameters, seed=..., total_steps=...) and returns an object
with the `schedules.Schedule` methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from genemask.errors import UserError
from genemask.masking import schedules
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
    --name-with-dashes), its default for this strategy, its key under the workflow config's `masking:`, and which
    values are valid (`valid(value)`, described by `expected`)."""

    name: str
    default: object
    config: str
    valid: Callable[[object], bool] | None = None
    expected: str = ""

    def check(self, value: object) -> None:
        """Refuse an invalid value (NaN and infinities included) with a one-line UserError."""
        if self.valid is not None and not self.valid(value):
            raise UserError(f"{self.name} must be {self.expected}, got {value}")


def _in_open_unit(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1


def _positive_finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def _count(minimum: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def probability(name: str, default: float, config: str) -> Parameter:
    return Parameter(name, default, config, _in_open_unit, "in (0, 1)")


def count(name: str, default: int, config: str, minimum: int = 0) -> Parameter:
    return Parameter(name, default, config, _count(minimum), f"an integer >= {minimum}")


def flag(name: str, default: bool, config: str) -> Parameter:
    return Parameter(name, default, config, lambda value: isinstance(value, bool), "true or false")


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    reads: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    kernel: Callable | None = None
    components: tuple[str, ...] = ()  # time-variant: chosen per optimiser step in training
    schedule: Callable | None = None  # time-variant: which component each step uses (masking/schedules.py)
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

    def check(self, values: Mapping) -> None:
        """Check the values given of this strategy's parameters (others are ignored)."""
        for p in self.parameters:
            if p.name in values and values[p.name] is not None:
                p.check(values[p.name])

    def make_schedule(self, parameters: Mapping, *, seed: int, total_steps: int):
        """The schedule of a time-variant strategy; parameters not given (or None) take their defaults."""
        if self.schedule is None:
            raise ValueError(f"strategy '{self.name}' is not time-variant: it has no schedule")
        values = self.defaults | {k: v for k, v in parameters.items() if k in self.defaults and v is not None}
        self.check(values)
        return self.schedule(self.components, values, seed=seed, total_steps=total_steps)


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
    if strategy.time_variant != (strategy.schedule is not None):
        raise ValueError(f"{strategy.name}: a time-variant strategy has a schedule, a kernel strategy none")
    REGISTRY[strategy.name] = strategy
    return strategy


def unregister(name: str) -> None:
    """Remove a strategy (tests that register their own)."""
    REGISTRY.pop(name, None)


def get(name: str) -> Strategy:
    if name not in REGISTRY:
        raise UserError(f"unknown masking strategy '{name}', expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def check_parameters(strategy: str, values: Mapping) -> None:
    """Check the values given of a strategy's parameters (UserError naming the first invalid one)."""
    get(strategy).check(values)


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


def _genemask(
    masker, ids, offsets, keys, out, *, as_released=False, position_ranks=None, cut_before_sort=False
):
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
        masker.position_ranks if position_ranks is None else position_ranks,
        cut_before_sort,
    )


def _genemask_as_released(masker, ids, offsets, keys, out) -> None:
    _genemask(masker, ids, offsets, keys, out, as_released=True)


def _cm_gems_genemask_as_released(masker, ids, offsets, keys, out) -> None:
    _genemask(
        masker,
        ids,
        offsets,
        keys,
        out,
        as_released=True,
        position_ranks=masker.cm_gems_position_ranks,
        cut_before_sort=True,
    )


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


def _run_global_kernel(masker, ids, offsets, keys, out, **options) -> None:
    global_kernel(ids, offsets, keys, masker.rank_of_id, masker.k, masker.centre_probability, out, **options)


def _global(masker, ids, offsets, keys, out) -> None:
    top_up = masker.mask_fraction if masker.top_up else 0.0
    _run_global_kernel(masker, ids, offsets, keys, out, top_up_fraction=top_up)


def _global_as_released(masker, ids, offsets, keys, out) -> None:
    _run_global_kernel(masker, ids, offsets, keys, out, position_ranks=masker.cm_gems_position_ranks)


_GENEMASK_PARAMETERS = (
    probability("centre_probability", 0.0176, "genemask.centre_probability"),
    count("all_high_below", 8, "genemask.all_high_below"),
)
_GLOBAL_CENTRE_PROBABILITY = probability(
    "centre_probability", DEFAULT_GLOBAL_CENTRE_PROBABILITY, "global.centre_probability"
)
_MASK_FRACTION = probability("mask_fraction", 0.15, "mask_fraction")
_TAU = Parameter("tau", 1.0, "cm_gems.tau", _positive_finite, "a finite number > 0")

register(
    Strategy(
        "random",
        "DNABERT: centres with probability p, each masks its 6-token window",
        parameters=(probability("centre_probability", 0.025, "random.centre_probability"),),
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
            _MASK_FRACTION,
            count("ngram_vocab_size", 100_000, "pmi_vocab.vocab_size", minimum=1),
            count("min_n", 2, "pmi_vocab.min_n", minimum=1),
            count("max_n", 10, "pmi_vocab.max_n", minimum=1),
        ),
        kernel=_pmi_vocab,
        record=_pmi_vocab_record,
    )
)
register(
    Strategy(
        "global",
        "CM-GEMS: m ~ Binomial(n, p) centres at the best-ranked tokens, each masks 11 tokens "
        "(top_up: more centres in rank order until mask_fraction is masked)",
        reads=("ranks",),
        parameters=(
            _GLOBAL_CENTRE_PROBABILITY,
            flag("top_up", False, "global.top_up"),
            _MASK_FRACTION,
        ),
        kernel=_global,
    )
)
register(
    Strategy(
        "global-as-released",
        "ablation: global with the published code's rank lookup by position",
        reads=("ranks",),
        parameters=(_GLOBAL_CENTRE_PROBABILITY,),
        kernel=_global_as_released,
        ablation=True,
    )
)
register(
    Strategy(
        "cm-step",
        "CM-GEMS baseline: per optimiser step, global with probability q(t) = floor(t / floor(T/100)) / 100, else random",
        components=("random", "global"),
        schedule=schedules.cm_step,
    )
)
register(
    Strategy(
        "cm-gems",
        "CM-GEMS: genemask until validation perplexity changes by less than tau between evaluations, then global",
        parameters=(_TAU,),
        components=("genemask", "global"),
        schedule=schedules.cm_gems,
    )
)
register(
    Strategy(
        "cm-gems-genemask-as-released",
        "ablation: cm-gems' first phase as released (rank by position; the high half cut before sorting)",
        reads=("ranks",),
        parameters=_GENEMASK_PARAMETERS,
        kernel=_cm_gems_genemask_as_released,
        ablation=True,
    )
)
register(
    Strategy(
        "cm-gems-as-released",
        "ablation: cm-gems with both phases as released (cm-gems-genemask-as-released, then global-as-released)",
        parameters=(_TAU,),
        components=("cm-gems-genemask-as-released", "global-as-released"),
        schedule=schedules.cm_gems,
        ablation=True,
    )
)
