# Few-shot tasks, fine-tuning grid and result tables. Input functions live in common.smk.
#
# Needs from elsewhere: SIMULATED_GENOME (common.smk) and its truth table beside it (rule simulate_genome), and
# the pretrained models at results/models/{arch}_{strategy}_{steps}/ (the pretraining rule).
#
# Jobs: one per model (finetune_model; one kmer_baseline), whose one process does every (task, shots, seed) run of
# it, one `--run` each, and writes one record per run: interpreter, imports (8 of the 10 s a process costs on the
# demo machine), CUDA start-up and the model's files are paid once per job instead of once per run
# (benchmarks/finetune_fixed_cost.py measures the fixed cost per run from the benchmark files below; one process
# per (model, task) left it at 2.6-3.3 s per demo run, one per model at 1.2 s). Study scale: about 200 runs,
# an hour of BERT-base on one GPU; a job cut off by its time limit goes on from the run cache when retried.
#
# Rerun economy: Snakemake deletes a job's outputs before running it, so finished runs live on in the run cache
# (RUN_CACHE, genemask.evaluation.run_cache), keyed by a hash of the model's files, the task, the draw, the test
# set, the settings, the device and the genemask version. Adding a task, seed or shot count replans every model's
# job, and each trains only its new runs; a hyper-parameter reaches the jobs through params: (e.g. regimes.few.
# learning_rate replans the neural jobs, which train only that regime's runs again); a new model adds a job. A
# killed job keeps its finished runs too.
#
# Cluster grouping: finetune_model and kmer_baseline share group "finetune", and every model's job is its
# own connected component (its draws come from sample_task, a local rule). Snakemake bundles components only on
# request, from the command line or a profile: slurm/config.yaml's `group-components` sets how many jobs one
# cluster job runs in series. For the members of a group job to share its one GPU in series, the profile also sets
# `resources: [gpu=1]` with `set-resource-scopes: [gpu=local]`, and `gpu: 1` for finetune_model
# (set-resources); the rules declare gpu=0 (a GPU rule, run on the CPU without the profile), so they stay portable.


rule simulate_tasks:
    input:
        genome=SIMULATED_GENOME,
        motifs="results/genome/simulated.motifs.tsv",
    output:
        expand(
            "results/tasks/{task}/{part}.tsv",
            task=SIMULATED_TASKS,
            part=["test", "pool"],
        ),
        summary="results/tasks/simulation.json",
    log:
        "logs/finetune/simulate_tasks.log",
    conda:
        "../envs/cpu.yaml"
    params:
        seed=FINETUNE["simulate"]["seed"],
        test_size=FINETUNE["simulate"]["test_size"],
        pool_size=FINETUNE["simulate"]["pool_size"],
    shell:
        "genemask simulate-tasks --genome {input.genome} --motifs {input.motifs} --out results/tasks"
        " --seed {params.seed} --test-size {params.test_size} --pool-size {params.pool_size} > {log} 2>&1"


rule download_task_file:
    output:
        "resources/tasks/{task}/{path}",
    log:
        "logs/finetune/download/{task}/{path}.log",
    wildcard_constraints:
        task=REAL_TASK_PATTERN,
        path=r".+\.(tsv|zip)",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    shell:
        "genemask tasks download --task {wildcards.task} --path {wildcards.path} --out {output}"
        " > {log} 2>&1"


rule prepare_task:
    input:
        task_upstream_files,
    output:
        test="results/tasks/{task}/test.tsv",
        pool="results/tasks/{task}/pool.tsv",
        published=directory("results/tasks/{task}/published"),
        provenance="results/tasks/{task}/provenance.json",
    log:
        "logs/finetune/prepare_{task}.log",
    wildcard_constraints:
        task=REAL_TASK_PATTERN,
    conda:
        "../envs/cpu.yaml"
    shell:
        "genemask tasks prepare --task {wildcards.task} --source-dir resources/tasks/{wildcards.task}"
        " --out-dir results/tasks/{wildcards.task} > {log} 2>&1"


