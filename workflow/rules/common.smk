import hashlib
import json
import re
import sys
from pathlib import Path

from genemask.config import load_schema, read_yaml, validate_config
from genemask.errors import UserError
from genemask.evaluation.tasks import TASKS
from genemask.masking import registry


def _config_source():
    files = workflow.overwrite_configfiles or workflow.configfiles
    return ", ".join(str(f) for f in files) or "config"


try:
    # Snakemake's own loader keeps the last of duplicated keys silently: read each file strictly first.
    for config_path in workflow.overwrite_configfiles or workflow.configfiles:
        read_yaml(config_path)
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
# Strategies with masks of their own (time-variant strategies are replaced by their components), from the
# registry: their masks are precomputed and their statistics tabulated.
MASK_STRATEGIES = registry.mask_strategies(MASKING["strategies"])
NPMI_OUTPUTS = {
    "ranks": "results/npmi/kmer_ranks.tsv",
    "ngrams": "results/npmi/ngrams.parquet",
}


def masking_setting(dotted):
    """A value under the config's `masking:` by its dotted key (the registry names each parameter's key)."""
    value = MASKING
    for key in dotted.split("."):
        value = value[key]
    return value


def strategy_args(wildcards):
    """Command-line options of one strategy's parameters, from config (the registry lists them)."""
    return " ".join(
        f"--{p.name.replace('_', '-')} {masking_setting(p.config)}"
        for p in registry.get(wildcards.strategy).parameters
    )


def strategy_inputs(wildcards):
    """The NPMI outputs a strategy reads (its components' included), by name: ranks, ngrams."""
    return {name: NPMI_OUTPUTS[name] for name in registry.reads(wildcards.strategy)}


def input_args(wildcards, input):
    """--ranks/--ngrams options for the inputs a strategy reads."""
    return " ".join(
        f"--{name} {input[name]}" for name in registry.reads(wildcards.strategy)
    )


def pretrain_inputs(wildcards):
    """A pretraining run reads its strategy's mask store, or its components' (time-variant), and a time-variant
    strategy reads the inputs its components do (its curriculum may validate under their masks).
    """
    inputs = {
        "masks": [
            f"results/masks/{name}"
            for name in registry.mask_strategies([wildcards.strategy])
        ]
    }
    if registry.get(wildcards.strategy).time_variant:
        inputs |= strategy_inputs(wildcards)
    return inputs


def curriculum_args(wildcards, input):
    """A time-variant strategy's inputs and parameters as `genemask pretrain` options; nothing otherwise."""
    if not registry.get(wildcards.strategy).time_variant:
        return ""
    return f"{input_args(wildcards, input)} {strategy_args(wildcards)}".strip()


# Fine-tuning grid (rules/finetune.smk).
FINETUNE = config["finetune"]
PRETRAIN = config["pretrain"]
KMER_MODEL = "kmer-logreg"
PRETRAINED_MODELS = [
    f"{arch}_{strategy}_{steps}"
    for arch in PRETRAIN["architectures"]
    for strategy in PRETRAIN["strategies"]
    for steps in PRETRAIN["steps"]
]
# Model name -> what `genemask finetune --model` gets: a pretrained directory, a preset (random init) or a
# reference's HF id or local path.
FINETUNE_SOURCES = {name: f"results/models/{name}" for name in PRETRAINED_MODELS}
RANDOM_INIT_MODELS = (
    {f"{arch}_random-init": arch for arch in PRETRAIN["architectures"]}
    if FINETUNE["random_init_reference"]
    else {}
)
FINETUNE_SOURCES |= RANDOM_INIT_MODELS
for name, source in FINETUNE["references"].items():
    if name in FINETUNE_SOURCES or name == KMER_MODEL:
        sys.exit(f"genemask: config error: finetune.references: name '{name}' is taken")
    FINETUNE_SOURCES[name] = source
FINETUNE_MODELS = list(FINETUNE_SOURCES) + (
    [KMER_MODEL] if FINETUNE["kmer_logistic_reference"] else []
)
REAL_TASK_PATTERN = "|".join(
    re.escape(task) for task, spec in TASKS.items() if not spec.simulated
)
SIMULATED_TASKS = [task for task in TASKS if TASKS[task].simulated]


def finetune_runs():
    return expand(
        "results/finetune/{model}/{task}/{shots}/seed{seed}.json",
        model=FINETUNE_MODELS,
        task=FINETUNE["tasks"],
        shots=FINETUNE["shots"],
        seed=FINETUNE["seeds"],
    )


def finetune_regime(wildcards):
    """The hyper-parameter regime of a run: the one with the smallest max_shots >= its shots."""
    shots = int(wildcards.shots)
    fitting = [r for r in FINETUNE["regimes"].values() if r["max_shots"] >= shots]
    if not fitting:
        raise ValueError(f"finetune.regimes: no regime has max_shots >= {shots}")
    return min(fitting, key=lambda regime: regime["max_shots"])


def finetune_model_input(wildcards):
    """Pretrained directories and local reference checkpoints are inputs; presets and HF ids are not."""
    if wildcards.model in PRETRAINED_MODELS:
        return FINETUNE_SOURCES[wildcards.model]
    source = FINETUNE_SOURCES[wildcards.model]
    return source if Path(source).exists() else []


def sample_inputs(wildcards):
    task_dir = f"results/tasks/{wildcards.task}"
    inputs = {"pool": f"{task_dir}/pool.tsv", "test": f"{task_dir}/test.tsv"}
    spec = TASKS[wildcards.task]
    # Seed 0 is the published draw where there is one (published_seed0, default true).
    if (
        wildcards.seed == "0"
        and FINETUNE["published_seed0"]
        and int(wildcards.shots) in spec.published
    ):
        inputs["published"] = f"{task_dir}/published/{wildcards.shots}.tsv"
    return inputs


def task_upstream_files(wildcards):
    spec = TASKS[wildcards.task]
    return [f"resources/tasks/{wildcards.task}/{f.path}" for f in spec.upstream_files()]


PRETRAIN_FINGERPRINT = hashlib.sha1(
    json.dumps([config["pretrain"], config["masking"]], sort_keys=True).encode()
).hexdigest()[:10]


def pretrain_launcher(wildcards, resources):
    """One process per GPU of the job: torchrun (DDP) when it has more than one."""
    gpus = int(resources.get("gpu", 0) or 0)
    if gpus > 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m genemask"
    return "genemask"


def all_targets():
    return [
        genome_fasta(),
        "results/chunks/summary.json",
        "results/npmi/kmer_ranks.tsv",
        "results/masks/statistics.tsv",
        "results/motifs/enrichment.tsv",
        rules.report_figures.input,
        rules.pretrain.input,
        rules.finetune.input,
    ]
