# GUE benchmark (genemask.evaluation.gue): every fine-tuned model of the few-shot grid (pretrained models, the
# random-init floor, the references) fine-tuned on the full training set of each task in finetune.gue.tasks,
# with the authors' per-task recipe (genemask.evaluation.gue_recipe: epochs or step cap, warm-up, the dev set every
# 200 or 400 steps, the best checkpoint by dev loss), MCC on test; tables beside the published numbers.
#
# Sources: finetune.gue.source = local reads the CSVs where they are (local_paths, else local_dir in the archive
# or mirror layout); huggingface downloads them to resources/gue/{task}/ from the pinned mirror revision.
# gue_check records every file's size and sha256 in resources/gue/provenance/{task}.json on first use (not a
# workflow output, so Snakemake never rewrites it) and checks them on every later use, as gue_finetune does.
#
# Cluster grouping: gue_finetune jobs share group "gue"; `--group-components gue=3` bundles three runs per
# submission. Runtime, memory and GPU per task are in slurm/config.yaml (set-resources: gue_finetune).
include: "gue_common.smk"


rule gue_download:
    output:
        expand("resources/gue/{{task}}/{split}.csv", split=SPLITS),
    log:
        "logs/gue/download_{task}.log",
    wildcard_constraints:
        task=GUE_TASK_PATTERN,
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        repository=GUE["repository"],
        revision=GUE["revision"],
    shell:
        "genemask gue download --task {wildcards.task} --out-dir resources/gue/{wildcards.task}"
        " --repository {params.repository} --revision {params.revision} > {log} 2>&1"


rule gue_check:
    input:
        gue_split_files,
    output:
        "results/gue/tasks/{task}.json",
    log:
        "logs/gue/check_{task}.log",
    wildcard_constraints:
        task=GUE_TASK_PATTERN,
    conda:
        "../envs/cpu.yaml"
    params:
        dir=lambda wildcards: gue_task_dir(wildcards.task),
        source=lambda wildcards: gue_source(wildcards.task),
        dev_as_train=gue_dev_as_train,
    shell:
        "genemask gue check --task {wildcards.task} --dir {params.dir}"
        " --provenance resources/gue/provenance/{wildcards.task}.json --source {params.source:q}"
        " {params.dev_as_train} --out {output} > {log} 2>&1"


rule gue_finetune:
    input:
        checked="results/gue/tasks/{task}.json",
        model=finetune_model_input,
    output:
        "results/gue/runs/{model}/{task}/seed{seed}.json",
    log:
        "logs/gue/{model}/{task}/seed{seed}.log",
    benchmark:
        "results/benchmarks/gue/{model}/{task}/seed{seed}.tsv"
    wildcard_constraints:
        model="|".join(re.escape(name) for name in FINETUNE_SOURCES),
        task=GUE_TASK_PATTERN,
        seed=r"\d+",
    group:
        "gue"
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
        dir=lambda wildcards: gue_task_dir(wildcards.task),
        dev_as_train=gue_dev_as_train,
        recipe_overrides=gue_recipe_overrides(),
        max_train=f"--max-train {GUE['max_train']}" if GUE["max_train"] else "",
        device=job_device,
    shell:
        "genemask gue finetune --task {wildcards.task} --dir {params.dir}"
        " --provenance resources/gue/provenance/{wildcards.task}.json {params.dev_as_train}"
        " --model {params.source} {params.random_init} --name {wildcards.model} --seed {wildcards.seed}"
        " {params.recipe_overrides} {params.max_train} --threads {threads} --device {params.device} --out {output} > {log} 2>&1"


rule gue_results:
    input:
        gue_runs(),
    output:
        table=report(
            "results/tables/gue.md",
            caption="../report/gue_table.rst",
            category="7. GUE",
        ),
        tables=multiext("results/tables/gue", ".csv", ".tex", "_tests.csv"),
        heatmap=report(
            "results/figures/gue_heatmap.png",
            caption="../report/gue_heatmap.rst",
            category="7. GUE",
        ),
    log:
        "logs/gue/results.log",
    conda:
        "../envs/cpu.yaml"
    params:
        models=GUE_MODELS,
        tasks=GUE["tasks"],
    shell:
        "genemask gue tables --runs {input} --out-dir results --models {params.models}"
        " --tasks {params.tasks} > {log} 2>&1"


rule gue:
    input:
        rules.gue_results.output,
