import os
import re
import sys
import sysconfig
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from genemask.config import load_schema, read_yaml, validate_config
from genemask.errors import UserError
from genemask.evaluation.settings import finetune_regime as regime_for_shots
from genemask.evaluation.tasks import TASKS
from genemask.masking import registry
from genemask.training.launch import launch_prefix, pretrain_layout
from genemask.training import identity
from genemask.training.settings import preset_pattern, rank_cpus


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

# Rules call the `genemask` (and `torchrun`) installed for the Python that runs Snakemake (its scripts folder, in a
# venv the one beside it), so a venv need not be activated, here or in SLURM jobs (they run this same
# interpreter); under --sdm conda, the activated rule environment comes first on PATH and provides its own.
PYTHON_BIN = next(
    (
        folder
        for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent)
        if (folder / "genemask").exists()
    ),
    Path(sys.executable).parent,
)
conda_envs = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
if not conda_envs and not (PYTHON_BIN / "genemask").exists():
    sys.exit(
        f"genemask: no `genemask` command beside {sys.executable}: run Snakemake with the Python of the"
        " environment where the genemask package is installed (`make setup`, then .venv/bin/snakemake)"
    )


envvars:
    "PATH",


os.environ["PATH"] = f"{PYTHON_BIN}{os.pathsep}{os.environ['PATH']}"

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


# Identities (genemask.training.identity, the one list of what identifies a run and a mask store, which the
# checkpoint check on resume reads too): each stage's result depends on exactly these settings (and on its upstream
# stages' identities), never on grid lists (other strategies, architectures, step counts, tasks, shots, seeds,
# references). They key the pretraining checkpoints, so that a changed setting starts afresh while everything
# else is kept.
def mask_identity(strategy):
    return identity.mask_identity(config, strategy)


def run_identity(arch, strategy, steps):
    """Hash of what changes the weights of one pretraining run: its checkpoints live under it."""
    return identity.run_identity(config, arch, strategy, steps)


def checkpoint_dir(wildcards):
    run = f"{wildcards.arch}_{wildcards.strategy}_{wildcards.steps}"
    return f"results/checkpoints/{run}-{run_identity(wildcards.arch, wildcards.strategy, wildcards.steps)}"


# Fine-tuning grid (rules/finetune.smk).
FINETUNE = config["finetune"]
PRETRAIN = config["pretrain"]
KMER_MODEL = "kmer-logreg"
PRETRAIN_RUNS = [
    f"{arch}_{strategy}_{steps}"
    for arch in PRETRAIN["architectures"]
    for strategy in PRETRAIN["strategies"]
    for steps in PRETRAIN["steps"]
]
# A run's model at each export step before its end, fine-tuned like any other (learning curves from one run).
EXPORTED_MODELS = [
    f"{arch}_{strategy}_{steps}_step{export}"
    for arch in PRETRAIN["architectures"]
    for strategy in PRETRAIN["strategies"]
    for steps in PRETRAIN["steps"]
    for export in PRETRAIN["export_steps"]
    if export < steps
]
PRETRAINED_MODELS = PRETRAIN_RUNS + EXPORTED_MODELS
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


SHOTS_PATTERN = r"\d+|full"  # examples per class, or the whole training set
# Fine-tuning jobs: one per model, doing every (task, shots, seed) run of it in one process. Finished runs are
# kept in the run cache (genemask.evaluation.run_cache), outside the jobs' outputs, so a job replanned for an added
# task, seed or shot count trains only the new runs.
RUN_CACHE = "results/run_cache"


def finetune_draws():
    """The (task, shots, seed) runs of every fine-tuning job, in a fixed order."""
    return [
        (task, shots, seed)
        for task in FINETUNE["tasks"]
        for shots in FINETUNE["shots"]
        for seed in FINETUNE["seeds"]
    ]


def draw_file(task, shots, seed):
    return f"results/tasks/{task}/{shots}/seed{seed}.tsv"


def run_record(model, task, shots, seed):
    return f"results/finetune/{model}/{task}/{shots}/seed{seed}.json"


def task_test_file(task):
    return f"results/tasks/{task}/test.tsv"


def task_tests():
    """The test set of every task: the evaluation sets of a fine-tuning job."""
    return [task_test_file(task) for task in FINETUNE["tasks"]]


def task_draws():
    """Every k-shot draw of every task: the training sets of a fine-tuning job."""
    return [draw_file(*draw) for draw in finetune_draws()]


