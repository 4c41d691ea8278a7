rule npmi:
    input:
        genome_fasta(),
    output:
        ranks="results/npmi/kmer_ranks.tsv",
        ngrams="results/npmi/ngrams.parquet",
        summary="results/npmi/summary.json",
    log:
        "logs/npmi/npmi.log",
    benchmark:
        "results/benchmarks/npmi.tsv"
    priority: PRETRAINING_CHAIN_PRIORITY
    conda:
        "../envs/cpu.yaml"
    threads: core_share(8)
    resources:
        mem_mb=8000,
    params:
        out_dir=lambda wildcards, output: Path(output.ranks).parent,
        max_n=config["npmi"]["max_n"],
        min_count=config["npmi"]["min_count"],
        k=config["npmi"]["k"],
        chromosomes=chromosome_args(
            config["npmi"]["chromosomes"] or GENOME["chromosomes"]
        ),
    shell:
        "genemask npmi --fasta {input} --out {params.out_dir} --max-n {params.max_n}"
        " --min-count {params.min_count} --k {params.k} --threads {threads}"
        " {params.chromosomes} > {log} 2>&1"


rule ngrams:
    input:
        rules.npmi.output,
