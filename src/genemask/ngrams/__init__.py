"""Stage 2: exact n-gram counts (a C extension) and the NPMI ranking of k-mers."""
