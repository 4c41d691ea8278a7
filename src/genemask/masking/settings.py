"""The masking settings and their defaults, in one place: the library (Masker, NgramVocabulary) and the
`genemask masks` command line (built from the field metadata) both read them from here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genemask.options import setting

STRATEGIES = ("random", "genemask", "genemask-as-released", "pmi-vocab")
DEFAULT_K = 6
DEFAULT_SEED = 0
# Per strategy: DNABERT's 0.025 and the paper's 0.0176 (both mask about 15% of tokens with 6-mers).
DEFAULT_CENTRE_PROBABILITY = {"random": 0.025, "genemask": 0.0176, "genemask-as-released": 0.0176}
DEFAULT_ALL_HIGH_BELOW = 8
DEFAULT_MASK_FRACTION = 0.15
DEFAULT_NGRAM_VOCAB_SIZE = 100_000
DEFAULT_MIN_N, DEFAULT_MAX_N = 2, 10
MAX_NGRAM_N = 15  # NgramVocabulary's bitsets hold n-grams up to this length


@dataclass(frozen=True)
class MaskingSettings:
    """Everything that determines a Masker: the strategy, its parameters and the files it reads."""

    strategy: str = setting("random", "masking strategy", choices=STRATEGIES)
    k: int = setting(DEFAULT_K, "k-mer length of the tokens")
    seed: int = setting(DEFAULT_SEED, "masking seed")
    ranks: str | Path | None = setting(
        None, "kmer_ranks.tsv from `genemask npmi` (needed by the genemask strategies)", type=str
    )
    ngrams: str | Path | None = setting(
        None, "ngrams.parquet from `genemask npmi` (needed by pmi-vocab)", type=str
    )
    centre_probability: float | None = setting(
        None,
        "probability of a token being a span centre (default "
        + ", ".join(f"{p} {strategy}" for strategy, p in DEFAULT_CENTRE_PROBABILITY.items())
        + ")",
        type=float,
    )
    all_high_below: int = setting(
        DEFAULT_ALL_HIGH_BELOW,
        "genemask: with m <= this many centres every centre is high, as published; 0 disables",
    )
    mask_fraction: float = setting(DEFAULT_MASK_FRACTION, "pmi-vocab: fraction of tokens to mask")
    ngram_vocab_size: int = setting(DEFAULT_NGRAM_VOCAB_SIZE, "pmi-vocab: top-V n-grams by NPMI")
    min_n: int = setting(DEFAULT_MIN_N, "pmi-vocab: shortest n-gram (nt)")
    max_n: int = setting(DEFAULT_MAX_N, "pmi-vocab: longest n-gram (nt)")