rule sample_task:
    input:
        unpack(sample_inputs),
    output:
        "results/tasks/{task}/{shots}/seed{seed}.tsv",
    log:
        "logs/finetune/sample/{task}/{shots}/seed{seed}.log",
    wildcard_constraints:
        shots=SHOTS_PATTERN,
        seed=r"\d+",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        multiplier=FINETUNE["splice_shots_multiplier"],
        published=lambda wildcards, input: (
            f"--published {input.published}/{wildcards.shots}.tsv"
            if "published" in input.keys()
            else ""
        ),
    shell:
        "genemask tasks sample --task {wildcards.task} --task-dir results/tasks/{wildcards.task}"
        " --shots {wildcards.shots} --seed {wildcards.seed} --splice-multiplier {params.multiplier}"
        " {params.published} --out {output} > {log} 2>&1"


rule finetune_model:
    input:
        train=task_draws(),
        test=task_tests(),
        model=finetune_model_input,
    output:
        job_records("{model}"),
    log:
        "logs/finetune/{model}.log",
    benchmark:
        "results/benchmarks/finetune/{model}.tsv"
    wildcard_constraints:
        model="|".join(re.escape(name) for name in FINETUNE_SOURCES),
    group:
        "finetune"
    conda:
        "../envs/cuda.yaml"
    threads: 1
    resources:
        gpu=0,  # a GPU rule (the profile gives it one; genemask estimate costs it as one)
    params:
        source=lambda wildcards: FINETUNE_SOURCES[wildcards.model],
        random_init=lambda wildcards: (
            "--random-init" if wildcards.model in RANDOM_INIT_MODELS else ""
        ),
        runs=lambda wildcards: run_options(wildcards.model, neural=True),
        cache=RUN_CACHE,
        warmup_ratio=FINETUNE["warmup_ratio"],
        weight_decay=FINETUNE["weight_decay"],
        dropout=FINETUNE["dropout"],
        device=job_device,
    shell:
        "genemask finetune --model {params.source} {params.random_init} --name {wildcards.model}"
        " --warmup-ratio {params.warmup_ratio} --weight-decay {params.weight_decay}"
        " --dropout {params.dropout} --threads {threads} --device {params.device}"
        " --cache {params.cache} {params.runs} > {log} 2>&1"


rule kmer_baseline:
    input:
        train=task_draws(),
        test=task_tests(),
    output:
        job_records(KMER_MODEL),
    log:
        f"logs/finetune/{KMER_MODEL}.log",
    benchmark:
        f"results/benchmarks/finetune/{KMER_MODEL}.tsv"
    group:
        "finetune"
    conda:
        "../envs/cpu.yaml"
    params:
        runs=run_options(KMER_MODEL, neural=False),
        cache=RUN_CACHE,
    shell:
        "genemask kmer-baseline --cache {params.cache} {params.runs} > {log} 2>&1"


rule fewshot_results:
    input:
        finetune_runs(),
    output:
        table=report(
            "results/tables/fewshot.csv",
            caption="../report/fewshot_table.rst",
            category="5. Few-shot",
        ),
        tables=multiext("results/tables/fewshot", ".md", ".tex", "_summary.csv"),
        figures=report(
            expand("results/figures/{task}.png", task=FINETUNE["tasks"]),
            caption="../report/fewshot_figure.rst",
            category="5. Few-shot",
        ),
        vs_paper=report(
            "results/tables/vs_paper.html",
            caption="../report/vs_paper.rst",
            category="5. Few-shot",
        ),
        vs_paper_tables=multiext("results/tables/vs_paper", ".csv", ".md"),
        paired=report(
            "results/tables/paired.csv",
            caption="../report/paired_table.rst",
            category="5. Few-shot",
        ),
        paired_figure=report(
            "results/figures/paired_vs_random.png",
            caption="../report/paired_figure.rst",
            category="5. Few-shot",
        ),
    log:
        "logs/finetune/results.log",
    conda:
        "../envs/cpu.yaml"
    params:
        models=FINETUNE_MODELS,
        tasks=FINETUNE["tasks"],
        margin=config["results"]["equivalence_margin"],
    shell:
        "genemask results --runs {input} --out-dir results --models {params.models}"
        " --tasks {params.tasks} --equivalence-margin {params.margin} > {log} 2>&1"


rule finetune:
    input:
        rules.fewshot_results.output,
