rule precompute_masks:
    input:
        unpack(mask_inputs),
    output:
        directory("results/masks/{strategy}"),
    log:
        "logs/masks/{strategy}.log",
    benchmark:
        "results/benchmarks/masks_{strategy}.tsv"
    wildcard_constraints:
        strategy="|".join(config["masking"]["strategies"]),
    conda:
        "../envs/cpu.yaml"
    threads: 4
    resources:
        mem_mb=4000,
    params:
        epochs=config["masking"]["epochs"],
        seed=config["masking"]["seed"],
        k=config["masking"]["k"],
        strategy_args=strategy_args,
        npmi=lambda wildcards, input: " ".join(
            f"--{name} {input[name]}" for name in NPMI_INPUTS[wildcards.strategy]
        ),
    shell:
        "genemask masks --chunks {input.chunks} {params.npmi}"
        " --strategy {wildcards.strategy} --out {output} --epochs {params.epochs}"
        " --seed {params.seed} --k {params.k} --threads {threads} {params.strategy_args} > {log} 2>&1"


rule masking_statistics:
    input:
        chunks=rules.chunk_genome.output.store,
        ranks=rules.npmi.output.ranks,
        masks=expand(
            "results/masks/{strategy}", strategy=config["masking"]["strategies"]
        ),
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
