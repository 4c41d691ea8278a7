"""The masking settings, in one place: the library (Masker, NgramVocabulary) and the `genemask masks` command
line (built from the field metadata) both read them from here. A strategy's parameters default to None, which
means the default in the strategy's registry entry (`genemask.masking.registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genemask.masking import registry
from genemask.options import setting


def boolean(text: str | bool) -> bool:
    """A command-line truth value: true/false (any case, as YAML writes them), yes/no, 1/0."""
    if isinstance(text, bool):
        return text
    value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise ValueError(f"expected true or false, got {text!r}")
    return value


DEFAULT_K = 6
DEFAULT_SEED = 0
# The defaults of each strategy's parameters live in its registry entry; these name the ones other modules use.
DEFAULT_CENTRE_PROBABILITY = {
    s.name: s.defaults["centre_probability"]
    for s in registry.REGISTRY.values()
    if "centre_probability" in s.defaults
}
DEFAULT_ALL_HIGH_BELOW = registry.get("genemask").defaults["all_high_below"]
DEFAULT_MASK_FRACTION = registry.get("pmi-vocab").defaults["mask_fraction"]
DEFAULT_NGRAM_VOCAB_SIZE = registry.get("pmi-vocab").defaults["ngram_vocab_size"]
DEFAULT_MIN_N = registry.get("pmi-vocab").defaults["min_n"]
DEFAULT_MAX_N = registry.get("pmi-vocab").defaults["max_n"]
MAX_NGRAM_N = 15  # NgramVocabulary's bitsets hold n-grams up to this length


def _defaults(parameter: str) -> str:
    """'0.025 random, 0.0176 genemask, ...': the registry's defaults of a parameter, for the help."""
    return ", ".join(
        f"{s.defaults[parameter]} {s.name}" for s in registry.REGISTRY.values() if parameter in s.defaults
    )


def _readers(source: str) -> str:
    return ", ".join(s.name for s in registry.REGISTRY.values() if source in s.reads)


@dataclass(frozen=True)
class MaskingSettings:
    """Everything that determines a Masker: the strategy, its parameters and the files it reads."""

    strategy: str = setting("random", "masking strategy", choices=registry.names(time_variant=False))
    k: int = setting(key="masking.k", help="k-mer length of the tokens")
    seed: int = setting(key="masking.seed", help="masking seed")
    ranks: str | Path | None = setting(
        None, f"kmer_ranks.tsv from `genemask npmi` (needed by {_readers('ranks')})", type=str
    )
    ngrams: str | Path | None = setting(
        None, f"ngrams.parquet from `genemask npmi` (needed by {_readers('ngrams')})", type=str
    )
    centre_probability: float | None = setting(
        None,
        f"probability of a token being a span centre (default: the strategy's, {_defaults('centre_probability')})",
        key="masking.random.centre_probability",
    )
    all_high_below: int | None = setting(
        None,
        "genemask: with m <= this many centres every centre is high, as published; 0 disables "
        f"(default {_defaults('all_high_below')})",
        key="masking.genemask.all_high_below",
    )
    mask_fraction: float | None = setting(
        None,
        f"pmi-vocab, global with --top-up true: fraction of tokens to mask (default {_defaults('mask_fraction')})",
        key="masking.mask_fraction",
    )
    top_up: bool | None = setting(
        None,
        "global: add centres in rank order until --mask-fraction of the tokens are masked (true) or keep the "
        f"paper's m centres (false; default {_defaults('top_up')})",
        type=boolean,
        metavar="{true,false}",
    )
    ngram_vocab_size: int = setting(
        key="masking.pmi_vocab.vocab_size", help="pmi-vocab: top-V n-grams by NPMI"
    )
    min_n: int = setting(key="masking.pmi_vocab.min_n", help="pmi-vocab: shortest n-gram (nt)")
    max_n: int = setting(key="masking.pmi_vocab.max_n", help="pmi-vocab: longest n-gram (nt)")
