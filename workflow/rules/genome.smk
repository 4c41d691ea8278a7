rule download_genome:
    output:
        "resources/genome/{source}.fa.gz",
    log:
        "logs/genome/download_{source}.log",
    wildcard_constraints:
        source="ucsc-hg38|ncbi-grch38.p13",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    params:
        url=lambda wildcards: download_url(wildcards, "fasta"),
        checksum_url=lambda wildcards: download_url(wildcards, "checksums"),
    shell:
        "genemask download --url {params.url} --checksum-url {params.checksum_url}"
        " --out {output} > {log} 2>&1"


rule simulate_genome:
    output:
        fasta=SIMULATED_GENOME,
        truth="results/genome/simulated.motifs.tsv",
    log:
        "logs/genome/simulate.log",
    priority: PRETRAINING_CHAIN_PRIORITY
    conda:
        "../envs/cpu.yaml"
    params:
        length=GENOME["simulate"]["length"],
        contigs=GENOME["simulate"]["contigs"],
        seed=GENOME["simulate"]["seed"],
        density=GENOME["simulate"]["motif_density"],
        release=GENOME["simulate"]["jaspar_release"],
        motifs=(
            "--motifs " + ",".join(GENOME["simulate"]["motifs"])
            if GENOME["simulate"]["motifs"]
            else ""
        ),
    shell:
        "genemask simulate-genome --out {output.fasta} --length {params.length}"
        " --contigs {params.contigs} --seed {params.seed} {params.motifs}"
        " --motif-density {params.density} --jaspar-release {params.release} > {log} 2>&1"


rule chunk_genome:
    input:
        genome_fasta(),
    output:
        store=directory("results/chunks"),
        summary="results/chunks/summary.json",
    log:
        "logs/chunks/chunk_genome.log",
    benchmark:
        "results/benchmarks/chunk_genome.tsv"
    priority: PRETRAINING_CHAIN_PRIORITY
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
    params:
        seed=config["chunking"]["seed"],
        non_acgt=config["chunking"]["non_acgt"],
        valid_fraction=config["chunking"]["valid_fraction"],
        coverage=(
            config["chunking"]["random_sampling"]["coverage"]
            if config["chunking"]["random_sampling"]["enabled"]
            else 0
        ),
        chromosomes=chromosome_args(GENOME["chromosomes"]),
    shell:
        "genemask chunk --fasta {input} --out {output.store} --seed {params.seed}"
        " --non-acgt {params.non_acgt} --valid-fraction {params.valid_fraction}"
        " --random-sampling-coverage {params.coverage} {params.chromosomes} > {log} 2>&1"


rule genome:
    input:
        genome_fasta(),


rule chunks:
    input:
        rules.chunk_genome.output.summary,
