"""Stage 6: JASPAR motif enrichment among top-NPMI k-mers.

Its public names (`__all__`), imported on first use: `from genemask.motifs import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "jaspar": ("Motif", "load_jaspar", "score_kmers"),
        "enrichment": ("EnrichmentResult", "motif_enrichment"),
        "plots": ("write_outputs",),
    },
)
