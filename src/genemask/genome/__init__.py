"""Stage 1: genomes (FASTA reading, download, simulation) and the chunk store for pretraining.

Its public names (`__all__`), imported on first use: `from genemask.genome import ...`.
"""

from genemask._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "fasta": ("read_fasta", "open_fasta", "canonical_name"),
        "simulate": ("simulate_genome",),
        "chunking": ("ChunkingOptions", "chunk_genome"),
        "chunkstore": ("ChunkStore",),
    },
)
