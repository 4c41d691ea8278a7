import sys
from pathlib import Path

from genemask.config import load_schema, validate_config
from genemask.errors import UserError


def _config_source():
    files = workflow.overwrite_configfiles or workflow.configfiles
    return ", ".join(str(f) for f in files) or "config"


try:
    config = validate_config(
        config,
        _config_source(),
        load_schema(workflow.source_path("../schemas/config.schema.yaml")),
    )
except UserError as error:
    sys.exit(f"genemask: config error: {error}")

GENOME = config["genome"]
SIMULATED_GENOME = "results/genome/simulated.fa.gz"


def genome_fasta():
    """The genome every stage reads: downloaded, local, or simulated."""
    source = GENOME["source"]
    if source == "fasta":
        return GENOME["fasta"]
    if source == "simulated":
        return SIMULATED_GENOME
    return f"resources/genome/{source}.fa.gz"


def download_url(wildcards, kind):
    return GENOME["urls"][wildcards.source][kind]


def chromosome_args(chromosomes):
    """CLI arguments for a contig selection; nothing when every contig is used."""
    return "--chromosomes " + " ".join(chromosomes) if chromosomes else ""


MASKING = config["masking"]


def strategy_args(wildcards):
    """Options of one masking strategy, from config."""
    strategy = wildcards.strategy
    if strategy == "random":
        return f"--centre-probability {MASKING['random']['centre_probability']}"
    if strategy in ("genemask", "genemask-as-released"):
        settings = MASKING["genemask"]
        return (
            f"--centre-probability {settings['centre_probability']}"
            f" --all-high-below {settings['all_high_below']}"
        )
    vocab = MASKING["pmi_vocab"]
    return (
        f"--ngram-vocab-size {vocab['vocab_size']} --min-n {vocab['min_n']}"
        f" --max-n {vocab['max_n']} --mask-fraction {MASKING['mask_fraction']}"
    )


def all_targets():
    return [
        genome_fasta(),
        "results/chunks/summary.json",
        "results/npmi/kmer_ranks.tsv",
        "results/masks/statistics.tsv",
        "results/motifs/enrichment.tsv",
        rules.report_figures.input,
    ]
