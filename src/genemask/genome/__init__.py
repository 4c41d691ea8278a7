"""Stage 1: genomes (FASTA reading, download, simulation) and the chunk store for pretraining."""