def job_records(model):
    """The records of one model's fine-tuning job (`{model}` may stay a wildcard)."""
    return [run_record(model, *draw) for draw in finetune_draws()]


def run_options(model, neural):
    """One `--run` per (task, shots, seed) of a model's job: its task and test set, its draw, its record and, for
    a neural model, its regime's learning rate, epochs and batch size."""
    runs = []
    for task, shots, seed in finetune_draws():
        run = f"--run task={task} test={task_test_file(task)} shots={shots} seed={seed}"
        run += f" train={draw_file(task, shots, seed)} out={run_record(model, task, shots, seed)}"
        if neural:
            regime = regime_for_shots(FINETUNE["regimes"], shots)
            run += f" learning_rate={regime['learning_rate']} epochs={regime['epochs']}"
            run += f" batch_size={regime['batch_size']}"
        runs.append(run)
    return " ".join(runs)


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
        and wildcards.shots != "full"
        and int(wildcards.shots) in spec.published
    ):
        inputs["published"] = f"{task_dir}/published"
    return inputs


def task_upstream_files(wildcards):
    spec = TASKS[wildcards.task]
    return [f"resources/tasks/{wildcards.task}/{f.path}" for f in spec.upstream_files()]


def pretrain_job_layout(resources):
    """(GPUs per node, nodes) of a pretraining job; its batch geometry was checked at parse time."""
    return pretrain_layout(resources, config["pretrain"], "pretrain_model resources")


def pretrain_launcher(wildcards, threads, resources):
    """One process per GPU of the job: `genemask torchrun` (DDP, keeping exit 75) when it has more than one, one
    launch per node (srun, c10d rendezvous) when it spans several."""
    return launch_prefix(*pretrain_job_layout(resources), threads)


def pretrain_rank_cpus(threads, resources):
    """(torch threads, loader workers) of each process: its share of the node's CPUs."""
    return rank_cpus(threads, pretrain_job_layout(resources)[0])


# The chain genome -> chunks -> NPMI -> masks -> pretraining is the longest path of a run: its jobs go first when
# cores are short (demo: pretraining starts 20 s in instead of a minute, behind task sampling and fine-tuning of
# the random-init floor).
PRETRAINING_CHAIN_PRIORITY = 10


def core_share(most, divisor=2):
    """Threads of a multi-threaded CPU rule: `most`, at most cores / `divisor`. Snakemake starts a job only when
    all its threads are free, so on the 2-core demo machine a 2-thread NPMI job waited half a minute behind
    single-threaded fine-tuning; with 1 thread it starts at once. A cluster sets its own (profile set-threads).
    Commands that run no job (--summary, --report, --list-rules) give no --cores: then `most`.
    """
    try:
        cores = workflow.cores
    except WorkflowError:
        return most
    return min(most, max(1, (cores or 1) // divisor))


# Exit 75 (stopped with a checkpoint before the time limit) is a failure to Snakemake: a retried job continues.
PRETRAIN_RETRIES = None if workflow.local_exec else 10


def _plain_value(resource):
    """A resource's value; an expression (evaluated per job) as its text."""
    try:
        return getattr(resource, "value", resource)
    except ValueError:
        return str(resource)


def _profile_resources(rule_name):
    """The resources that --set-resources (a profile's set-resources) gives a rule, capped like Snakemake caps
    them by --resources (a profile's `resources`)."""
    given = workflow.resource_settings.overwrite_resources.get(rule_name, {})
    values = {name: _plain_value(value) for name, value in dict(given).items()}
    for name, value in values.items():
        cap = _plain_value(workflow.global_resources.get(name))
        if isinstance(value, int) and isinstance(cap, int):
            values[name] = min(value, cap)
    return values


try:  # a batch that cannot be split over the profile's GPUs and nodes stops here, not at job start
    pretrain_layout(
        {"gpu": 0, "nodes": 1} | _profile_resources("pretrain_model"),
        config["pretrain"],
        "--set-resources pretrain_model",
    )
except UserError as error:
    sys.exit(f"genemask: config error: {error}")


def job_device(wildcards, resources):
    """`--device` for a training job: cuda when the job was given GPUs (it then fails at once if CUDA cannot
    run, never trains on the CPU), cpu otherwise."""
    return "cuda" if int(resources.get("gpu", 0) or 0) > 0 else "cpu"


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
        rules.report_learning_curves.output,
    ]
