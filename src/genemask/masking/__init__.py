"""Stage 3: k-mer tokenizers, masking strategies, precomputed masks, their statistics and the MLM collator.

Its public names (`__all__`), imported on first use: `from genemask.masking import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "registry": ("Strategy", "Parameter", "register"),
        "settings": ("MaskingSettings",),
        "strategies": ("Masker",),
        "store": ("MaskStore", "write_mask_store"),
        "statistics": ("mask_statistics", "statistics_table"),
        "collator": ("MLMCollator",),
        "kmer_ranks": ("load_kmer_ranks",),
    },
)
