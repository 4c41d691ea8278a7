rule precompute_masks:
    input:
        unpack(strategy_inputs),
        chunks=rules.chunk_genome.output.store,
    output:
        directory("results/masks/{strategy}"),
    log:
        "logs/masks/{strategy}.log",
    benchmark:
        "results/benchmarks/masks_{strategy}.tsv"
    wildcard_constraints:
        strategy="|".join(re.escape(s) for s in MASK_STRATEGIES),
    priority: PRETRAINING_CHAIN_PRIORITY
    conda:
        "../envs/cpu.yaml"
    threads: core_share(4)
    resources:
        mem_mb=4000,
    params:
        epochs=config["masking"]["epochs"],
        seed=config["masking"]["seed"],
        k=config["masking"]["k"],
        strategy_args=strategy_args,
        inputs=input_args,
    shell:
        "genemask masks --chunks {input.chunks} {params.inputs}"
        " --strategy {wildcards.strategy} --out {output} --epochs {params.epochs}"
        " --seed {params.seed} --k {params.k} --threads {threads} {params.strategy_args} > {log} 2>&1"


rule masking_statistics:
    input:
        chunks=rules.chunk_genome.output.store,
        ranks=rules.npmi.output.ranks,
        masks=expand("results/masks/{strategy}", strategy=MASK_STRATEGIES),
    output:
        report(
            "results/masks/statistics.tsv",
            caption="../report/masking_statistics.rst",
            category="3. Masking",
        ),
    log:
        "logs/masks/statistics.log",
    conda:
        "../envs/cpu.yaml"
    params:
        masks=lambda wildcards, input: " ".join(
            f"--masks {path}" for path in input.masks
        ),
    shell:
        "genemask mask-stats --chunks {input.chunks} --ranks {input.ranks} {params.masks}"
        " --out {output} > {log} 2>&1"


rule masks:
    input:
        rules.masking_statistics.output,
