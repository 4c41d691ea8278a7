"""GeneMask: NPMI-guided masking for DNA language models, as a reproducible pipeline."""

__version__ = "0.1.0"
