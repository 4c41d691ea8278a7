# Checkpoints live in results/checkpoints/, outside the declared outputs, so Snakemake never deletes them and a
# retried job (time limit, preemption: exit 75) continues from the latest one. Their folder name carries a hash of
# what changes the run's weights (genemask.training.identity, which a resumed run is also checked against), so a
# changed setting starts afresh instead of meeting a stale checkpoint, and a change elsewhere in the config leaves
# the run alone. A run also keeps its weights every pretrain.keep_weights_every steps, from which export_model makes
# the models of pretrain.export_steps: adding an export step to a finished run trains nothing.
# On a cluster a job asks for at most the site's maximum runtime (profile: pretrain_model runtime), stops with a
# checkpoint before it (exit 75) and is retried PRETRAIN_RETRIES times; each attempt continues from the newest
# checkpoint. `gpu` (GPUs in all) and `nodes` come from the profile; the launcher runs one process per GPU
# (genemask.training.launch), each with its share of the job's CPUs.


rule pretrain_model:
    input:
        unpack(pretrain_inputs),
        chunks=rules.chunk_genome.output.store,
    output:
        model=directory("results/models/{arch}_{strategy}_{steps}"),
    log:
        "logs/pretrain/{arch}_{strategy}_{steps}.log",
    benchmark:
        "results/benchmarks/pretrain_{arch}_{strategy}_{steps}.tsv"
    wildcard_constraints:
        arch=preset_pattern(),
        strategy="|".join(re.escape(s) for s in config["pretrain"]["strategies"]),
        steps=r"\d+",
    priority: PRETRAINING_CHAIN_PRIORITY
    retries: PRETRAIN_RETRIES
    conda:
        "../envs/cuda.yaml"
    # A quarter of the cores (1 on the 2-core demo machine, where two runs side by side beat one on both cores:
    # measured 44 s on 1 thread, 32 s on 2); a cluster sets its own (profile set-threads).
    threads: core_share(8, divisor=4)
    resources:
        gpu=0,
        nodes=1,
        runtime=1440,
        mem_mb=8000,
    params:
        checkpoint_dir=checkpoint_dir,
        launcher=pretrain_launcher,
        device=job_device,
        seed=config["pretrain"]["seed"],
        lr=config["pretrain"]["learning_rate"],
        betas=" ".join(str(beta) for beta in config["pretrain"]["betas"]),
        eps=config["pretrain"]["eps"],
        weight_decay=config["pretrain"]["weight_decay"],
        warmup=config["pretrain"]["warmup_steps"],
        batch_size=config["pretrain"]["batch_size"],
        global_batch=config["pretrain"]["global_batch"],
        eval_every=config["pretrain"]["eval_every"],
        eval_chunks=config["pretrain"]["eval_chunks"],
        rank_threads=lambda wildcards, threads, resources: pretrain_rank_cpus(
            threads, resources
        )[0],
        rank_workers=lambda wildcards, threads, resources: pretrain_rank_cpus(
            threads, resources
        )[1],
        checkpoint_every=config["pretrain"]["checkpoint_every"],
        keep_weights_every=config["pretrain"]["keep_weights_every"],
        compile="--compile" if config["pretrain"]["compile"] else "",
        k=config["masking"]["k"],
        curriculum=curriculum_args,
    shell:
        "{params.launcher} pretrain --chunks {input.chunks} --masks {input.masks}"
        " --strategy {wildcards.strategy} --preset {wildcards.arch} --steps {wildcards.steps}"
        " --out {output.model} --checkpoint-dir {params.checkpoint_dir} --k {params.k}"
        " --seed {params.seed} --lr {params.lr} --betas {params.betas} --eps {params.eps}"
        " --weight-decay {params.weight_decay} --warmup {params.warmup}"
        " --batch-size {params.batch_size} --global-batch {params.global_batch}"
        " --eval-every {params.eval_every} --eval-chunks {params.eval_chunks}"
        " --checkpoint-every {params.checkpoint_every} --keep-weights-every {params.keep_weights_every}"
        " --workers {params.rank_workers} --threads {params.rank_threads} --device {params.device}"
        " --runtime-minutes {resources.runtime} {params.compile}"
        " {params.curriculum} >> {log} 2>&1"


rule export_model:
    input:
        run="results/models/{arch}_{strategy}_{steps}",
    output:
        model=directory("results/models/{arch}_{strategy}_{steps}_step{export}"),
    log:
        "logs/pretrain/{arch}_{strategy}_{steps}_step{export}.log",
    wildcard_constraints:
        arch=preset_pattern(),
        strategy="|".join(config["pretrain"]["strategies"]),
        steps=r"\d+",
        export=r"\d+",
    conda:
        "../envs/cpu.yaml"
    params:
        checkpoint_dir=checkpoint_dir,
    shell:
        "genemask pretrain-export --run {input.run} --checkpoint-dir {params.checkpoint_dir}"
        " --step {wildcards.export} --out {output.model} > {log} 2>&1"


rule report_training:
    input:
        expand("results/models/{model}", model=PRETRAIN_RUNS),
    output:
        report(
            "results/report/training_curves.png",
            caption="../report/training_curves.rst",
            category="4. Pretraining",
        ),
    log:
        "logs/report/training.log",
    conda:
        "../envs/cpu.yaml"
    params:
        metrics=lambda wildcards, input: " ".join(
            f"{path}/metrics.csv" for path in input
        ),
    shell:
        "genemask report training --metrics {params.metrics} --figure {output} > {log} 2>&1"


rule pretrain:
    input:
        rules.report_training.output,
