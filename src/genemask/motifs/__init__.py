"""Stage 6: JASPAR motif enrichment among top-NPMI k-mers."""
