"""Stage 3: k-mer tokenizers, masking strategies, precomputed masks, their statistics and the MLM collator."""
